/**
 * The value parsers of the command line and environment: each takes the flag (for its message) and
 * the text, and returns the value or throws a UsageError in the gateway's words (exit 2).
 */
import { type BlockList, isIP } from 'node:net';
import { readDuration } from '../../routing/values/duration.js';
import { readPort } from '../../routing/values/port.js';
import { readSize } from '../../routing/values/size.js';
import { readWholeNumber } from '../../routing/values/whole-number.js';

/** Bad input on the command line or in the environment: `main.ts` prints it and exits 2. */
export class UsageError extends Error {}

/** `1048576`, `512KiB`, `4MiB`, `1GB`: bytes, by the one reader of sizes (routing/values/size.ts). */
export function parseBytes(flag: string, v: string): number {
  const r = readSize(v);
  if (!r.ok) throw new UsageError(`--${flag}: ${r.error}`);
  return r.value;
}

/**
 * A duration (`500ms`, `10s`, `2m`, `12h`, `1d`, `1m30s`): milliseconds, by the one grammar of every
 * annotation and Mapping (routing/values/duration.ts). A number needs its unit, as in Envoy and
 * Kubernetes (a bare `3` was once taken as 3 ms, silently); only `0` needs none.
 */
export function parseDuration(flag: string, v: string): number {
  const r = readDuration(v);
  if (r.ok) return r.value;
  if (r.why === 'malformed') throw new UsageError(`--${flag}: "${v}" is not a duration like 500ms, 10s or 2m`);
  throw new UsageError(`--${flag}: ${r.error}`);
}

/**
 * A whole number, 0 or more, up to 2147483647: the one reader of every Mapping key, Module key and
 * annotation (routing/values/whole-number.ts), so a flag takes and refuses what they do.
 */
export function parseWhole(flag: string, v: string): number {
  const r = readWholeNumber(v);
  if (r.ok) return r.value;
  throw new UsageError(/^\s*[0-9]+\s*$/.test(v) ? `--${flag}: ${r.error}` : `--${flag}: "${v}" is not a whole number`);
}

/**
 * A port, by the one reader of ports (routing/values/port.ts): 1..65535, or from `min` (0 for a
 * listener's: any free port).
 */
export function parsePort(flag: string, v: string, min = 0): number {
  const n = parseWhole(flag, v);
  if (!readPort(n, min).ok) throw new UsageError(`--${flag}: ${n} is not a port (${min}..65535)`);
  return n;
}

export function parseNumber(flag: string, v: string): number {
  const n = Number(v.trim());
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag}: "${v}" is not a number`);
  return n;
}

/** A fraction, 0..1 (sampling rates). */
export function parseFraction(flag: string, v: string): number {
  const n = parseNumber(flag, v);
  if (n < 0 || n > 1) throw new UsageError(`--${flag}: ${n} is not between 0 and 1`);
  return n;
}

/** `name` is what the message calls the setting: `--flag`, or the environment variable a boolean came from. */
export function parseBool(name: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  throw new UsageError(`${name}: "${v}" is not true or false`);
}

/** `a`, `a or b`, `a, b or c`. */
export function orList(words: readonly string[]): string {
  return words.length < 2 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
}

/** One of `choices`, case and surrounding blanks ignored; the message lists the accepted values. */
export function parseChoice<T extends string>(flag: string, v: string, choices: readonly T[]): T {
  const s = v.trim().toLowerCase();
  if (!(choices as readonly string[]).includes(s)) throw new UsageError(`--${flag}: "${s}" is not ${orList(choices)}`);
  return s as T;
}

/** `<svc>.<ns>:<port>=<host>:<port>` (--resolve). */
export function parseResolve(entry: string): [string, { host: string; port: number }] {
  const m = /^([^=\s]+):([0-9]+)=(\[[^\]]+\]|[^:=\s]+):([0-9]+)$/.exec(entry.trim());
  if (!m) throw new UsageError(`--resolve: "${entry}" is not <svc>.<ns>:<port>=<host>:<port>`);
  return [`${m[1]}:${m[2]}`, { host: m[3]!.replace(/^\[|\]$/g, ''), port: Number(m[4]) }];
}

/** An address or `<address>/<prefix>`, IPv4 or IPv6, added to `list` (--trusted-proxies); throws UsageError otherwise. */
export function addTrustedProxy(list: BlockList, entry: string): void {
  const [addr = '', prefix, ...rest] = entry.trim().split('/');
  const family = isIP(addr);
  const bits = prefix === undefined ? (family === 6 ? 128 : 32) : /^[0-9]+$/.test(prefix) ? Number(prefix) : -1;
  if (family === 0 || rest.length || bits < 0 || bits > (family === 6 ? 128 : 32)) {
    throw new UsageError(`--trusted-proxies: "${entry}" is not an address or CIDR like 10.0.0.0/8 or fd00::/8`);
  }
  list.addSubnet(addr, bits, family === 6 ? 'ipv6' : 'ipv4');
}

/** A header name (RFC 9110 token), lower-cased. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
