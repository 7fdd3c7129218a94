/**
 * The shape the operator's files share (--jwt-providers, --log-sinks): a YAML list of mappings,
 * one per entry, and the URLs in them. Each file's own module checks its entries' fields; what is
 * wrong is thrown as an Error naming the entry (the caller adds the file: a UsageError at start,
 * a refused reload while serving).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Reader } from './read.js';
import { UsageError } from './values.js';
import { validPort } from '../../routing/values/port.js';

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** The entries of a YAML list, each a mapping; `items` names them in errors (`sinks[2]`), `shape` says what the list must be. */
export function yamlEntries(text: string, items: string, shape: string): Record<string, unknown>[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new Error(`does not parse as YAML: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`, { cause: e });
  }
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) throw new Error(`must be ${shape}`);
  return doc.map((e, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new Error(`${items}[${i}]: ${show(e)} is not a mapping`);
    return e as Record<string, unknown>;
  });
}

/** A value as an error may show it: anything before an `@` (credentials, in a URL) left out. */
const withoutCredentials = (v: unknown): string => String(v).replace(/^([^/@]*\/\/)?[^@]*@/, '$1…@');

/** An http(s) URL without credentials (a secret in a URL would reach logs and the admin page; the errors never show one). */
export function httpUrl(v: unknown, what: string): string {
  let u: URL;
  try {
    u = new URL(String(v));
  } catch {
    throw new Error(`${what}: "${withoutCredentials(v)}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`${what}: "${withoutCredentials(v)}" is not http(s)`);
  if (u.username !== '' || u.password !== '') throw new Error(`${what}: a URL with credentials is not accepted`);
  // The URL parser takes `:0`; no server listens there (routing/values/port.ts).
  if (u.port !== '' && validPort(u.port) === null) throw new Error(`${what}: "${withoutCredentials(v)}" has port ${u.port}, not a port (1..65535)`);
  return u.href;
}

/**
 * The operator's file named by `--<flag>`, read and parsed at start: undefined without the flag;
 * a file that cannot be read, or that `parse` refuses, is a UsageError (exit 2) naming the flag,
 * the file and what is wrong.
 */
export function readOperatorFile<T>(read: Reader, flag: string, parse: (text: string) => T): { readonly file: string; readonly value: T } | undefined {
  const file = read.optStr(flag);
  if (file === undefined || file.trim() === '') return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return { file, value: parse(text) };
  } catch (e) {
    throw new UsageError(`--${flag} ${file}: ${(e as Error).message}`);
  }
}
