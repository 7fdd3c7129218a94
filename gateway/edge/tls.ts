/**
 * TLS termination on the public port (`--tls-cert`/`--tls-key`, `--tls-dir`): the certificates,
 * chosen by SNI, reloaded while the gateway runs, and the `tls.Server` that does the handshakes
 * (edge/listener.ts hands it the connections that start with a TLS record, and gets back the
 * secured sockets to serve by ALPN).
 *
 * Certificates. `--tls-cert`/`--tls-key` is one PEM pair; `--tls-dir` is laid out the way
 * Kubernetes mounts `kubernetes.io/tls` Secrets: the directory itself may hold `tls.crt` and
 * `tls.key`, and each subdirectory (one Secret mounted per subdirectory, or a projected volume)
 * may hold another pair. Entries starting with `.` (Kubernetes' `..data` machinery) are skipped.
 * Each pair serves the DNS names of its certificate's subjectAltName (its CN when it has none),
 * `*.example.com` matching one label. The default certificate, for clients that send no SNI or
 * a name no pair has, is `--tls-cert`'s, else the directory's own pair, else the first
 * subdirectory's by name.
 *
 * Reload. The directories holding the files are watched (`fs.watch` on the directory sees
 * Kubernetes' atomic `..data` symlink swap and editors' rename-into-place), and stat'ed every
 * few seconds in case a watch misses something (network filesystems, some overlay setups). A
 * changed pair is validated (PEM parses, the key matches the certificate) before it is used: new
 * handshakes get it at once, open connections keep what they negotiated. A pair that does not
 * validate (half written, mismatched) keeps the one it replaces, is logged and counted
 * (`seldon_gateway_tls_certificate_reloads_total{result="failure"}`), and is tried again when
 * its files change again. Nothing here throws after start-up.
 *
 * Defaults: TLS 1.2 minimum, Node's (OpenSSL's) modern cipher list (TLS 1.3 suites, then ECDHE
 * with AES-GCM or ChaCha20-Poly1305 for TLS 1.2), session resumption by tickets with one key per
 * gateway (shared by its workers, see `shareTicketKeys`).
 *
 * Client certificates (`--tls-client-ca`, `--tls-client-auth optional|required`), as Ambassador's
 * TLSContext `ca_secret` and `cert_required`: a certificate that is presented must chain to the
 * CA, or the connection is refused and counted; `required` also refuses connections without one.
 * `clientSubject(socket)` gives the verified subject of a connection, for logs.
 */
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import cluster from 'node:cluster';
import { readFileSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/tls.js';
import type { GatewayMetrics } from '../observe/metrics.js';

/** The files of one pair in a `--tls-dir` (the names cert-manager and `kubectl create secret tls` use). */
export const DIR_CERT = 'tls.crt';
export const DIR_KEY = 'tls.key';
/** How often the files are stat'ed besides being watched. */
const POLL_MS = 3000;
/** Events that arrive together (a Secret update touches several entries) make one reload. */
const SETTLE_MS = 100;
/** Handshake and protocol limits that are the same for every context. */
const MIN_VERSION = 'TLSv1.2';
const ALPN = ['h2', 'http/1.1'];
/** Set by the cluster primary for its workers: one session-ticket key for the whole gateway. */
const TICKET_KEYS_ENV = 'SELDON_GATEWAY_INTERNAL_TLS_TICKET_KEYS';

/** Why a handshake (or what came instead of one) failed: the `reason` of the handshake-errors metric. */
export type HandshakeErrorReason = 'timeout' | 'reset' | 'protocol' | 'certificate_rejected_by_client' | 'client_certificate_missing' | 'client_certificate_invalid' | 'plaintext' | 'other';

/** Where one pair comes from: its label (logs, errors) and its two files. */
interface PairSource {
  readonly id: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A pair that validated, with what SNI and the metrics need. */
interface LoadedPair extends PairSource {
  /** sha256 of the PEM bytes of both files: the same bytes are never loaded twice. */
  readonly digest: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** DNS names it serves, lower case (`*.example.com` for wildcards). */
  readonly names: readonly string[];
  /** Its first name, or the file when it has none: the `name` label of the expiry gauge. */
  readonly label: string;
  readonly notAfter: Date;
  readonly serial: string;
  context: SecureContext;
}

/** A certificate, key or CA file that cannot be used at start-up; the message names the file (the CLI exits 2). */
export class TlsFileError extends Error {}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The DNS names a certificate is for: subjectAltName DNS entries, else its CN. */
export function certificateNames(x509: X509Certificate): string[] {
  const san = (x509.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (san.length > 0) return [...new Set(san)];
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn ? [cn.trim().toLowerCase()] : [];
}

/**
 * Read and validate one pair: both files readable, the certificate PEM parses, the key parses
 * (not encrypted) and belongs to it. Throws an Error naming the file at fault.
 */
function readPair(source: PairSource, ca: Buffer | undefined, ticketKeys: Buffer): LoadedPair {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${what} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorText(err)})`, { cause: err });
    }
  };
  const cert = read('certificate', source.certFile);
  const key = read('key', source.keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`certificate ${source.certFile}: not a PEM certificate (${errorText(err)})`, { cause: err });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`key ${source.keyFile}: not an unencrypted PEM private key (${errorText(err)})`, { cause: err });
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`key ${source.keyFile} does not match certificate ${source.certFile}`);
  let context: SecureContext;
  try {
    context = tls.createSecureContext({ cert, key, ...(ca ? { ca } : {}), minVersion: MIN_VERSION, ticketKeys });
  } catch (err) {
    throw new Error(`certificate ${source.certFile} with key ${source.keyFile}: ${errorText(err)}`, { cause: err });
  }
  const names = certificateNames(x509);
  return {
    ...source,
    digest: createHash('sha256').update(cert).update('\0').update(key).digest('hex'),
    cert,
    key,
    names,
    label: names[0] ?? source.certFile,
    notAfter: new Date(x509.validTo),
    serial: x509.serialNumber,
    context,
  };
}

/** The pairs the configuration names, as they are on disk now (a `--tls-dir` is listed again each time). */
function pairSources(config: TlsConfig): PairSource[] {
  const out: PairSource[] = [];
  if (config.certFile !== undefined && config.keyFile !== undefined) out.push({ id: '--tls-cert', certFile: config.certFile, keyFile: config.keyFile });
  const dir = config.dir;
  if (dir === undefined) return out;
  const has = (d: string): boolean => statSync(join(d, DIR_CERT), { throwIfNoEntry: false })?.isFile() === true;
  if (has(dir)) out.push({ id: dir, certFile: join(dir, DIR_CERT), keyFile: join(dir, DIR_KEY) });
  let entries: string[] = [];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    // Gone or unreadable: what was loaded keeps serving (start-up checks the directory itself).
  }
  for (const name of entries) {
    if (name.startsWith('.')) continue;
    const sub = join(dir, name);
    if (statSync(sub, { throwIfNoEntry: false })?.isDirectory() && has(sub)) out.push({ id: sub, certFile: join(sub, DIR_CERT), keyFile: join(sub, DIR_KEY) });
  }
  return out;
}

/**
 * Load every pair once, as start-up does: the first problem is a TlsFileError naming the file
 * (the CLI exits 2). The cluster primary calls it before starting workers.
 */
export function checkTlsFiles(config: TlsConfig): void {
  readClientCa(config);
  if (config.dir !== undefined && !statSync(config.dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new TlsFileError(`--tls-dir ${config.dir}: not a directory`);
  }
  const sources = pairSources(config);
  if (sources.length === 0) throw new TlsFileError(`--tls-dir ${config.dir}: no ${DIR_CERT} and ${DIR_KEY} in it or in any subdirectory`);
  const keys = randomBytes(48);
  for (const s of sources) {
    try {
      readPair(s, undefined, keys);
    } catch (err) {
      throw new TlsFileError(`${s.id === '--tls-cert' ? '--tls-cert/--tls-key' : `--tls-dir`}: ${errorText(err)}`);
    }
  }
}

function readClientCa(config: TlsConfig): Buffer | undefined {
  if (config.clientCaFile === undefined) return undefined;
  let pem: Buffer;
  try {
    pem = readFileSync(config.clientCaFile);
  } catch (err) {
    throw new TlsFileError(`--tls-client-ca ${config.clientCaFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorText(err)})`);
  }
  try {
    new X509Certificate(pem);
    tls.createSecureContext({ ca: pem });
  } catch (err) {
    throw new TlsFileError(`--tls-client-ca ${config.clientCaFile}: not a PEM certificate (${errorText(err)})`);
  }
  return pem;
}

/**
 * The session-ticket key (48 bytes: name, HMAC and AES keys): random per gateway. The cluster
 * primary makes one and hands it to its workers in their environment (`shareTicketKeys`), so a
 * ticket issued by one worker resumes on another (SO_REUSEPORT spreads a client's connections).
 */
export function ticketKeys(): Buffer {
  const given = process.env[TICKET_KEYS_ENV];
  if (given !== undefined) {
    // Read once; the worker's own children (none today) need not see it.
    delete process.env[TICKET_KEYS_ENV];
    const keys = Buffer.from(given, 'base64');
    if (keys.length === 48) return (ownKeys = keys);
  }
  return (ownKeys ??= randomBytes(48));
}
let ownKeys: Buffer | undefined;

/** In the cluster primary, before workers are forked: they inherit one ticket key. */
export function shareTicketKeys(): void {
  if (cluster.isPrimary) process.env[TICKET_KEYS_ENV] = ticketKeys().toString('base64');
}

/** Counters and logs of the certificate store. */
interface StoreDeps {
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
  private readonly watchers = new Map<string, FSWatcher>();
  private poller: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private lastStat = '';
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
    this.lastStat = this.statSignature();
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
    this.rewatch();
    this.poller = setInterval(() => {
      const sig = this.statSignature();
      if (sig !== this.lastStat) this.reload();
    }, POLL_MS);
    this.poller.unref();
  }

  close(): void {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    if (this.settle) clearTimeout(this.settle);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /**
   * Read the files again: changed pairs that validate replace the old ones, those that do not
   * keep them (logged and counted once per content). Never throws.
   */
  reload(): void {
    if (this.closed) return;
    try {
      this.lastStat = this.statSignature();
      this.reloadNow();
    } catch (err) {
      this.deps.log?.error({ err }, 'TLS certificate reload failed: the certificates loaded before keep serving');
      this.deps.metrics?.tlsReloads.labels('failure').inc();
    }
    this.rewatch();
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
            new X509Certificate(ca);
            tls.createSecureContext({ ca });
            this.clientCa = ca;
            this.clientCaDigest = digest;
            this.failed.delete('--tls-client-ca');
            caChanged = true;
            metrics?.tlsReloads.labels('success').inc();
            log?.info({ file: this.config.clientCaFile }, 'TLS client CA reloaded');
          } catch (err) {
            this.failed.set('--tls-client-ca', digest);
            metrics?.tlsReloads.labels('failure').inc();
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
        digest = createHash('sha256').update(readFileSync(source.certFile)).update('\0').update(readFileSync(source.keyFile)).digest('hex');
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
          metrics?.tlsReloads.labels('success').inc();
          this.logLoaded(p, old ? 'reloaded' : 'added');
        }
      } catch (err) {
        this.failed.set(source.id, digest);
        metrics?.tlsReloads.labels('failure').inc();
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
    for (const p of this.pairs) if (!pairs.some((n) => n.label === p.label)) this.deps.metrics?.tlsExpiry.remove(p.label);
    this.pairs = pairs;
    this.exact = exact;
    this.wildcard = wildcard;
    this.defaultPair = pairs[0];
    for (const p of pairs) this.deps.metrics?.tlsExpiry.labels(p.label).set(Math.floor(p.notAfter.getTime() / 1000));
    if (before !== undefined && this.defaultPair !== before) this.onDefaultChange(this.defaults);
  }

  private logLoaded(p: LoadedPair, what: string): void {
    const log = this.deps.log;
    if (!log) return;
    const fields = { pair: p.id, names: p.names, serial: p.serial, notAfter: p.notAfter.toISOString() };
    if (p.notAfter.getTime() < Date.now()) log.warn(fields, `TLS certificate ${what}, and it has EXPIRED: clients will refuse it`);
    else log.info(fields, `TLS certificate ${what}`);
  }

  /** Inode, size and mtime of every file (symlinks followed), and the directory's entries. */
  private statSignature(): string {
    const parts: string[] = [];
    const add = (f: string | undefined): void => {
      if (f === undefined) return;
      const s = statSync(f, { throwIfNoEntry: false });
      parts.push(s ? `${f}:${s.ino}:${s.size}:${s.mtimeMs}` : `${f}:-`);
    };
    add(this.config.clientCaFile);
    try {
      for (const s of pairSources(this.config)) {
        add(s.certFile);
        add(s.keyFile);
      }
    } catch {
      parts.push('?');
    }
    return parts.join('|');
  }

  /** Watch every directory that holds a file in use (or may: the --tls-dir subdirectories). */
  private rewatch(): void {
    if (this.closed) return;
    const dirs = new Set<string>();
    const c = this.config;
    for (const f of [c.certFile, c.keyFile, c.clientCaFile]) if (f !== undefined) dirs.add(dirname(f));
    if (c.dir !== undefined) {
      dirs.add(c.dir);
      for (const s of pairSources(c)) dirs.add(dirname(s.certFile));
    }
    for (const [d, w] of this.watchers) {
      if (!dirs.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: false }, () => this.changed());
        w.on('error', () => {
          w.close();
          this.watchers.delete(d);
        });
        this.watchers.set(d, w);
      } catch {
        // Not watchable (gone, no inotify): the poll covers it.
      }
    }
  }

  private changed(): void {
    if (this.settle || this.closed) return;
    this.settle = setTimeout(() => {
      this.settle = undefined;
      this.reload();
    }, SETTLE_MS);
    this.settle.unref();
  }
}

/** What the TLS termination needs besides its configuration. */
export interface TlsTerminationDeps {
  readonly metrics: GatewayMetrics;
  readonly log?: Logger | undefined;
  /** A handshake that stalls this long is closed (--client-header-timeout). */
  readonly handshakeTimeoutMs: number;
}

/** The verified client-certificate subject of each mTLS connection. */
const subjects = new WeakMap<object, string>();

/** `CN=a,O=b` from X509Certificate's one-attribute-per-line subject. */
function subjectLine(x509: X509Certificate): string {
  return x509.subject.split('\n').filter(Boolean).join(',');
}

/**
 * The verified client-certificate subject (`CN=…,O=…`) of a connection, or undefined (no TLS,
 * no client certificate, or not verified). Takes the TLS socket, or what an HTTP/2 request
 * exposes as its socket.
 */
export function clientSubject(socket: Duplex | object | undefined): string | undefined {
  if (socket === undefined) return undefined;
  const known = subjects.get(socket);
  if (known !== undefined) return known;
  const s = socket as Partial<TLSSocket>;
  if (s.encrypted !== true || s.authorized !== true || typeof s.getPeerX509Certificate !== 'function') return undefined;
  const x509 = s.getPeerX509Certificate();
  return x509 ? subjectLine(x509) : undefined;
}

/** A handshake error's reason label, from Node's / OpenSSL's error code. */
export function handshakeErrorReason(err: Error & { code?: string }): HandshakeErrorReason {
  const code = err.code ?? '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up|disconnected before/i.test(err.message)) return 'reset';
  if (/CERTIFICATE_REQUIRED|PEER_DID_NOT_RETURN_A_CERTIFICATE/.test(code)) return 'client_certificate_missing';
  if (/ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED)/.test(code)) return 'certificate_rejected_by_client';
  if (/^ERR_SSL_/.test(code)) return 'protocol';
  return 'other';
}

/**
 * TLS on the public port: a `tls.Server` that never listens (the listener hands it connections
 * whose first byte is a TLS handshake record) with the store's certificates by SNI, ALPN h2 and
 * http/1.1, client-certificate checks, and handshake counting. Its 'secureConnection' listeners
 * added after construction see only connections that passed the client-certificate check.
 */
export class TlsTermination {
  readonly server: tls.Server;
  readonly store: CertificateStore;
  private readonly handshakes = new Map<string, { inc(): void }>();

  constructor(
    readonly config: TlsConfig,
    private readonly deps: TlsTerminationDeps,
  ) {
    const keys = ticketKeys();
    this.store = new CertificateStore(config, keys, { metrics: deps.metrics, log: deps.log });
    const { cert, key, ca } = this.store.defaults;
    const mtls = ca !== undefined;
    this.server = tls.createServer({
      cert,
      key,
      ...(ca ? { ca } : {}),
      minVersion: MIN_VERSION,
      ALPNProtocols: ALPN,
      ticketKeys: keys,
      handshakeTimeout: deps.handshakeTimeoutMs,
      // Verified below, so that a refusal is counted and `optional` can let certificate-less clients in.
      requestCert: mtls,
      rejectUnauthorized: false,
      SNICallback: (servername, cb) => cb(null, this.store.select(servername)),
    });
    this.store.onDefaultChange = (pair) => {
      // The same ticket key: sessions resumed across a reload stay resumable.
      this.server.setSecureContext({ cert: pair.cert, key: pair.key, ...(pair.ca ? { ca: pair.ca } : {}), minVersion: MIN_VERSION, ticketKeys: keys });
    };
    this.server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      deps.metrics.tlsHandshakeErrors.labels(handshakeErrorReason(err)).inc();
      socket.destroy();
    });
    this.server.on('secureConnection', (socket: TLSSocket) => this.secured(socket, mtls));
    this.store.watch();
  }

  /** Count the handshake; with mTLS, refuse a connection whose certificate does not verify. */
  private secured(socket: TLSSocket, mtls: boolean): void {
    const version = socket.getProtocol() ?? 'unknown';
    const resumed = socket.isSessionReused();
    const key = `${version}/${resumed}`;
    let counter = this.handshakes.get(key);
    if (counter === undefined) this.handshakes.set(key, (counter = this.deps.metrics.tlsHandshakes.labels(version, String(resumed))));
    counter.inc();
    if (!mtls) return;
    const x509 = socket.getPeerX509Certificate();
    if (x509 === undefined) {
      if (this.config.clientAuth === 'optional') return;
      this.deps.metrics.tlsHandshakeErrors.labels('client_certificate_missing').inc();
      socket.destroy();
    } else if (!socket.authorized) {
      this.deps.metrics.tlsHandshakeErrors.labels('client_certificate_invalid').inc();
      this.deps.log?.debug({ remoteAddress: socket.remoteAddress, subject: subjectLine(x509), problem: String(socket.authorizationError) }, 'TLS client certificate refused');
      socket.destroy();
    } else subjects.set(socket, subjectLine(x509));
  }

  /** Something that is not a TLS handshake arrived on a TLS-only port (counted by the listener). */
  plaintext(): void {
    this.deps.metrics.tlsHandshakeErrors.labels('plaintext').inc();
  }

  close(): void {
    this.store.close();
  }
}
