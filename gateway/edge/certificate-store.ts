/**
 * The served certificates by name (SNI), reloaded while the gateway runs. The directories holding
 * the files are watched and stat'ed every few seconds; a changed pair that validates replaces the
 * old one for new handshakes, one that does not keeps it, logged and counted once per content.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/tls.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { checkCa, checkTlsFiles, errorText, pairDigest, pairSources, readClientCa, readPair, type LoadedPair } from './tls-files.js';
import { WatchedFiles, type Watched } from './watched-files.js';

/** Counters and logs of the certificate store. */
export interface StoreDeps {
  readonly metrics?: GatewayMetrics | undefined;
  readonly log?: Logger | undefined;
}

/**
 * The certificates by name, reloaded when their files change. `select` is the SNICallback's
 * lookup; `defaultPair` is what the tls.Server's own context serves.
 */
export class CertificateStore {
  private pairs: LoadedPair[] = [];
  private exact = new Map<string, LoadedPair>();
  private wildcard = new Map<string, LoadedPair>();
  private defaultPair: LoadedPair | undefined;
  private clientCa: Buffer | undefined;
  private clientCaDigest = '';
  /** Digests of content that failed to load, by pair id: counted and logged once. */
  private readonly failed = new Map<string, string>();
  private readonly files = new WatchedFiles(
    () => this.watched(),
    () => this.reload(),
  );
  private closed = false;
  /** Told when the default pair changes (the tls.Server's own context is replaced). */
  onDefaultChange: (pair: { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer | undefined }) => void = () => undefined;

  constructor(
    private readonly config: TlsConfig,
    private readonly keys: Buffer,
    private readonly deps: StoreDeps = {},
  ) {
    // Start-up: every problem is fatal and names its file.
    this.clientCa = readClientCa(config);
    this.clientCaDigest = this.clientCa ? createHash('sha256').update(this.clientCa).digest('hex') : '';
    checkTlsFiles(config);
    const loaded = pairSources(config).map((s) => readPair(s, this.clientCa, keys));
    this.install(loaded);
    for (const p of loaded) this.logLoaded(p, 'loaded');
  }

  /** The default certificate and key (PEM), for the tls.Server's own context. */
  get defaults(): { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer | undefined } {
    const d = this.defaultPair!;
    return { cert: d.cert, key: d.key, ca: this.clientCa };
  }

  /** Serials and names of what is served now (tests, diagnostics). */
  describe(): { id: string; names: readonly string[]; serial: string; notAfter: string; default: boolean }[] {
    return this.pairs.map((p) => ({ id: p.id, names: p.names, serial: p.serial, notAfter: p.notAfter.toISOString(), default: p === this.defaultPair }));
  }

  /** The context for an SNI name: undefined means the default (the server's own context). */
  select(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    let p = this.exact.get(name);
    if (p === undefined) {
      const dot = name.indexOf('.');
      if (dot > 0) p = this.wildcard.get(name.slice(dot + 1));
    }
    return p === undefined || p === this.defaultPair ? undefined : p.context;
  }

  /** Watch the directories and poll them; changes are applied within about a second. */
  watch(): void {
    this.files.start();
  }

  close(): void {
    this.closed = true;
    this.files.close();
  }

  /**
   * Read the files again: changed pairs that validate replace the old ones, those that do not
   * keep them (logged and counted once per content). Never throws.
   */
  reload(): void {
    if (this.closed) return;
    try {
      this.reloadNow();
    } catch (err) {
      this.deps.log?.error({ err }, 'TLS certificate reload failed: the certificates loaded before keep serving');
      this.deps.metrics?.tls.reloads.labels('failure').inc();
    }
  }

  private reloadNow(): void {
    const metrics = this.deps.metrics;
    const log = this.deps.log;
    let caChanged = false;
    if (this.config.clientCaFile !== undefined) {
      try {
        const ca = readFileSync(this.config.clientCaFile);
        const digest = createHash('sha256').update(ca).digest('hex');
        if (digest !== this.clientCaDigest && this.failed.get('--tls-client-ca') !== digest) {
          try {
            checkCa(ca);
            this.clientCa = ca;
            this.clientCaDigest = digest;
            this.failed.delete('--tls-client-ca');
            caChanged = true;
            metrics?.tls.reloads.labels('success').inc();
            log?.info({ file: this.config.clientCaFile }, 'TLS client CA reloaded');
          } catch (err) {
            this.failed.set('--tls-client-ca', digest);
            metrics?.tls.reloads.labels('failure').inc();
            log?.warn({ file: this.config.clientCaFile, problem: errorText(err) }, 'TLS client CA not reloaded: the previous one keeps verifying');
          }
        }
      } catch (err) {
        log?.debug({ file: this.config.clientCaFile, problem: errorText(err) }, 'TLS client CA unreadable now: the previous one keeps verifying');
      }
    }
    const previous = new Map(this.pairs.map((p) => [p.id, p]));
    const next: LoadedPair[] = [];
    let changed = caChanged;
    for (const source of pairSources(this.config)) {
      const old = previous.get(source.id);
      let digest: string;
      try {
        digest = pairDigest(readFileSync(source.certFile), readFileSync(source.keyFile));
      } catch (err) {
        // Mid-swap or removed: keep what was loaded; a pair that never loaded waits.
        if (old) next.push(old);
        log?.debug({ pair: source.id, problem: errorText(err) }, 'TLS pair unreadable now: kept as it was');
        continue;
      }
      if (old && old.digest === digest && !caChanged) {
        next.push(old);
        continue;
      }
      if (this.failed.get(source.id) === digest) {
        if (old) next.push(old);
        continue;
      }
      try {
        const p = readPair(source, this.clientCa, this.keys);
        this.failed.delete(source.id);
        next.push(p);
        changed = true;
        if (!old || old.digest !== p.digest) {
          metrics?.tls.reloads.labels('success').inc();
          this.logLoaded(p, old ? 'reloaded' : 'added');
        }
      } catch (err) {
        this.failed.set(source.id, digest);
        metrics?.tls.reloads.labels('failure').inc();
        log?.warn({ pair: source.id, problem: errorText(err) }, old ? 'TLS certificate not reloaded: the previous one keeps serving' : 'TLS certificate not loaded');
        if (old) next.push(old);
      }
    }
    // A pair whose files are gone (a subdirectory removed) stops serving, unless it is the last one.
    const removed = this.pairs.filter((p) => !next.includes(p) && !next.some((n) => n.id === p.id));
    if (next.length === 0) return;
    if (removed.length > 0) {
      changed = true;
      for (const p of removed) log?.info({ pair: p.id, names: p.names }, 'TLS certificate removed');
    }
    if (changed) this.install(next);
  }

  private install(pairs: LoadedPair[]): void {
    const exact = new Map<string, LoadedPair>();
    const wildcard = new Map<string, LoadedPair>();
    // The first pair to claim a name keeps it (--tls-cert, then the directory's own, then subdirectories by name).
    for (const p of pairs) {
      for (const n of p.names) {
        if (n.startsWith('*.')) {
          if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), p);
        } else if (!exact.has(n)) exact.set(n, p);
      }
    }
    const before = this.defaultPair;
    // A name no pair has any more leaves the expiry gauge.
    for (const p of this.pairs) if (!pairs.some((n) => n.label === p.label)) this.deps.metrics?.tls.expiry.remove(p.label);
    this.pairs = pairs;
    this.exact = exact;
    this.wildcard = wildcard;
    this.defaultPair = pairs[0];
    for (const p of pairs) this.deps.metrics?.tls.expiry.labels(p.label).set(Math.floor(p.notAfter.getTime() / 1000));
    if (before !== undefined && this.defaultPair !== before) this.onDefaultChange(this.defaults);
  }

  private logLoaded(p: LoadedPair, what: string): void {
    const log = this.deps.log;
    if (!log) return;
    const fields = { pair: p.id, names: p.names, serial: p.serial, notAfter: p.notAfter.toISOString() };
    if (p.notAfter.getTime() < Date.now()) log.warn(fields, `TLS certificate ${what}, and it has EXPIRED: clients will refuse it`);
    else log.info(fields, `TLS certificate ${what}`);
  }

  /** The files in use (and the --tls-dir, where a new pair may appear). */
  private watched(): Watched {
    const c = this.config;
    const files: string[] = [];
    for (const f of [c.certFile, c.keyFile, c.clientCaFile]) if (f !== undefined) files.push(f);
    for (const p of pairSources(c)) files.push(p.certFile, p.keyFile);
    return { files: [...new Set(files)], dirs: c.dir !== undefined ? [c.dir] : [] };
  }
}
