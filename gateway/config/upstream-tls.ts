/**
 * Upstream TLS contexts (--upstream-tls-context): named CA, client certificate and SNI sets that a
 * custom Mapping's `tls: <name>` picks for its upstream (docs/routing.md#a-mappings-upstream-balancing-connections-and-tls).
 * The files are read here, once, so a bad path or a certificate that does not match its key stops
 * start-up (exit 2) instead of failing each request.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { UsageError } from './values.js';

export const UPSTREAM_TLS_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'upstream-tls-context',
    section: 'upstream',
    value: 'NAME=ca=<file>[,cert=<file>,key=<file>][,sni=<host>]',
    env: env('upstream-tls-context'),
    kind: 'list',
    commands: SERVE,
    help: "An upstream TLS context a custom Mapping's tls: NAME uses: the CA its model's certificate is verified against, a client certificate and key to present (mTLS), the SNI to send (default: the Mapping's host). Repeatable, or several separated by ';'.",
  },
];

/** One context, its PEM files read. */
export interface UpstreamTlsContext {
  readonly ca: string;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly sni?: string | undefined;
}

const FLAG = '--upstream-tls-context';
const ATTRS = new Set(['ca', 'cert', 'key', 'sni']);
/** `NAME=attr=…`: the token that starts a context. */
const START = /^([A-Za-z0-9][A-Za-z0-9_.-]*)=(ca|cert|key|sni)=(.*)$/s;
const HOST = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$/;

function readPem(name: string, attr: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${FLAG} ${name}: cannot read ${attr} file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/**
 * The contexts the entries define. Entries are joined back (the environment variable is split on
 * commas like every list) and read as tokens separated by `,` or `;`: `NAME=attr=value` starts a
 * context, `attr=value` adds to it.
 */
export function parseUpstreamTlsContexts(entries: readonly string[]): Map<string, UpstreamTlsContext> {
  const raw = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  let currentName = '';
  for (const token of entries.join(',').split(/[,;]/)) {
    const t = token.trim();
    if (t === '') continue;
    const start = START.exec(t);
    let attr: string;
    let value: string;
    if (start !== null) {
      currentName = start[1]!;
      if (raw.has(currentName)) throw new UsageError(`${FLAG}: ${currentName} is defined twice`);
      current = new Map();
      raw.set(currentName, current);
      attr = start[2]!;
      value = start[3]!;
    } else {
      const eq = t.indexOf('=');
      attr = eq > 0 ? t.slice(0, eq) : '';
      value = t.slice(eq + 1);
      if (!ATTRS.has(attr)) throw new UsageError(`${FLAG}: "${t}" is not NAME=ca=<file>, cert=<file>, key=<file> or sni=<host>`);
      if (current === undefined) throw new UsageError(`${FLAG}: "${t}" comes before any NAME=ca=<file>`);
    }
    if (value.trim() === '') throw new UsageError(`${FLAG} ${currentName}: ${attr} is empty`);
    if (current!.has(attr)) throw new UsageError(`${FLAG} ${currentName}: ${attr} is given twice`);
    current!.set(attr, value.trim());
  }
  const out = new Map<string, UpstreamTlsContext>();
  for (const [name, attrs] of raw) {
    const caFile = attrs.get('ca');
    if (caFile === undefined) throw new UsageError(`${FLAG} ${name}: ca=<file> is required (the CA the model's certificate is verified against)`);
    const certFile = attrs.get('cert');
    const keyFile = attrs.get('key');
    if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError(`${FLAG} ${name}: cert and key go together`);
    const sni = attrs.get('sni');
    if (sni !== undefined && !HOST.test(sni)) throw new UsageError(`${FLAG} ${name}: sni "${sni}" is not a host name`);
    const ctx: UpstreamTlsContext = {
      ca: readPem(name, 'ca', caFile),
      cert: certFile === undefined ? undefined : readPem(name, 'cert', certFile),
      key: keyFile === undefined ? undefined : readPem(name, 'key', keyFile),
      sni,
    };
    try {
      tls.createSecureContext({ ca: ctx.ca, cert: ctx.cert, key: ctx.key });
    } catch (e) {
      throw new UsageError(`${FLAG} ${name}: ${(e as Error).message}`);
    }
    out.set(name, ctx);
  }
  return out;
}

export function buildUpstreamTls(read: Reader): Map<string, UpstreamTlsContext> {
  return parseUpstreamTlsContexts(read.list('upstream-tls-context'));
}
