/**
 * The public listeners' connections, for /metrics: how many are open per listener and protocol,
 * and the bytes received and sent on them. Kept per connection, never per request: a connection
 * is entered when accepted and its protocol set once its first bytes are read (listener.ts sniffs
 * them); the gauges and counters are computed when metrics are read.
 *
 * - `seldon_gateway_open_connections{listener,protocol}`: listener `public`, `oauth` (--oauth-port)
 *   or `grpc` (--grpc-port); protocol `http1`, `http2` (h2c, and every connection of the gRPC port),
 *   `tls` (a TLS connection: HTTP/1.1 or h2 by ALPN inside) or `unknown` (no bytes read yet).
 * - `seldon_gateway_received_bytes_total{listener}` / `seldon_gateway_sent_bytes_total{listener}`:
 *   what the sockets read and wrote (TLS records included), those still open counted as far as they got.
 */
import type { Socket } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';

export type ListenerName = 'public' | 'oauth' | 'grpc';
export type ConnectionProtocol = 'http1' | 'http2' | 'tls' | 'unknown';
const PROTOCOLS: readonly ConnectionProtocol[] = ['http1', 'http2', 'tls', 'unknown'];

interface Open {
  readonly listener: ListenerName;
  protocol: ConnectionProtocol;
}

export class ConnectionMetrics {
  private readonly open = new Map<Socket, Open>();
  /** Bytes of connections that closed, by listener: [received, sent]. */
  private readonly closed = new Map<ListenerName, [number, number]>();

  constructor(registry: Registry) {
    // prom-client calls collect() with the metric as `this`: the maps are captured instead.
    const open = this.open;
    const closed = this.closed;
    // A series, once seen, stays (at 0 when nothing is open): a gauge that vanishes at zero cannot be alerted on.
    // The public listener's exist from the start.
    const known = new Set<string>(PROTOCOLS.map((p) => `public ${p}`));
    new Gauge({
      name: 'seldon_gateway_open_connections',
      help: 'Open client connections by listener (public, oauth, grpc) and protocol: http1, http2 (h2c and the gRPC port), tls (HTTP/1.1 or h2 inside, by ALPN), unknown (no bytes read yet).',
      labelNames: ['listener', 'protocol'],
      registers: [registry],
      collect() {
        const counts = new Map<string, number>();
        for (const key of known) counts.set(key, 0);
        for (const o of open.values()) {
          const key = `${o.listener} ${o.protocol}`;
          known.add(key);
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        this.reset();
        for (const [key, n] of counts) {
          const [listener, protocol] = key.split(' ');
          this.set({ listener, protocol }, n);
        }
      },
    });
    const bytes = (name: string, help: string, which: 0 | 1): void => {
      new Counter({
        name,
        help,
        labelNames: ['listener'],
        registers: [registry],
        collect() {
          this.reset();
          const sums = new Map<ListenerName, number>();
          for (const [listener, totals] of closed) sums.set(listener, totals[which]);
          for (const [socket, o] of open) sums.set(o.listener, (sums.get(o.listener) ?? 0) + (which === 0 ? socket.bytesRead : socket.bytesWritten));
          for (const [listener, n] of sums) if (n > 0) this.inc({ listener }, n);
        },
      });
    };
    bytes('seldon_gateway_received_bytes_total', 'Bytes read from client connections, by listener (TLS records included).', 0);
    bytes('seldon_gateway_sent_bytes_total', 'Bytes written to client connections, by listener (TLS records included).', 1);
  }

  /** A connection accepted on `listener`; `protocol` when known from the listener alone. */
  accepted(socket: Socket, listener: ListenerName, protocol: ConnectionProtocol = 'unknown'): void {
    this.open.set(socket, { listener, protocol });
    socket.once('close', () => {
      const o = this.open.get(socket);
      if (o === undefined) return;
      this.open.delete(socket);
      let totals = this.closed.get(o.listener);
      if (totals === undefined) this.closed.set(o.listener, (totals = [0, 0]));
      totals[0] += socket.bytesRead;
      totals[1] += socket.bytesWritten;
    });
  }

  /** Its first bytes said what it speaks. */
  spoke(socket: Socket, protocol: ConnectionProtocol): void {
    const o = this.open.get(socket);
    if (o !== undefined) o.protocol = protocol;
  }
}
