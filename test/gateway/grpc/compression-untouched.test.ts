/**
 * gRPC through a gateway that compresses REST answers (--compress, and a deployment's
 * `seldon.io/gateway-compression` with decodeRequests): `grpc-encoding` is gRPC's own, so a
 * compressed message travels as the client compressed it and the model's compressed answer as the
 * model compressed it. The real @grpc/grpc-js client compressing with gzip; a raw HTTP/2 model
 * that records the frames it receives and answers with a gzip-compressed frame.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSeldonMessage, encodeSeldonMessage, grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { md, predict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

/** A gRPC message frame: the compressed flag, the length, the bytes. */
function frame(compressed: boolean, bytes: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

describe('gRPC is not compressed or decoded by the gateway', () => {
  let model: RawUpstream;
  let gw: TestGateway;
  let clients: GrpcClients;
  const received: Buffer[] = [];
  const answer = encodeSeldonMessage({ strData: 'the model answered '.repeat(50) });

  beforeAll(async () => {
    model = await startRawUpstream((stream: http2.ServerHttp2Stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push(Buffer.concat(chunks));
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-encoding': 'gzip' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame(true, gzipSync(answer)));
      });
    });
    gw = await startTestGateway({
      manifests: { 'model.yaml': sdep('model', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-compression': '{decodeRequests: true}' }) },
      resolve: { 'model-main.m:5001': model.port },
      args: ['--compress', 'gzip,br,zstd'],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`, { 'grpc.default_compression_algorithm': 2 });
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await model?.close();
  });

  it('the model gets grpc-encoding and the frames as the client compressed them; the client its answer as the model compressed it', async () => {
    const request = { strData: 'a request that compresses '.repeat(50) };
    const o = await predict(clients, request, md({ seldon: 'model', namespace: 'm' }));
    expect(o.ok && o.result.response.strData).toBe(decodeSeldonMessage(answer).strData);
    const headers = model.streams.at(-1)!;
    expect(headers['grpc-encoding']).toBe('gzip');
    expect(headers['content-encoding']).toBeUndefined();
    const body = received.at(-1)!;
    expect(body[0]).toBe(1);
    expect(body.readUInt32BE(1)).toBe(body.length - 5);
    expect(gunzipSync(body.subarray(5)).equals(encodeSeldonMessage(request))).toBe(true);
  });
});
