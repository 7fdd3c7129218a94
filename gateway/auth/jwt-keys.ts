/**
 * One JWT provider's signing keys (--jwt-providers): fetched at start, again every `refresh`, and
 * sooner when a token names a `kid` the set lacks, at most once per `cooldown` whatever the fetch's
 * outcome; the last good set keeps verifying while the identity provider is unreachable.
 *
 * jose verifies (`createLocalJWKSet`, `jwtVerify`), but its remote set (`createRemoteJWKSet`) is not
 * used, for three reasons read in jose 6.2's jwks/remote.js: once its cache is older than
 * `cacheMaxAge` every verification awaits a fetch and fails when that fetch fails, so an identity
 * provider down for ten minutes refuses every token signed with keys the gateway holds; its
 * cooldown counts from the last successful fetch, so with the provider down each token naming an
 * unknown `kid` fetches again (a flood of made-up `kid`s hammers it); and the refresh runs on the
 * request path. Here the fetch runs beside requests, its cooldown counts from the last attempt, and
 * a failed fetch changes nothing but the state that /readyz and the page show.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as Jose from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';

let joseLib: typeof Jose | undefined;
/** jose, loaded when a key set or a token is first read: a gateway without --jwt-providers never loads it (4 MB of each process's idle memory: docs/observability.md#memory). */
export function jose(): typeof Jose {
  return (joseLib ??= createRequire(import.meta.url)('jose') as typeof Jose);
}
import type { JwtProviderConfig } from '../config/jwt.js';

/** What /readyz and the page show of a provider's keys. */
export interface KeySetState {
  readonly provider: string;
  /** Keys held (0: none yet: the provider's tokens are refused with 503). */
  readonly keys: number;
  /** When the held set was fetched (epoch ms), null before the first success. */
  readonly fetchedAt: number | null;
  /** The last fetch's failure, null when it succeeded. */
  readonly lastError: string | null;
  /** Fetches made (successful or not): what a flood of unknown `kid`s is bounded by. */
  readonly fetches: number;
}

export interface KeyDeps {
  /** Epoch ms (tests move it). */
  readonly now: () => number;
  readonly fetch?: typeof fetch | undefined;
  /** How long one fetch may take. */
  readonly timeoutMs?: number | undefined;
  readonly log?: { warn(o: object, msg: string): void; info(o: object, msg: string): void } | undefined;
}

/** Largest JWKS or discovery document read. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

export class ProviderKeys {
  private getKey: JWTVerifyGetKey | undefined;
  private kids = new Set<string>();
  private count = 0;
  private fetchedAt: number | null = null;
  private lastError: string | null = null;
  private lastAttempt = -Infinity;
  private fetches = 0;
  private inflight: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly config: JwtProviderConfig,
    private readonly deps: KeyDeps,
  ) {}

  /** The first fetch, then one every `refresh`; resolves once the first has ended (never rejects). */
  async start(): Promise<void> {
    await this.refresh();
    if (this.closed) return;
    this.timer = setInterval(() => void this.refresh(), this.config.refreshMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** The key lookup jose verifies with; undefined until a fetch succeeded. */
  get keys(): JWTVerifyGetKey | undefined {
    return this.getKey;
  }

  /**
   * The held set still has this `kid`: a token verified earlier is not accepted once its key left
   * the set, nor once this provider was closed (removed or changed in the providers file).
   */
  holds(kid: string | undefined): boolean {
    if (this.closed) return false;
    return kid === undefined ? this.count > 0 : this.kids.has(kid);
  }

  /**
   * A token names a `kid` the set lacks: fetch again, unless a fetch was attempted within the
   * cooldown. Resolves true when the set changed (worth verifying again).
   */
  unknownKid(): Promise<boolean> {
    if (this.inflight !== undefined) return this.inflight;
    if (this.deps.now() - this.lastAttempt < this.config.cooldownMs) return Promise.resolve(false);
    return this.refresh();
  }

  state(): KeySetState {
    return { provider: this.config.name, keys: this.count, fetchedAt: this.fetchedAt, lastError: this.lastError, fetches: this.fetches };
  }

  /** Fetch the set now (one at a time); true when a new set is held. */
  refresh(): Promise<boolean> {
    this.inflight ??= this.fetchOnce().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async fetchOnce(): Promise<boolean> {
    this.lastAttempt = this.deps.now();
    this.fetches++;
    try {
      const jwks = await this.load();
      const getKey = jose().createLocalJWKSet(jwks);
      const kids = new Set<string>();
      for (const k of jwks.keys) if (typeof k.kid === 'string') kids.add(k.kid);
      this.getKey = getKey;
      this.kids = kids;
      this.count = jwks.keys.length;
      this.fetchedAt = this.deps.now();
      if (this.lastError !== null) this.deps.log?.info({ provider: this.config.name, keys: this.count }, 'JWT keys fetched again');
      this.lastError = null;
      return true;
    } catch (err) {
      const problem = err instanceof Error ? err.message : String(err);
      if (problem !== this.lastError) this.deps.log?.warn({ provider: this.config.name, problem, keysHeld: this.count }, 'JWT keys could not be fetched; the last good set stays in use');
      this.lastError = problem;
      return false;
    }
  }

  private async load(): Promise<JSONWebKeySet> {
    const k = this.config.keys;
    let doc: unknown;
    if (k.kind === 'file') doc = JSON.parse(await readFile(k.path, 'utf8'));
    else if (k.kind === 'jwks') doc = await this.getJson(k.url);
    else {
      // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be the one configured.
      const meta = await this.getJson(k.url);
      const m = meta as { issuer?: unknown; jwks_uri?: unknown };
      if (m.issuer !== this.config.issuer) throw new Error(`the discovery document's issuer ${JSON.stringify(m.issuer)} is not ${JSON.stringify(this.config.issuer)}`);
      if (typeof m.jwks_uri !== 'string' || !/^https?:\/\//.test(m.jwks_uri)) throw new Error('the discovery document has no http(s) jwks_uri');
      doc = await this.getJson(m.jwks_uri);
    }
    const keys = (doc as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) throw new Error('not a JWK set ({"keys": [...]})');
    return doc as JSONWebKeySet;
  }

  private async getJson(url: string): Promise<unknown> {
    const f = this.deps.fetch ?? fetch;
    const res = await f(url, { headers: { accept: 'application/json, application/jwk-set+json' }, redirect: 'error', signal: AbortSignal.timeout(this.deps.timeoutMs ?? 5000) });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    const body = await res.arrayBuffer();
    if (body.byteLength > MAX_DOCUMENT_BYTES) throw new Error(`${url} sent over ${MAX_DOCUMENT_BYTES} bytes`);
    try {
      return JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      throw new Error(`${url} sent what is not JSON`);
    }
  }
}

/**
 * The providers' key sets of one process, by name. `replace` takes the providers file as it is
 * now: a provider whose entry is unchanged keeps its keys (no fetch), a new or changed one starts
 * fetching, a removed one is closed (tokens it verified stop passing).
 */
export class ProviderKeySets {
  private readonly sets = new Map<string, ProviderKeys>();
  private started = false;

  constructor(
    configs: readonly JwtProviderConfig[],
    private readonly deps: KeyDeps,
  ) {
    for (const c of configs) this.sets.set(c.name, new ProviderKeys(c, deps));
  }

  get(name: string): ProviderKeys | undefined {
    return this.sets.get(name);
  }

  /** Fetch every provider's keys once, then on schedule (resolves when each first fetch has ended; never rejects). */
  async start(): Promise<void> {
    this.started = true;
    await Promise.all([...this.sets.values()].map((p) => p.start()));
  }

  /** The providers as the file now says; returns the names whose keys start over. */
  replace(configs: readonly JwtProviderConfig[]): string[] {
    const next = new Set(configs.map((c) => c.name));
    for (const [name, keys] of this.sets) {
      if (next.has(name)) continue;
      keys.close();
      this.sets.delete(name);
    }
    const renewed: string[] = [];
    for (const c of configs) {
      const old = this.sets.get(c.name);
      if (old !== undefined && JSON.stringify(old.config) === JSON.stringify(c)) continue;
      old?.close();
      const keys = new ProviderKeys(c, this.deps);
      this.sets.set(c.name, keys);
      renewed.push(c.name);
      if (this.started) void keys.start();
    }
    return renewed;
  }

  states(): KeySetState[] {
    return [...this.sets.values()].map((p) => p.state());
  }

  close(): void {
    for (const p of this.sets.values()) p.close();
  }
}
