/**
 * The gRPC stream proxy carries every call shape and size unchanged: big messages, long server
 * streams, client streams, bidi streams, many concurrent calls on one connection.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients, type StreamReply, type StreamRequest } from '../../fixtures/grpc-backend.js';
import { answeredBy, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

const MiB = 1024 * 1024;

describe('gRPC call shapes and sizes through the gateway', () => {
  let backend: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;
  const meta = (): grpc.Metadata => md({ seldon: 'iris', namespace: 'models' });

  beforeAll(async () => {
    backend = await startGrpcBackend({ name: 'iris' });
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/grpc-timeout': '20000' }) },
      resolve: { 'iris-default.models:5001': backend.port },
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`, { 'grpc.max_receive_message_length': 64 * MiB, 'grpc.max_send_message_length': 64 * MiB });
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await backend?.close();
  });

  it('carries a 4 MB request message and its 4 MB echo', async () => {
    const payload = Buffer.alloc(4_000_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const o = await predict(clients, { binData: payload }, meta());
    expect(o.ok).toBe(true);
    if (o.ok) expect(Buffer.from(o.result.response.binData!).equals(payload)).toBe(true);
  });

  it('carries a 16 MB response message', async () => {
    const o = await predict(clients, { strData: `big:${16 * MiB}` }, meta());
    expect(o.ok).toBe(true);
    if (o.ok) {
      const bin = Buffer.from(o.result.response.binData!);
      expect(bin.length).toBe(16 * MiB);
      expect(bin.every((b) => b === 0x62)).toBe(true);
    }
  });

  it('carries a 16 MiB client stream (16 × 1 MiB messages)', async () => {
    const reply = await new Promise<StreamRequest>((resolve, reject) => {
      const call = clients.streams.ClientStream(meta(), (err, v) => (err ? reject(err) : resolve(v!)));
      for (let i = 0; i < 16; i++) call.write({ seq: i, payload: Buffer.alloc(MiB, i) });
      call.end();
    });
    expect(reply).toMatchObject({ count: 16, payloadBytes: 16 * MiB });
  });

  it('carries a 10,000-message server stream in order, with its trailers', async () => {
    const call = clients.streams.ServerStream({ count: 10_000, payloadBytes: 64 }, meta());
    let next = 0;
    let inOrder = true;
    call.on('data', (m: StreamReply) => {
      if (m.seq !== next) inOrder = false;
      next++;
    });
    const [status, headers] = await Promise.all([new Promise<grpc.StatusObject>((r) => call.on('status', r)), new Promise<grpc.Metadata>((r) => call.on('metadata', r))]);
    expect(status.code).toBe(grpc.status.OK);
    expect(next).toBe(10_000);
    expect(inOrder).toBe(true);
    expect(status.metadata.get('x-count')).toEqual(['10000']);
    expect(headers.get('x-backend')).toEqual(['iris']);
  });

  it('carries a bidi stream both ways, status and headers intact', async () => {
    const call = clients.streams.Bidi(meta());
    const got: number[] = [];
    call.on('data', (m: StreamReply) => {
      got.push(m.seq!);
      if (got.length < 100) call.write({ seq: got.length, payload: Buffer.alloc(1000, 7) });
      else call.end();
    });
    const headers = new Promise<grpc.Metadata>((r) => call.on('metadata', r));
    const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
    call.on('error', () => undefined);
    call.write({ seq: 0, payload: Buffer.alloc(1000, 7) });
    expect((await status).code).toBe(grpc.status.OK);
    expect((await headers).get('x-backend')).toEqual(['iris']);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('an active server stream outlives the route timeout (it only runs until response headers)', async () => {
    const local = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'default' }] }, { 'seldon.io/grpc-timeout': '200' }) },
      resolve: { 'iris-default.models:5001': backend.port },
    });
    const c = grpcClients(`127.0.0.1:${local.port}`);
    try {
      const call = c.streams.ServerStream({ count: 6, payloadBytes: 10, intervalMs: 100 }, meta());
      let n = 0;
      call.on('data', () => n++);
      const status = await new Promise<grpc.StatusObject>((r) => call.on('status', r));
      expect(status.code).toBe(grpc.status.OK);
      expect(n).toBe(6);
    } finally {
      c.close();
      await local.stop();
    }
  });

  it('1,000 concurrent calls on one client connection all succeed', async () => {
    const m = meta();
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => predict(clients, { strData: i % 10 === 0 ? 'sleep:50' : `n${i}` }, m)));
    const failed = results.filter((o) => !o.ok);
    expect(failed.map((o) => (o.ok ? '' : `${o.error.code} ${o.error.details}`))).toEqual([]);
    expect(results.every((o) => answeredBy(o) === 'iris')).toBe(true);
  });
});
