/**
 * Compression's metrics (docs/edge.md#compression), counted only on routes that compress answers
 * or decode requests: `seldon_gateway_compression_bytes_total{direction,encoding,stage}`, the
 * bytes of each answer compressed (`direction="response"`) and each request body decoded
 * (`direction="request"`), `stage="identity"` as the model sent or receives them and
 * `stage="encoded"` as they travel to or from the client. Its labels are a fixed set (two
 * directions, four encodings, two stages): no series is per deployment, so none needs an owner.
 */
import { Counter, type Registry } from 'prom-client';

export type CompressionDirection = 'request' | 'response';

export class CompressionMetrics {
  private readonly bytes: Counter;

  constructor(registry: Registry) {
    this.bytes = new Counter({
      name: 'seldon_gateway_compression_bytes_total',
      help: 'Bytes of REST bodies the gateway compressed (response) or decoded (request), by encoding: as the model sent or receives them (stage identity) and as they travelled to or from the client (stage encoded).',
      labelNames: ['direction', 'encoding', 'stage'],
      registers: [registry],
    });
  }

  /** One body: `identity` bytes plain, `encoded` bytes on the client's side of the gateway. */
  count(direction: CompressionDirection, encoding: string, identity: number, encoded: number): void {
    this.bytes.labels(direction, encoding, 'identity').inc(identity);
    this.bytes.labels(direction, encoding, 'encoded').inc(encoded);
  }
}
