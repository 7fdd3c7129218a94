// Proves the upstream fixtures behave as the gateway tests assume, using real clients and sockets.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import {
  decodeSeldonMessage,
  encodeSeldonMessage,
  fromProtoValue,
  grpcClients,
  grpcFrame,
  startGrpcBackend,
  toProtoValue,
  unaryCall,
  type GrpcBackend,
  type GrpcClients,
  type SeldonMessage,
  type StreamReply,
} from './fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from './fixtures/http-backend.js';
import { probability, startMockModel, type MockModel } from '../examples/mock-model.js';

describe('seldon.proto wire layout', () => {
  it('encodes SeldonMessage{strData:"hi"} as the test vector of docs/routing.md#payloads', () => {
    const bytes = encodeSeldonMessage({ strData: 'hi' });
    expect(bytes.toString('hex')).toBe('2a026869');
    expect(grpcFrame(bytes).toString('hex')).toBe('00000000042a026869');
    expect(decodeSeldonMessage(bytes)).toMatchObject({ strData: 'hi', data_oneof: 'strData' });
  });

  it('puts data, binData and jsonData on fields 3, 4 and 6', () => {
    // Field key = (number << 3) | wire type 2 (length-delimited).
    expect(encodeSeldonMessage({ data: { names: ['a'] } })[0]).toBe(0x1a);
    expect(encodeSeldonMessage({ binData: Buffer.from([1]) })[0]).toBe(0x22);
    expect(encodeSeldonMessage({ jsonData: toProtoValue({ a: 1 }) })[0]).toBe(0x32);
    // Tensor values are packed doubles: shape [1] values [1.5] -> 0a 01 01 12 08 <8 bytes>.
    const tensor = encodeSeldonMessage({ data: { tensor: { shape: [1], values: [1.5] } } });
    expect(tensor.toString('hex')).toBe('1a0f' + '120d' + '0a0101' + '1208' + '000000000000f83f');
  });
});

describe('grpc-backend', () => {
  let backend: GrpcBackend;
  let clients: GrpcClients;

  beforeAll(async () => {
    backend = await startGrpcBackend({ name: 'g1' });
    clients = grpcClients(backend.address);
  });
  afterAll(async () => {
    clients.close();
    await backend.close();
  });

  it('answers Predict with the backend tag, echoes the data and records the call', async () => {
    const md = new grpc.Metadata();
    md.set('seldon', 'dep');
    md.set('namespace', 'ns');
    const req: SeldonMessage = {
      meta: { puid: 'p1' },
      data: { ndarray: toProtoValue([[1, 2]]).listValue ?? {} },
    };
    const before = backend.calls.length;
    const { response, headers } = await unaryCall(clients.seldon.Predict, clients.seldon, req, md);
    expect(fromProtoValue(response.meta?.tags?.['backend'])).toBe('g1');
    expect(response.meta?.puid).toBe('p1');
    expect(fromProtoValue({ listValue: response.data?.ndarray ?? {} })).toEqual([[1, 2]]);
    expect(headers.get('x-backend')).toEqual(['g1']);
    const call = backend.calls[before];
    expect(call).toMatchObject({
      method: '/seldon.protos.Seldon/Predict',
      metadata: { seldon: 'dep', namespace: 'ns' },
      authority: backend.address,
      deadline: undefined,
      cancelled: false,
    });
  });

  it('fail:<code>:<message> answers that status, trailers-only with x-backend', async () => {
    const err = await unaryCall(clients.seldon.Predict, clients.seldon, { strData: 'fail:9:not ready: yet' }).then(
      () => null,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err?.details).toBe('not ready: yet');
    expect(err?.metadata.get('x-backend')).toEqual(['g1']);
  });

  it('trailer:<k>=<v> adds a custom trailer; big:<n> answers n bytes of binData', async () => {
    const { response, trailers } = await unaryCall(clients.seldon.Predict, clients.seldon, {
      strData: 'trailer:x-test=yes;big:1000',
    });
    expect(trailers.get('x-test')).toEqual(['yes']);
    expect(response.data_oneof).toBe('binData');
    expect(response.binData?.length).toBe(1000);
  });

  it('sleep:<ms> delays the answer and records a cancelled call', async () => {
    const t0 = Date.now();
    await unaryCall(clients.seldon.Predict, clients.seldon, { strData: 'sleep:150' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);

    const before = backend.calls.length;
    const err = await unaryCall(clients.seldon.Predict, clients.seldon, { strData: 'sleep:5000' }, undefined, {
      deadline: Date.now() + 100,
    }).then(
      () => null,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    const call = backend.calls[before];
    expect(call?.deadline).toBeGreaterThan(t0);
    await expect.poll(() => call?.cancelled).toBe(true);
  });

  it('speaks plain h2c: the test-vector frame in, a framed answer and grpc-status trailers out', async () => {
    const session = http2.connect(`http://${backend.address}`);
    try {
      const raw = (strData: string) =>
        new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
          const req = session.request({
            ':method': 'POST',
            ':path': '/seldon.protos.Seldon/Predict',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let headers: http2.IncomingHttpHeaders = {};
          let trailers: http2.IncomingHttpHeaders = {};
          const chunks: Buffer[] = [];
          req.on('response', (h) => (headers = h));
          req.on('trailers', (t) => (trailers = t));
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
          req.on('error', reject);
          req.end(grpcFrame(encodeSeldonMessage({ strData })));
        });
      const ok = await raw('hi');
      expect(ok.headers[':status']).toBe(200);
      // grpc-js answers 'application/grpc+proto', a legal variant a proxy must pass as it is.
      expect(ok.headers['content-type']).toMatch(/^application\/grpc(\+proto)?$/);
      expect(ok.headers['x-backend']).toBe('g1');
      expect(ok.trailers['grpc-status']).toBe('0');
      expect(ok.body.subarray(0, 5).readUInt32BE(1)).toBe(ok.body.length - 5);
      expect(decodeSeldonMessage(ok.body.subarray(5)).strData).toBe('hi');
      // A failure is trailers-only: grpc-status arrives in the one and only HEADERS frame.
      const bad = await raw('fail:5:gone');
      expect(bad.headers['grpc-status']).toBe('5');
      expect(bad.headers['grpc-message']).toBe('gone');
      expect(bad.headers['x-backend']).toBe('g1');
      expect(bad.body.length).toBe(0);
    } finally {
      session.close();
    }
  });

  it('SendFeedback, ModelMetadata and GraphMetadata answer', async () => {
    const fb = await unaryCall(clients.seldon.SendFeedback, clients.seldon, { reward: 1 });
    expect(fromProtoValue(fb.response.meta?.tags?.['backend'])).toBe('g1');
    const mm = await unaryCall(clients.seldon.ModelMetadata, clients.seldon, { name: 'iris' });
    expect(mm.response).toMatchObject({ name: 'iris', versions: ['1'], custom: { backend: 'g1' } });
    expect(mm.response.inputs?.[0]?.shape).toEqual([1, 4]);
    const gm = await unaryCall(clients.seldon.GraphMetadata, clients.seldon, {});
    expect(Object.keys(gm.response.models ?? {})).toEqual(['g1']);
  });

  it('ServerStream sends count messages then an x-count trailer', async () => {
    const call = clients.streams.ServerStream({ count: 10, payloadBytes: 3 });
    const got: StreamReply[] = [];
    call.on('data', (m: StreamReply) => got.push(m));
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    expect(status.code).toBe(grpc.status.OK);
    expect(got.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got[9]?.payload?.length).toBe(3);
    expect(status.metadata.get('x-count')).toEqual(['10']);
  });

  it('ClientStream counts what it received', async () => {
    const res = await new Promise<{ count?: number; payloadBytes?: number }>((resolve, reject) => {
      const call = clients.streams.ClientStream((err, r) => (err ? reject(err) : resolve(r ?? {})));
      for (let seq = 0; seq < 4; seq++) call.write({ seq, payload: Buffer.alloc(5) });
      call.end();
    });
    expect(res).toEqual({ count: 4, payloadBytes: 20, intervalMs: 0 });
  });

  it('Bidi echoes each message', async () => {
    const call = clients.streams.Bidi();
    const got: number[] = [];
    call.on('data', (m: StreamReply) => got.push(m.seq ?? -1));
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    for (const seq of [7, 8, 9]) call.write({ seq });
    call.end();
    expect((await ended).code).toBe(grpc.status.OK);
    expect(got).toEqual([7, 8, 9]);
  });

  it('ModelInfer echoes the inputs; ServerLive/ServerReady say yes', async () => {
    const { response } = await unaryCall(clients.inference.ModelInfer, clients.inference, {
      model_name: 'iris',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 1.5] } }],
    });
    expect(response.model_name).toBe('iris');
    expect(response.id).toBe('g1');
    expect(response.outputs?.[0]).toMatchObject({ name: 'x', datatype: 'FP32', shape: [1, 2] });
    expect(response.outputs?.[0]?.contents?.fp32_contents).toEqual([0.5, 1.5]);
    expect((await unaryCall(clients.inference.ServerLive, clients.inference, {})).response.live).toBe(true);
    expect((await unaryCall(clients.inference.ServerReady, clients.inference, {})).response.ready).toBe(true);
  });

  it('respects client channel options such as max receive size', async () => {
    const small = grpcClients(backend.address, { 'grpc.max_receive_message_length': 1024 });
    try {
      const err = await unaryCall(small.seldon.Predict, small.seldon, { strData: 'big:4096' }).then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      small.close();
    }
  });

  it('kill() drops the port', async () => {
    const b = await startGrpcBackend({ name: 'doomed' });
    const c = grpcClients(b.address);
    try {
      await unaryCall(c.seldon.Predict, c.seldon, { strData: 'x' });
      b.kill();
      const err = await unaryCall(c.seldon.Predict, c.seldon, { strData: 'x' }, undefined, {
        deadline: Date.now() + 2000,
      }).then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });
});

describe('http-backend', () => {
  let backend: HttpBackend;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'h1' });
  });
  afterEach(() => backend.setHandler(undefined));
  afterAll(async () => {
    await backend.close();
  });

  it('records the request and answers like a predictor', async () => {
    const before = backend.requests.length;
    const res = await fetch(`${backend.url}/api/v1.0/predictions?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'v' },
      body: '{"data":{"ndarray":[[1]]}}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-backend')).toBe('h1');
    expect(await res.json()).toEqual({ data: { ndarray: [[1]] }, meta: { tags: { backend: 'h1' } } });
    const rec = backend.requests[before];
    expect(rec).toMatchObject({ method: 'POST', url: '/api/v1.0/predictions?x=1', aborted: false });
    expect(rec?.headers['x-custom']).toBe('v');
    expect(rec?.body.toString()).toBe('{"data":{"ndarray":[[1]]}}');
  });

  it('sleeps on /sleep/<ms> and ?sleep=, and records a client that gave up', async () => {
    let t0 = Date.now();
    expect((await fetch(`${backend.url}/sleep/120/api`)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);
    t0 = Date.now();
    expect((await fetch(`${backend.url}/x?sleep=120`)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);

    const before = backend.requests.length;
    await expect(fetch(`${backend.url}/x?sleep=5000`, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    await expect.poll(() => backend.requests[before]?.aborted).toBe(true);
  });

  it('answers ?status= with a Seldon error body', async () => {
    const res = await fetch(`${backend.url}/p?status=503`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: { code: 503, status: 'FAILURE' } });
  });

  it('echoes with ?echo=1 and streams ?bytes=', async () => {
    const res = await fetch(`${backend.url}/p?echo=1`, {
      method: 'POST',
      headers: { 'content-type': 'text/x-test' },
      body: 'hello',
    });
    expect(res.headers.get('content-type')).toBe('text/x-test');
    expect(await res.text()).toBe('hello');
    const big = await fetch(`${backend.url}/p?bytes=200000`);
    expect((await big.arrayBuffer()).byteLength).toBe(200000);
  });

  it('uses a custom handler when set', async () => {
    backend.setHandler((_req, res, rec) => {
      res.writeHead(418);
      res.end(`got ${rec.body.length}`);
    });
    const res = await fetch(`${backend.url}/p`, { method: 'POST', body: 'abc' });
    expect(res.status).toBe(418);
    expect(await res.text()).toBe('got 3');
  });
});

describe('mock-model', () => {
  let model: MockModel;
  beforeAll(async () => {
    model = await startMockModel({ name: 'iris-main' });
  });
  afterAll(async () => {
    await model.close();
  });

  const post = (path: string, body: string): Promise<Response> => fetch(`${model.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('predicts on ndarray input, one row per row', async () => {
    const res = await post('/api/v1.0/predictions', '{"meta":{},"data":{"ndarray":[[5.1,3.5,1.4,0.2],[1,1,1,1]]}}');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-seldon-model')).toBe('iris-main');
    const body = (await res.json()) as { data: { names: string[]; ndarray: number[][] }; meta: unknown };
    expect(body.data.names).toEqual(['proba']);
    expect(body.data.ndarray).toHaveLength(2);
    expect(body.data.ndarray[0]?.[0]).toBeCloseTo(1 / (1 + Math.exp(-1.02)), 10);
    expect(body.data.ndarray[1]?.[0]).toBeCloseTo(probability([1, 1, 1, 1]), 10);
    expect(body.meta).toEqual({ requestPath: { 'iris-main': 'seldonio/mock_classifier:1.0' } });
  });

  it('predicts on tensor input (v0.1 path too)', async () => {
    const res = await post('/api/v0.1/predictions', '{"data":{"tensor":{"shape":[2,2],"values":[1,2,3,4]}}}');
    const body = (await res.json()) as { data: { ndarray: number[][] } };
    expect(body.data.ndarray).toEqual([[probability([1, 2])], [probability([3, 4])]]);
  });

  it('answers 400 MICROSERVICE_BAD_DATA on malformed JSON', async () => {
    const res = await post('/api/v1.0/predictions', '{"data":');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { status: Record<string, unknown> };
    expect(body.status).toMatchObject({ status: 1, code: -1, reason: 'MICROSERVICE_BAD_DATA' });
    expect(typeof body.status['info']).toBe('string');
  });

  it('serves feedback, metadata, health and v2 infer', async () => {
    expect(await (await post('/api/v1.0/feedback', '{"reward":1}')).json()).toEqual({ data: { ndarray: [] }, meta: {} });
    expect((await fetch(`${model.url}/health/ping`)).status).toBe(200);
    expect((await fetch(`${model.url}/ready`)).status).toBe(200);
    expect((await fetch(`${model.url}/v2/health/ready`)).status).toBe(200);
    const meta = (await (await fetch(`${model.url}/api/v1.0/metadata`)).json()) as { name: string };
    expect(meta.name).toBe('iris-main');
    const v2 = await post('/v2/models/iris/infer', '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}]}');
    expect(await v2.json()).toMatchObject({
      model_name: 'iris',
      outputs: [{ name: 'proba', shape: [1, 1], data: [probability([1, 2])] }],
    });
    expect((await fetch(`${model.url}/nope`)).status).toBe(404);
  });
});
