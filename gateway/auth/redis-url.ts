/**
 * `--redis-url`: which Redis topology the replicas share, as one URL (docs/redis.md).
 *
 *   redis[s]://[user:password@]host:port[/db]                          one server (ioredis parses it)
 *   redis[s]+sentinel://[user:password@]host:port[,host:port…]/<master>[/<db>]   Sentinel: the primary
 *       of <master>, found through these sentinels (default port 26379). `?sentinelPassword=` and
 *       `?sentinelUsername=` when the sentinels require their own credentials.
 *   redis[s]+cluster://[user:password@]host:port[,host:port…]           Redis Cluster: seed nodes (default port 6379)
 *
 * `rediss` is TLS to every node (and to the sentinels). A malformed URL is a usage error (the
 * process exits 2); whether the servers answer is only known once connected (the gateway starts in
 * fallback and says why on /readyz).
 */
import { readList } from '../../routing/values/list.js';
import { validPort } from '../../routing/values/port.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

interface Credentials {
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
  /** The URL with its password replaced, for logs, /readyz and errors. */
  readonly redacted: string;
}

export type RedisTarget =
  | (Credentials & { readonly kind: 'single'; readonly url: string })
  | (Credentials & {
      readonly kind: 'sentinel';
      readonly sentinels: readonly HostPort[];
      readonly masterName: string;
      readonly db: number;
      readonly sentinelUsername: string | undefined;
      readonly sentinelPassword: string | undefined;
    })
  | (Credentials & { readonly kind: 'cluster'; readonly seeds: readonly HostPort[] });

export type Topology = RedisTarget['kind'];

/** A URL that cannot be used whatever the servers say; the message names the (redacted) URL. */
export class RedisUrlError extends Error {}

const SCHEME = /^(rediss?)(\+sentinel|\+cluster)?:\/\//i;

/** The URL with any password replaced by `redacted` (also when it does not parse). */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^/@]*?:)[^/@]*@/i, '$1redacted@').replace(/([?&]sentinelPassword=)[^&]*/i, '$1redacted');
}

function decode(s: string, url: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RedisUrlError(`--redis-url ${redactRedisUrl(url)}: bad percent-encoding in the credentials`);
  }
}

function hostPorts(list: string, defaultPort: number, url: string): HostPort[] {
  const bad = (what: string): RedisUrlError => new RedisUrlError(`--redis-url ${redactRedisUrl(url)}: ${what}`);
  const items = readList(list);
  if (!items.ok || items.value.length === 0) throw bad('no host:port');
  return items.value.map((item) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::([0-9]+))?$/.exec(item.trim());
    if (!m) throw bad(`"${item}" is not host:port`);
    const port = m[3] === undefined ? defaultPort : validPort(m[3]);
    if (port === null) throw bad(`"${item}": ${m[3]} is not a port`);
    return { host: (m[1] ?? m[2])!, port };
  });
}

/** What `--redis-url` asks for; throws RedisUrlError when it cannot be used as written. */
export function parseRedisUrl(url: string): RedisTarget {
  const redacted = redactRedisUrl(url);
  const bad = (what: string): RedisUrlError => new RedisUrlError(`--redis-url ${redacted}: ${what}`);
  const scheme = SCHEME.exec(url);
  if (!scheme) throw bad('the scheme is not redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://');
  const tls = scheme[1]!.toLowerCase() === 'rediss';
  const mode = scheme[2]?.toLowerCase();
  if (mode === undefined) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw bad('not a URL');
    }
    if (u.hostname === '') throw bad('no host');
    const db = u.pathname.replace(/^\//, '');
    if (db !== '' && !/^[0-9]+$/.test(db)) throw bad(`"${db}" is not a database number`);
    return { kind: 'single', url, tls, username: u.username ? decode(u.username, url) : undefined, password: u.password ? decode(u.password, url) : undefined, redacted };
  }
  const rest = url.slice(scheme[0].length);
  const q = rest.indexOf('?');
  const beforeQuery = q < 0 ? rest : rest.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1));
  const slash = beforeQuery.indexOf('/');
  const authority = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
  const path = slash < 0 ? '' : beforeQuery.slice(slash + 1);
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : authority.slice(0, at);
  const colon = userinfo === undefined ? -1 : userinfo.indexOf(':');
  const username = userinfo === undefined ? undefined : decode(colon < 0 ? userinfo : userinfo.slice(0, colon), url) || undefined;
  const password = userinfo === undefined || colon < 0 ? undefined : decode(userinfo.slice(colon + 1), url) || undefined;
  const creds = { tls, username, password, redacted };
  if (mode === '+cluster') {
    if (path.replace(/\/$/, '') !== '') throw bad('a cluster URL has no path (Redis Cluster has database 0 only)');
    for (const k of query.keys()) throw bad(`unknown parameter "${k}"`);
    return { kind: 'cluster', seeds: hostPorts(authority.slice(at + 1), 6379, url), ...creds };
  }
  const [masterName, db, ...extra] = path.split('/').filter((s, i) => s !== '' || i === 0);
  if (!masterName) throw bad('no master name: redis+sentinel://host:port[,host:port…]/<masterName>[/<db>]');
  if (extra.length > 0 || (db !== undefined && !/^[0-9]+$/.test(db))) throw bad(`"${path}" is not <masterName>[/<db>]`);
  for (const k of query.keys()) if (k !== 'sentinelPassword' && k !== 'sentinelUsername') throw bad(`unknown parameter "${k}" (sentinelPassword, sentinelUsername)`);
  return {
    kind: 'sentinel',
    sentinels: hostPorts(authority.slice(at + 1), 26379, url),
    masterName: decode(masterName, url),
    db: db === undefined ? 0 : Number(db),
    sentinelUsername: query.get('sentinelUsername') ?? undefined,
    sentinelPassword: query.get('sentinelPassword') ?? undefined,
    ...creds,
  };
}
