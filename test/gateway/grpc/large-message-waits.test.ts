/**
 * A 1 MiB gRPC message passes the gateway as the bytes it is (load/README.md, large): a plain route never
 * parses it nor frames it again, and neither side is paused per socket read. Counted on the gateway's own
 * HTTP/2 streams in this process (the client's, on the gateway's port, and the upstream's, to the model's),
 * every call passed on to the real function: before, each stream write answered false once the stream
 * held 64 KiB, Node's fixed mark, so the client's stream was paused every 64 KiB of the request (16 times
 * per MiB), and the model's every 64 KiB of the answer, each resumed on a 'drain' later. Now a stream
 * holds its flow-control window (1 MiB) before the other side waits: once per 1 MiB message at most.
 *
 * Both peers take a whole message in their windows (the client, grpc-js, with a 16 MiB window; the model, a
 * node:http2 echo with the gateway's own 1 MiB stream and 16 MiB connection windows, as the large scenario's
 * stand-in): any pause left is the gateway's own doing. Byte for byte: the model echoes the client's message
 * unparsed, and the client decodes it.
 */
import http2, { type Http2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

const MiB = 1024 * 1024;
/** 16 KiB DATA frames in a 1 MiB message. */
const FRAMES = MiB / 16384;

/** The model: each call answered with the request's own bytes, as they came, then `grpc-status: 0`. */
async function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer({ settings: { initialWindowSize: MiB } });
  server.on('session', (session) => session.setLocalWindowSize(16 * MiB));
  server.on('stream', (stream) => {
    const pieces: Buffer[] = [];
    stream.on('data', (c: Buffer) => pieces.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      for (const p of pieces) stream.write(p);
      stream.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('a 1 MiB gRPC message each way on a plain route: pauses per call', () => {
  let backend: { port: number; close(): Promise<void> };
  let gw: TestGateway;
  let clients: GrpcClients;
  const pauses = { client: 0, upstream: 0 };
  /** Writes handed to Node's HTTP/2 streams (`_write` one chunk, `_writev` a corked batch): the client's and the upstream's. */
  const writes = { client: 0, upstream: 0 };
  const meta = (): grpc.Metadata => md({ seldon: 'iris', namespace: 'models' });

  beforeAll(async () => {
    backend = await startEcho();
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/grpc-timeout': '20000' }) },
      resolve: { 'iris-default.models:5001': backend.port },
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`, {
      'grpc.max_receive_message_length': 8 * MiB,
      'grpc.max_send_message_length': 8 * MiB,
      'grpc-node.flow_control_window': 16 * MiB,
    });
    // Node's Http2Stream (not exported): the prototype above a client stream's own.
    const probeSession = http2.connect(`http://127.0.0.1:${backend.port}`);
    const probe = probeSession.request({ ':path': '/' });
    // Never sent: closed before the session connects, it may fail then (GOAWAY); only its prototype is wanted.
    probe.on('error', () => {});
    probeSession.on('error', () => {});
    const h2Stream = Object.getPrototypeOf(Object.getPrototypeOf(probe)) as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
    probe.close();
    probeSession.close();
    const which = (s: Partial<Http2Stream>): keyof typeof writes | undefined => {
      const socket = s.session?.socket;
      if (socket === undefined || socket === null) return undefined;
      return socket.localPort === gw.port ? 'client' : socket.remotePort === backend.port ? 'upstream' : undefined;
    };
    for (const method of ['_write', '_writev'] as const) {
      const realWrite = h2Stream[method]!;
      vi.spyOn(h2Stream, method).mockImplementation(function (this: Partial<Http2Stream>, ...a: unknown[]) {
        const side = which(this);
        if (side !== undefined) writes[side]++;
        return realWrite.apply(this, a);
      });
    }
    const real = Readable.prototype.pause;
    vi.spyOn(Readable.prototype, 'pause').mockImplementation(function (this: Readable) {
      const socket = (this as Partial<Http2Stream>).session?.socket;
      if (socket !== undefined && socket !== null) {
        if (socket.localPort === gw.port) pauses.client++;
        else if (socket.remotePort === backend.port) pauses.upstream++;
      }
      return real.call(this);
    });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    clients?.close();
    await gw?.stop();
    await backend?.close();
  });

  it(`a 1 MiB request and its 1 MiB echo (${FRAMES} DATA frames each way) arrive whole, neither side paused per read`, async () => {
    const payload = Buffer.alloc(MiB);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 131 + 7) & 0xff;
    for (let i = 0; i < 3; i++) {
      pauses.client = 0;
      pauses.upstream = 0;
      writes.client = 0;
      writes.upstream = 0;
      const o = await predict(clients, { binData: payload }, meta());
      expect(o.ok).toBe(true);
      if (o.ok) expect(Buffer.from(o.result.response.binData!).equals(payload)).toBe(true);
      // 16 each way before (one per 64 KiB); at most one per 256 KiB held now, and one more for a write in flight.
      expect(pauses.client, "pauses of the client's stream").toBeLessThanOrEqual(5);
      expect(pauses.upstream, 'pauses of the upstream stream').toBeLessThanOrEqual(5);
      // 64 frames each way, not 64 writes: while a stream write is in flight (it completes once the session has
      // sent it, an immediate later) Node's Writable holds the next chunks and hands them over as one writev.
      // Measured 8–11 each way per MiB (5–6 when the proxy corked the stream until the loop's check phase: not worth a timer).
      expect(writes.client, "writes to the client's stream").toBeLessThanOrEqual(24);
      expect(writes.upstream, 'writes to the upstream stream').toBeLessThanOrEqual(24);
    }
  });
});
