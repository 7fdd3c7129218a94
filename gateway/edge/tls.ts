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
 * The verified subject of a connection is recorded for logs (observe/peer-subject.ts `clientSubject`).
 *
 * The files are read in `tls-files.ts`, served and reloaded by `certificate-store.ts`; the ticket
 * key is `tls-ticket-keys.ts`'s.
 */
import tls, { type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/tls.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { rememberSubject, subjectLine } from '../observe/peer-subject.js';
import { CertificateStore } from './certificate-store.js';
import { MIN_VERSION } from './tls-files.js';
import { ticketKeys } from './tls-ticket-keys.js';

const ALPN = ['h2', 'http/1.1'];

/** Why a handshake (or what came instead of one) failed: the `reason` of the handshake-errors metric. */
export type HandshakeErrorReason = 'timeout' | 'reset' | 'protocol' | 'certificate_rejected_by_client' | 'client_certificate_missing' | 'client_certificate_invalid' | 'plaintext' | 'other';

/** What the TLS termination needs besides its configuration. */
export interface TlsTerminationDeps {
  readonly metrics: GatewayMetrics;
  readonly log?: Logger | undefined;
  /** A handshake that stalls this long is closed (--client-header-timeout). */
  readonly handshakeTimeoutMs: number;
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
      deps.metrics.tls.handshakeErrors.labels(handshakeErrorReason(err)).inc();
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
    if (counter === undefined) this.handshakes.set(key, (counter = this.deps.metrics.tls.handshakes.labels(version, String(resumed))));
    counter.inc();
    if (!mtls) return;
    const x509 = socket.getPeerX509Certificate();
    if (x509 === undefined) {
      if (this.config.clientAuth === 'optional') return;
      this.deps.metrics.tls.handshakeErrors.labels('client_certificate_missing').inc();
      socket.destroy();
    } else if (!socket.authorized) {
      this.deps.metrics.tls.handshakeErrors.labels('client_certificate_invalid').inc();
      this.deps.log?.debug({ remoteAddress: socket.remoteAddress, subject: subjectLine(x509), problem: String(socket.authorizationError) }, 'TLS client certificate refused');
      socket.destroy();
    } else rememberSubject(socket, x509);
  }

  /** Something that is not a TLS handshake arrived on a TLS-only port (counted by the listener). */
  plaintext(): void {
    this.deps.metrics.tls.handshakeErrors.labels('plaintext').inc();
  }

  close(): void {
    this.store.close();
  }
}
