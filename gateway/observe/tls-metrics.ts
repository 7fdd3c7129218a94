/**
 * TLS on the public port (edge/tls.ts, edge/certificate-store.ts), per worker; summed across workers,
 * except the expiry (the earliest any worker serves).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class TlsMetrics {
  readonly handshakes: Counter;
  readonly handshakeErrors: Counter;
  readonly reloads: Counter;
  readonly expiry: Gauge;

  constructor(registry: Registry) {
    this.handshakes = new Counter({
      name: 'seldon_gateway_tls_handshakes_total',
      help: 'TLS handshakes completed on the public port, by protocol version and whether the session was resumed (a ticket).',
      labelNames: ['version', 'resumed'],
      registers: [registry],
    });
    this.handshakeErrors = new Counter({
      name: 'seldon_gateway_tls_handshake_errors_total',
      help: "TLS connections refused or failed before a request: timeout (--client-header-timeout), reset (the client left), protocol (version, cipher, ALPN, malformed), certificate_rejected_by_client (the client refused the gateway's certificate), client_certificate_missing / client_certificate_invalid (mTLS), plaintext (cleartext on a TLS-only port), other.",
      labelNames: ['reason'],
      registers: [registry],
    });
    this.reloads = new Counter({
      name: 'seldon_gateway_tls_certificate_reloads_total',
      help: 'Changed TLS certificate pairs (and client CA) read while running: success (serving it now) or failure (invalid or half written: the previous one keeps serving).',
      labelNames: ['result'],
      registers: [registry],
    });
    this.expiry = new Gauge({
      name: 'seldon_gateway_tls_certificate_expiry_timestamp_seconds',
      help: 'When each served TLS certificate expires (Unix time), by its first DNS name.',
      labelNames: ['name'],
      aggregator: 'min',
      registers: [registry],
    });
  }
}
