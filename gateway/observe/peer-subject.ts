/**
 * Who the client is, as the access log and the server spans name it: the verified client-certificate
 * subject of an mTLS connection. The TLS termination (edge/tls.ts) records it once per connection,
 * after the handshake verified the certificate; a request reads it from its socket.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** The verified client-certificate subject of each mTLS connection. */
const subjects = new WeakMap<object, string>();

/** `CN=a,O=b` from X509Certificate's one-attribute-per-line subject. */
export function subjectLine(x509: X509Certificate): string {
  return x509.subject.split('\n').filter(Boolean).join(',');
}

/** A connection's certificate was verified: its subject is what its requests are logged with. */
export function rememberSubject(socket: object, x509: X509Certificate): void {
  subjects.set(socket, subjectLine(x509));
}

/**
 * The verified client-certificate subject (`CN=…,O=…`) of a connection, or undefined (no TLS,
 * no client certificate, or not verified). Takes the TLS socket, or what an HTTP/2 request
 * exposes as its socket.
 */
export function clientSubject(socket: object | undefined): string | undefined {
  if (socket === undefined) return undefined;
  const known = subjects.get(socket);
  if (known !== undefined) return known;
  const s = socket as Partial<TLSSocket>;
  if (s.encrypted !== true || s.authorized !== true || typeof s.getPeerX509Certificate !== 'function') return undefined;
  const x509 = s.getPeerX509Certificate();
  return x509 ? subjectLine(x509) : undefined;
}
