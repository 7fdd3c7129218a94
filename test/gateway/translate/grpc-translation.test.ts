/**
 * Protocol translation over real sockets, gRPC to gRPC (docs/protocol-translation.md): a real
 * gateway, a v2 model stand-in serving `inference.GRPCInferenceService` and a Seldon one serving
 * `seldon.protos.Seldon` (both @grpc/grpc-js, recording each message they decoded), and the real
 * @grpc/grpc-js client. Every message is compared decoded, field by field (int64 as strings: exact).
 *
 * - the attacker's inputs first: each refused with INVALID_ARGUMENT and zero upstream calls;
 * - a Seldon client reaches a v2 model (tensor, ndarray ranks 1–3, strings, booleans, strData,
 *   binData, several outputs); a v2 client a Seldon model (each datatype, typed and raw contents,
 *   ranks 0–3); INT64 2^53 exact, 2^53 + 1 refused (a SeldonMessage holds doubles), both ways;
 * - `x-seldon-translated` in the initial metadata, the metric counts each result;
 * - ModelMetadata / ModelReady of a Seldon model are the gateway's answers;
 * - a v2 shadow behind a Seldon primary gets ModelInfer; no annotation: nothing translated.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { LogCapture } from '../../helpers/observability.js';
import { startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { seededRandom } from '../../../routing/table/pick.js';

const PROTOCOL = 'seldon.io/gateway-protocol';
const PREDICT = '/seldon.protos.Seldon/Predict';
const INFER = '/inference.GRPCInferenceService/ModelInfer';

// Decoded as they are on the wire: int64 as decimal strings (exact), no defaults filled in, no virtual oneof fields.
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const seldonSvc = defs['seldon.protos.Seldon'] as unknown as Record<string, Method>;
const v2Svc = defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>;

/** `v` as a google.protobuf.Value (protobufjs's own definition: camelCase, whatever keepCase says). */
function pv(v: unknown): Msg {
  if (Array.isArray(v)) return { listValue: { values: v.map(pv) } };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (v !== null && typeof v === 'object') return { structValue: { fields: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, pv(x)])) } };
  return { nullValue: 'NULL_VALUE' };
}
const lv = (a: unknown[]): Msg => ({ values: a.map(pv) });

interface Recorded {
  readonly request: Msg;
  readonly metadata: Record<string, unknown>;
}

/** A v2 model as MLServer answers: its inputs back as outputs (`output-0`…), raw contents too; or `answers.v2` once. */
function startV2Model(calls: Recorded[], answers: { v2?: Msg | grpc.ServiceError }): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(v2Svc as unknown as grpc.ServiceDefinition, {
    ModelInfer: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      calls.push({ request: call.request, metadata: call.metadata.getMap() });
      const a = answers.v2;
      answers.v2 = undefined;
      if (a !== undefined) return 'code' in a ? cb(a as grpc.ServiceError) : cb(null, a);
      const r = call.request;
      const inputs = (r.inputs as Msg[] | undefined) ?? [];
      cb(null, {
        model_name: r.model_name,
        id: r.id,
        outputs: inputs.map((i, n) => ({ ...i, name: `output-${n}` })),
        raw_output_contents: r.raw_input_contents,
      });
    },
  });
  return listen(server);
}

/** A Seldon-protocol model as the wrapper answers: its data back, meta empty; or `answers.seldon` once. */
function startSeldonModel(calls: Recorded[], answers: { seldon?: Msg }): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(seldonSvc as unknown as grpc.ServiceDefinition, {
    Predict: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      calls.push({ request: call.request, metadata: call.metadata.getMap() });
      const a = answers.seldon;
      answers.seldon = undefined;
      const { meta: _meta, ...rest } = call.request;
      // The wrapper always sets `meta` (`construct_response`): empty without a puid.
      cb(null, a ?? { ...rest, meta: {} });
    },
  });
  return listen(server);
}

function listen(server: grpc.Server): Promise<{ server: grpc.Server; port: number }> {
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port }))));
}

interface Called {
  readonly res: Msg | undefined;
  readonly err: grpc.ServiceError | undefined;
  readonly headers: Record<string, unknown>;
}

describe('gRPC protocol translation', () => {
  const v2Calls: Recorded[] = [];
  const seldonCalls: Recorded[] = [];
  const shadowCalls: Recorded[] = [];
  const answers: { v2?: Msg | grpc.ServiceError; seldon?: Msg } = {};
  const servers: grpc.Server[] = [];
  let gw: TestGateway;
  let client: grpc.Client;
  const accessLog = new LogCapture();
  /** A v2 model that resets each odd-numbered call's stream once it has read it, and answers the next: what each attempt sent, as bytes. */
  let flaky: RawUpstream;
  const flakyBodies: Buffer[] = [];
  /** A v2 model that answers UNAVAILABLE: its predictor falls back to a Seldon one. */
  let busy: RawUpstream;

  /** A unary call of `path`, the message encoded by `method`'s definition (or sent as raw bytes), its answer decoded by it. */
  const call = (deployment: string, method: Method, path: string, req: Msg | Buffer, extra: Record<string, string> = {}): Promise<Called> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      md.set('seldon', deployment);
      md.set('namespace', 'm');
      for (const [k, v] of Object.entries(extra)) md.set(k, v);
      let headers: Record<string, unknown> = {};
      const bytes = Buffer.isBuffer(req) ? req : method.requestSerialize(req);
      const c = client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => method.responseDeserialize(b),
        bytes,
        md,
        (err, res) => resolve({ res: res ?? undefined, err: err ?? undefined, headers }),
      );
      c.on('metadata', (m) => (headers = m.getMap()));
    });
  const seldon = (deployment: string, req: Msg | Buffer, extra?: Record<string, string>) => call(deployment, seldonSvc.Predict!, PREDICT, req, extra);
  const v2 = (deployment: string, req: Msg | Buffer, extra?: Record<string, string>) => call(deployment, v2Svc.ModelInfer!, INFER, req, extra);

  beforeAll(async () => {
    const m2 = await startV2Model(v2Calls, answers);
    const ms = await startSeldonModel(seldonCalls, answers);
    const sh = await startV2Model(shadowCalls, {});
    servers.push(m2.server, ms.server, sh.server);
    // Each raw model answers ModelMetadata (fetched beside translated traffic) UNIMPLEMENTED; its inferences are counted apart.
    const unimplemented = (stream: http2.ServerHttp2Stream): void => {
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    };
    busy = await startRawUpstream((stream, _n, headers) => {
      if (headers[':path'] !== INFER) return unimplemented(stream);
      stream.resume();
      stream.once('end', () => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'model busy' }, { endStream: true }));
    });
    let inferences = 0;
    flaky = await startRawUpstream((stream, _n, headers) => {
      if (headers[':path'] !== INFER) return unimplemented(stream);
      const n = inferences++;
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.once('end', () => {
        flakyBodies.push(Buffer.concat(chunks));
        if (n % 2 === 0) return stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        const answer = v2Svc.ModelInfer!.responseSerialize({ model_name: 'clf', outputs: [{ name: 'o', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [2] } }] });
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        const head = Buffer.alloc(5);
        head.writeUInt32BE(answer.length, 1);
        stream.end(Buffer.concat([head, answer]));
      });
    });
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'classifier' } }] }, { [PROTOCOL]: '{"modelName": "iris"}' }),
        'half.yaml': sdep('half', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'half' } }] }, { [PROTOCOL]: 'datatype: FP16\nnames: [a, b]' }),
        'single.yaml': sdep('single', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'single' } }] }, { [PROTOCOL]: 'datatype: FP32' }),
        'legacy.yaml': sdep('legacy', 'm', { predictors: [{ name: 'main', graph: { name: 'legacy' } }] }, { [PROTOCOL]: 'accept: [v2]' }),
        'shadowed.yaml': sdep('shadowed', 'm', {
          predictors: [
            { name: 'main', graph: { name: 'model' } },
            { name: 'copy', shadow: true, graph: { name: 'model' }, annotations: { [PROTOCOL]: 'speaks: v2' } },
          ],
        }),
        'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }),
        'retried.yaml': sdep('retried', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [PROTOCOL]: '{}', 'seldon.io/ambassador-retries': '2' }),
        'fb.yaml': sdep(
          'fb',
          'm',
          {
            predictors: [
              { name: 'main', graph: { name: 'model' }, annotations: { [PROTOCOL]: 'speaks: v2' } },
              { name: 'small', graph: { name: 'model' } },
            ],
          },
          { 'seldon.io/gateway-fallback': 'to: {predictor: small}\non: [error]' },
        ),
        'pair.yaml': sdep('pair', 'm', {
          predictors: [
            { name: 'main', traffic: 50, graph: { name: 'model' } },
            { name: 'next', traffic: 50, graph: { name: 'model' }, annotations: { [PROTOCOL]: 'speaks: v2' } },
          ],
        }),
      },
      resolve: {
        'iris-main.m:5001': m2.port,
        'half-main.m:5001': m2.port,
        'single-main.m:5001': m2.port,
        'legacy-main.m:5001': ms.port,
        'shadowed-main.m:5001': ms.port,
        'shadowed-copy.m:5001': sh.port,
        'plain-main.m:5001': ms.port,
        'retried-main.m:5001': flaky.port,
        'pair-main.m:5001': ms.port,
        'fb-main.m:5001': busy.port,
        'fb-small.m:5001': ms.port,
        'pair-next.m:5001': m2.port,
      },
      accessSink: accessLog,
    });
    client = new grpc.Client(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await gw?.stop();
    for (const s of servers) s.forceShutdown();
    await flaky?.close();
    await busy?.close();
  });

  it("the access log says a translated call's seldon->v2, and a plain call's line has no such field", async () => {
    const ok = await seldon('iris', { data: { tensor: { shape: [1, 2], values: [1, 2] } } }, { 'x-request-id': 'glog-ok' });
    expect(ok.err).toBeUndefined();
    const plain = await seldon('plain', { strData: 'x' }, { 'x-request-id': 'glog-plain' });
    expect(plain.err).toBeUndefined();
    await waitFor(() => accessLog.text.includes('glog-ok') && accessLog.text.includes('glog-plain'));
    const line = (id: string) => accessLog.lines().find((l) => l.request_id === id)!;
    expect(line('glog-ok')).toMatchObject({ grpc_status: 0, deployment: 'iris', translated: 'seldon->v2' });
    expect(line('glog-plain')).not.toHaveProperty('translated');
  });

  /** `f`'s call is refused with INVALID_ARGUMENT, a message saying `why`, and neither model was called. */
  async function refused(f: () => Promise<Called>, why: RegExp): Promise<void> {
    const before = v2Calls.length + seldonCalls.length;
    const o = await f();
    expect(o.err?.code, o.err?.details).toBe(grpc.status.INVALID_ARGUMENT);
    expect(o.err?.details).toMatch(why);
    expect(v2Calls.length + seldonCalls.length, 'no upstream call').toBe(before);
  }

  describe("the attacker's inputs: INVALID_ARGUMENT, nothing sent", () => {
    it('a huge shape with no values (Seldon tensor)', async () => {
      await refused(() => seldon('iris', { data: { tensor: { shape: [1000000000, 1000000000], values: [] } } }), /has 0 elements where its shape/);
    });
    it('a huge int64 shape with no contents (v2)', async () => {
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['9000000000000000000'], contents: {} }] }), /shape/);
      await refused(
        () => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['1000000', '1000000'], contents: { fp32_contents: [1] } }] }),
        /has at most 6 elements where its shape \[1000000,1000000\] holds 1000000000000/,
      );
    });
    it('an element count that does not match the shape', async () => {
      await refused(() => seldon('iris', { data: { tensor: { shape: [2, 2], values: [1, 2, 3] } } }), /has 3 elements where its shape \[2,2\] holds 4/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'INT32', shape: ['3'], contents: { int_contents: [1, 2] } }] }), /has 2 elements where its shape \[3\] holds 3/);
    });
    it('raw contents whose length is not shape × size', async () => {
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['2'] }], raw_input_contents: [Buffer.alloc(7)] }), /not whole 4-byte elements/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['3'] }], raw_input_contents: [Buffer.alloc(8)] }), /has 2 elements where its shape \[3\] holds 3/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['1'] }], raw_input_contents: [] }), /datatype|elements/);
    });
    it('a BYTES length prefix past the end', async () => {
      const raw = Buffer.from([0xff, 0xff, 0xff, 0x7f, 0x61]);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'BYTES', shape: ['1'] }], raw_input_contents: [raw] }), /end inside an element/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'BYTES', shape: ['1'] }], raw_input_contents: [Buffer.from([1, 0])] }), /end inside an element length/);
    });
    it('a deeply nested ListValue: refused without exhausting the stack', async () => {
      // 100,000 levels, written by hand (a library would recurse): SeldonMessage{data{ndarray: ListValue{values: Value{list_value: …}}}}.
      await refused(() => seldon('iris', deepNdarray(100000)), /nested deeper than 64/);
      let nested: unknown = [1];
      for (let d = 1; d < 33; d++) nested = [nested];
      await refused(() => seldon('iris', { data: { ndarray: lv(nested as unknown[]) } }), /nested deeper than 32/);
    });
    it('ragged and mixed ndarrays, non-integral and out-of-range integers, mismatched contents field', async () => {
      await refused(() => seldon('iris', { data: { ndarray: lv([[1, 2], [3]]) } }), /ragged/);
      await refused(() => seldon('iris', { data: { ndarray: lv([1, 'a']) } }), /mixed array/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'INT8', shape: ['1'], contents: { int_contents: [300] } }] }), /out of range for INT8/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP64', shape: ['1'], contents: { fp32_contents: [1] } }] }), /contents field 6/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP16', shape: ['1'], contents: { fp32_contents: [1] } }] }), /only raw contents/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'INT128', shape: ['1'] }] }), /datatype must be a v2 datatype/);
    });
    it('a shape whose product overflows to 0 with no elements, negative dimensions whose product is the count', async () => {
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP64', shape: ['4294967296', '4294967296'], contents: {} }] }), /shape/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'FP64', shape: ['-1', '-2'], contents: { fp64_contents: [1, 2] } }] }), /shape/);
      // A Seldon tensor's shape is int32: 65536 × 65536 is 0 in 32-bit arithmetic.
      await refused(() => seldon('iris', { data: { tensor: { shape: [65536, 65536], values: [] } } }), /shape/);
      await refused(() => seldon('iris', { data: { tensor: { shape: [-1, -2], values: [1, 2] } } }), /shape/);
    });
    it('garbage bytes, a compressed flag, two messages, BYTES that are not UTF-8', async () => {
      await refused(() => seldon('iris', Buffer.from([0x1a, 0xff])), /not a well-formed protobuf message/);
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'BYTES', shape: ['1'], contents: { bytes_contents: [Buffer.from([0xc3, 0x28])] } }] }), /not UTF-8/);
      await refused(() => seldon('iris', { jsonData: pv({ a: 1 }) }), /jsonData has no Open Inference Protocol form/);
    });
  });

  it('a message within 64 MiB that translation grows beyond it (INT8 varints become doubles) is RESOURCE_EXHAUSTED, nothing sent', { timeout: 60_000 }, async () => {
    // ModelInferRequest{model_name: legacy, inputs: [{name: x, datatype: INT8, shape: [n], contents: {int_contents: n × 1}}]}, written by hand:
    // 8.6 MB the client sends, 8 bytes a double the Seldon model would get (68.8 MB).
    const n = 8_600_000;
    const varint = (v: number): Buffer => {
      const out: number[] = [];
      for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
      out.push(v);
      return Buffer.from(out);
    };
    const field = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), varint(body.length), body]);
    const contents = field(0x12, Buffer.alloc(n, 1));
    const tensor = Buffer.concat([field(0x0a, Buffer.from('x')), field(0x12, Buffer.from('INT8')), field(0x1a, varint(n)), field(0x2a, contents)]);
    const msg = Buffer.concat([field(0x0a, Buffer.from('legacy')), field(0x2a, tensor)]);
    const before = v2Calls.length + seldonCalls.length;
    const o = await v2('legacy', msg);
    expect(o.err?.code, o.err?.details).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Refused by its shape, before a single element is decoded (8.6 million of them would be a JS array of 69 MB).
    expect(o.err?.details).toMatch(/inputs\[0\]'s shape \[8600000\] holds 8600000 elements, more than the 8388608 a translated message holds/);
    expect(v2Calls.length + seldonCalls.length, 'no upstream call').toBe(before);
  });

  it('contents of more elements than the shape holds are refused before they are decoded: typed, raw, BYTES', { timeout: 60_000 }, async () => {
    // 4 million one-byte varints (or empty BYTES elements) under a shape of [1]: each would be an element decoded, then refused by its count.
    const many = 4_000_000;
    await refused(
      () => v2('legacy', { inputs: [{ name: 'x', datatype: 'INT32', shape: ['1'], contents: { int_contents: new Array<number>(many).fill(1) } }] }),
      /inputs\[0\] has more elements than its shape \[1\] holds/,
    );
    await refused(
      () => v2('legacy', { inputs: [{ name: 'x', datatype: 'INT8', shape: ['1'] }], raw_input_contents: [Buffer.alloc(many, 1)] }),
      /inputs\[0\] has more elements than its shape \[1\] holds/,
    );
    await refused(
      () => v2('legacy', { inputs: [{ name: 'x', datatype: 'BYTES', shape: ['2'] }], raw_input_contents: [Buffer.alloc(many * 4)] }),
      /inputs\[0\] has more elements than its shape \[2\] holds/,
    );
    await refused(
      () => v2('legacy', { inputs: [{ name: 'x', datatype: 'BYTES', shape: ['1'], contents: { bytes_contents: [Buffer.from('a'), Buffer.from('b')] } }] }),
      /inputs\[0\] has more elements than its shape \[1\] holds/,
    );
  });

  describe('a Seldon client, a v2 model', () => {
    it('a tensor: the model gets ModelInfer of FP64, the client the wrapper’s tensor answer', async () => {
      const o = await seldon('iris', { meta: { puid: 'p-1' }, data: { tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } });
      expect(o.err).toBeUndefined();
      expect(v2Calls.at(-1)!.request).toEqual({
        model_name: 'iris',
        id: 'p-1',
        inputs: [{ name: 'input-0', datatype: 'FP64', shape: ['1', '4'], contents: { fp64_contents: [5.1, 3.5, 1.4, 0.2] } }],
      });
      expect(o.res).toEqual({ meta: { puid: 'p-1' }, data: { names: ['t:0', 't:1', 't:2', 't:3'], tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } });
      expect(o.headers['x-seldon-translated']).toBe('seldon->v2');
    });

    const ndarrays: [string, unknown[], Msg, Msg][] = [
      ['rank 1 numbers', [1, 2.5], { datatype: 'FP64', shape: ['2'], contents: { fp64_contents: [1, 2.5] } }, { ndarray: lv([1, 2.5]) }],
      [
        'rank 2 numbers',
        [
          [1, 2],
          [3, 4],
        ],
        { datatype: 'FP64', shape: ['2', '2'], contents: { fp64_contents: [1, 2, 3, 4] } },
        {
          names: ['t:0', 't:1'],
          ndarray: lv([
            [1, 2],
            [3, 4],
          ]),
        },
      ],
      ['rank 3 numbers', [[[1], [2]]], { datatype: 'FP64', shape: ['1', '2', '1'], contents: { fp64_contents: [1, 2] } }, { names: ['t:0', 't:1'], ndarray: lv([[[1], [2]]]) }],
      ['strings', [['a', 'é']], { datatype: 'BYTES', shape: ['1', '2'], contents: { bytes_contents: [Buffer.from('a'), Buffer.from('é')] } }, { names: ['t:0', 't:1'], ndarray: lv([['a', 'é']]) }],
      ['booleans', [true, false], { datatype: 'BOOL', shape: ['2'], contents: { bool_contents: [true, false] } }, { ndarray: lv([true, false]) }],
    ];
    it.each(ndarrays)('an ndarray of %s', async (_what, nd, input, answer) => {
      const o = await seldon('iris', { data: { ndarray: lv(nd) } });
      expect(o.err).toBeUndefined();
      expect(v2Calls.at(-1)!.request).toEqual({ model_name: 'iris', inputs: [{ name: 'input-0', ...input }] });
      expect(o.res).toEqual({ meta: {}, data: answer });
    });

    it('random doubles (seeded, any bits a double holds) survive Seldon → v2 → Seldon unchanged, as a tensor and as an ndarray, ranks 1–3', async () => {
      const r = seededRandom(75);
      const int = (n: number): number => Math.floor(r() * n);
      const bits = new DataView(new ArrayBuffer(8));
      const double = (): number => {
        for (;;) {
          bits.setUint32(0, int(2 ** 32));
          bits.setUint32(4, int(2 ** 32));
          const d = bits.getFloat64(0);
          if (Number.isFinite(d)) return d;
        }
      };
      for (let c = 0; c < 20; c++) {
        const shape = Array.from({ length: 1 + int(3) }, () => 1 + int(4));
        const values = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, double);
        const t = await seldon('iris', { data: { tensor: { shape, values } } });
        expect(t.err, t.err?.details).toBeUndefined();
        expect(v2Calls.at(-1)!.request).toEqual({ model_name: 'iris', inputs: [{ name: 'input-0', datatype: 'FP64', shape: shape.map(String), contents: { fp64_contents: values } }] });
        expect((t.res!.data as { tensor: Msg }).tensor).toEqual({ shape, values });
        const nest = (at: number, dims: number[]): unknown => (dims.length === 0 ? values[at] : Array.from({ length: dims[0]! }, (_, i) => nest(at * dims[0]! + i, dims.slice(1))));
        const nested = nest(0, shape) as unknown[];
        const n = await seldon('iris', { data: { ndarray: lv(nested) } });
        expect(n.err, n.err?.details).toBeUndefined();
        expect((n.res!.data as { ndarray: Msg }).ndarray).toEqual(lv(nested));
      }
    });

    it('strData and binData: one BYTES element (str, base64), answered in kind', async () => {
      const s = await seldon('iris', { strData: 'hello' });
      expect(v2Calls.at(-1)!.request).toEqual({
        model_name: 'iris',
        inputs: [{ name: 'input-0', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'str' } }, contents: { bytes_contents: [Buffer.from('hello')] } }],
      });
      expect(s.res).toEqual({ meta: {}, strData: 'hello' });
      const bin = Buffer.from([0, 1, 2, 255]);
      const b = await seldon('iris', { binData: bin });
      expect(v2Calls.at(-1)!.request).toEqual({
        model_name: 'iris',
        inputs: [{ name: 'input-0', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'base64' } }, contents: { bytes_contents: [Buffer.from(bin.toString('base64'))] } }],
      });
      expect(b.res).toEqual({ meta: {}, binData: bin });
    });

    it('a declared FP32 takes each double as its nearest float32 (as a v2 model parses the same JSON number over REST); a value that would vanish or overflow is refused, nothing sent', async () => {
      const o = await seldon('single', { data: { tensor: { shape: [1, 3], values: [0.1, 1.5, -1e30] } } });
      expect(o.err, o.err?.details).toBeUndefined();
      expect(v2Calls.at(-1)!.request).toEqual({
        model_name: 'single',
        inputs: [{ name: 'input-0', datatype: 'FP32', shape: ['1', '3'], contents: { fp32_contents: [Math.fround(0.1), 1.5, Math.fround(-1e30)] } }],
      });
      const calls = v2Calls.length;
      await refused(() => seldon('single', { data: { tensor: { shape: [1], values: [1e-50] } } }), /too small for FP32/);
      await refused(() => seldon('single', { data: { tensor: { shape: [1], values: [1e39] } } }), /out of range for FP32/);
      expect(v2Calls.length).toBe(calls);
    });

    it('the annotation’s datatype FP16 goes as raw contents; its names name the answer', async () => {
      const o = await seldon('half', { data: { tensor: { shape: [1, 2], values: [1.5, -2] } } });
      expect(o.err).toBeUndefined();
      const raw = Buffer.from([0x00, 0x3e, 0x00, 0xc0]);
      expect(v2Calls.at(-1)!.request).toEqual({ model_name: 'half', inputs: [{ name: 'input-0', datatype: 'FP16', shape: ['1', '2'] }], raw_input_contents: [raw] });
      expect(o.res).toEqual({ meta: {}, data: { names: ['a', 'b'], tensor: { shape: [1, 2], values: [1.5, -2] } } });
      // A value FP16 cannot hold is refused, never rounded.
      await refused(() => seldon('half', { data: { tensor: { shape: [1], values: [0.1] } } }), /FP16 cannot hold exactly/);
    });

    it('several outputs become jsonData; INT64 from the model exact within 2^53', async () => {
      answers.v2 = {
        model_name: 'iris',
        outputs: [
          { name: 'label', datatype: 'INT64', shape: ['2'], contents: { int64_contents: ['9007199254740992', '-3'] } },
          { name: 'proba', datatype: 'FP32', shape: ['1', '2'], contents: { fp32_contents: [0.25, 0.75] } },
        ],
      };
      const o = await seldon('iris', { data: { ndarray: lv([1]) } });
      expect(o.err).toBeUndefined();
      expect(o.res).toEqual({ meta: {}, jsonData: pv({ label: [9007199254740992, -3], proba: [[0.25, 0.75]] }) });
    });

    it('INT64 2^53 + 1 in the model’s answer: INTERNAL, never rounded', async () => {
      const series = 'seldon_gateway_protocol_translations_total{namespace="m",deployment="iris",from="seldon",to="v2",result="bad-answer"}';
      const before = await metric(gw.adminUrl, series);
      answers.v2 = { model_name: 'iris', outputs: [{ name: 'o', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['9007199254740993'] } }] };
      const o = await seldon('iris', { data: { ndarray: lv([1]) } });
      expect(o.err?.code).toBe(grpc.status.INTERNAL);
      expect(o.err?.details).toMatch(/9007199254740993, which a SeldonMessage \(doubles\) cannot hold exactly/);
      expect(await metric(gw.adminUrl, series)).toBe(before + 1);
    });

    it('the model’s error status passes as it came, counted', async () => {
      const series = 'seldon_gateway_protocol_translations_total{namespace="m",deployment="iris",from="seldon",to="v2",result="model-error"}';
      const before = await metric(gw.adminUrl, series);
      answers.v2 = Object.assign(new Error('shape mismatch'), { code: grpc.status.INVALID_ARGUMENT, details: 'shape mismatch', metadata: new grpc.Metadata() });
      const o = await seldon('iris', { data: { ndarray: lv([1]) } });
      expect(o.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(o.err?.details).toBe('shape mismatch');
      expect(await metric(gw.adminUrl, series)).toBe(before + 1);
    });
  });

  describe('a v2 client, a Seldon model', () => {
    // datatype, contents (or raw), what the Seldon model gets as data, the client's output
    const goldens: [string, Msg, Msg, Msg][] = [
      [
        'BOOL rank 1',
        { datatype: 'BOOL', shape: ['2'], contents: { bool_contents: [true, false] } },
        { ndarray: lv([true, false]) },
        { datatype: 'BOOL', shape: ['2'], contents: { bool_contents: [true, false] } },
      ],
      [
        'INT8 rank 2',
        { datatype: 'INT8', shape: ['1', '2'], contents: { int_contents: [-128, 127] } },
        { tensor: { shape: [1, 2], values: [-128, 127] } },
        { datatype: 'INT8', shape: ['1', '2'], contents: { int_contents: [-128, 127] } },
      ],
      [
        'INT16',
        { datatype: 'INT16', shape: ['1'], contents: { int_contents: [-32768] } },
        { tensor: { shape: [1], values: [-32768] } },
        { datatype: 'INT16', shape: ['1'], contents: { int_contents: [-32768] } },
      ],
      ['INT32 rank 0', { datatype: 'INT32', shape: [], contents: { int_contents: [-7] } }, { tensor: { values: [-7] } }, { datatype: 'INT32', contents: { int_contents: [-7] } }],
      [
        'INT64 2^53',
        { datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['9007199254740992'] } },
        { tensor: { shape: [1], values: [9007199254740992] } },
        { datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['9007199254740992'] } },
      ],
      [
        'UINT8',
        { datatype: 'UINT8', shape: ['1'], contents: { uint_contents: [255] } },
        { tensor: { shape: [1], values: [255] } },
        { datatype: 'UINT8', shape: ['1'], contents: { uint_contents: [255] } },
      ],
      [
        'UINT16',
        { datatype: 'UINT16', shape: ['1'], contents: { uint_contents: [65535] } },
        { tensor: { shape: [1], values: [65535] } },
        { datatype: 'UINT16', shape: ['1'], contents: { uint_contents: [65535] } },
      ],
      [
        'UINT32',
        { datatype: 'UINT32', shape: ['1'], contents: { uint_contents: [4294967295] } },
        { tensor: { shape: [1], values: [4294967295] } },
        { datatype: 'UINT32', shape: ['1'], contents: { uint_contents: [4294967295] } },
      ],
      [
        'UINT64 2^63',
        { datatype: 'UINT64', shape: ['1'], contents: { uint64_contents: ['9223372036854775808'] } },
        { tensor: { shape: [1], values: [9223372036854775808] } },
        { datatype: 'UINT64', shape: ['1'], contents: { uint64_contents: ['9223372036854775808'] } },
      ],
      [
        'FP32 rank 3',
        { datatype: 'FP32', shape: ['1', '1', '2'], contents: { fp32_contents: [0.5, -1.25] } },
        { tensor: { shape: [1, 1, 2], values: [0.5, -1.25] } },
        { datatype: 'FP32', shape: ['1', '1', '2'], contents: { fp32_contents: [0.5, -1.25] } },
      ],
      [
        'FP64',
        { datatype: 'FP64', shape: ['2'], contents: { fp64_contents: [0.1, -0] } },
        { tensor: { shape: [2], values: [0.1, -0] } },
        { datatype: 'FP64', shape: ['2'], contents: { fp64_contents: [0.1, -0] } },
      ],
      [
        'BYTES rank 2',
        { datatype: 'BYTES', shape: ['1', '2'], contents: { bytes_contents: [Buffer.from('a'), Buffer.from('bc')] } },
        { ndarray: lv([['a', 'bc']]) },
        { datatype: 'BYTES', shape: ['1', '2'], contents: { bytes_contents: [Buffer.from('a'), Buffer.from('bc')] } },
      ],
    ];
    it.each(goldens)('%s', async (_what, input, data, output) => {
      const o = await v2('legacy', { model_name: 'legacy', id: 'r-1', inputs: [{ name: 'x', ...input }] });
      expect(o.err, o.err?.details).toBeUndefined();
      expect(seldonCalls.at(-1)!.request).toEqual({ meta: { puid: 'r-1' }, data });
      expect(o.res).toEqual({ model_name: 'legacy', id: 'r-1', outputs: [{ name: 'output-0', ...output }] });
      expect(o.headers['x-seldon-translated']).toBe('v2->seldon');
    });

    it("the Seldon model's answer of another shape, or with a value the request's datatype cannot hold exactly, keeps its values' datatype (FP64: a SeldonMessage holds doubles)", async () => {
      answers.seldon = { data: { tensor: { shape: [1, 3], values: [0.25, 0.5, 0.25] } } };
      const other = await v2('legacy', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', '2'], contents: { fp32_contents: [0.5, 1] } }] });
      expect(other.res).toEqual({ model_name: 'legacy', outputs: [{ name: 'output-0', datatype: 'FP64', shape: ['1', '3'], contents: { fp64_contents: [0.25, 0.5, 0.25] } }] });
      // 0.1 as a double: float32 cannot hold it exactly, so it is not written as FP32 (never rounded), nor refused.
      answers.seldon = { data: { tensor: { shape: [1, 2], values: [0.1, 2] } } };
      const inexact = await v2('legacy', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', '2'], contents: { fp32_contents: [0.5, 1] } }] });
      expect(inexact.res).toEqual({ model_name: 'legacy', outputs: [{ name: 'output-0', datatype: 'FP64', shape: ['1', '2'], contents: { fp64_contents: [0.1, 2] } }] });
      answers.seldon = { data: { tensor: { shape: [1, 2], values: [0.5, 2] } } };
      const whole = await v2('legacy', { inputs: [{ name: 'x', datatype: 'INT32', shape: ['1', '2'], contents: { int_contents: [1, 2] } }] });
      expect(whole.res).toEqual({ model_name: 'legacy', outputs: [{ name: 'output-0', datatype: 'FP64', shape: ['1', '2'], contents: { fp64_contents: [0.5, 2] } }] });
    });

    it('raw contents: FP16, BF16, INT64, BYTES read little-endian', async () => {
      const cases: [string, Buffer, number[] | string[], string][] = [
        ['FP16', Buffer.from([0x00, 0x3e, 0x00, 0xc0]), [1.5, -2], 'tensor'],
        ['BF16', Buffer.from([0xc0, 0x3f, 0x00, 0xc0]), [1.5, -2], 'tensor'],
        ['INT64', Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0x20, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]), [9007199254740992, -1], 'tensor'],
        ['BYTES', Buffer.from([1, 0, 0, 0, 0x61, 2, 0, 0, 0, 0x62, 0x63]), ['a', 'bc'], 'ndarray'],
      ];
      for (const [dt, raw, values, kind] of cases) {
        const o = await v2('legacy', { inputs: [{ name: 'x', datatype: dt, shape: ['2'] }], raw_input_contents: [raw] });
        expect(o.err, `${dt}: ${o.err?.details}`).toBeUndefined();
        expect(seldonCalls.at(-1)!.request, dt).toEqual({ meta: {}, data: kind === 'tensor' ? { tensor: { shape: [2], values } } : { ndarray: lv(values) } });
      }
    });

    it('INT64 2^53 + 1: refused, never rounded (a SeldonMessage holds doubles)', async () => {
      const series = 'seldon_gateway_protocol_translations_total{namespace="m",deployment="legacy",from="v2",to="seldon",result="refused"}';
      const before = await metric(gw.adminUrl, series);
      await refused(
        () => v2('legacy', { inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['9007199254740993'] } }] }),
        /9007199254740993, which a SeldonMessage \(doubles\) cannot hold exactly/,
      );
      await refused(() => v2('legacy', { inputs: [{ name: 'x', datatype: 'UINT64', shape: ['1'], contents: { uint64_contents: ['18446744073709551614'] } }] }), /cannot hold exactly/);
      expect(await metric(gw.adminUrl, series)).toBe(before + 2);
    });

    it('strData and binData in kind: str and base64 content types, answered in kind', async () => {
      const s = await v2('legacy', {
        inputs: [{ name: 'x', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'str' } }, contents: { bytes_contents: [Buffer.from('hi')] } }],
      });
      expect(seldonCalls.at(-1)!.request).toEqual({ meta: {}, strData: 'hi' });
      expect(s.res).toEqual({
        model_name: 'legacy',
        outputs: [{ name: 'output-0', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'str' } }, contents: { bytes_contents: [Buffer.from('hi')] } }],
      });
      const bin = Buffer.from([9, 0, 255]);
      const b = await v2('legacy', {
        inputs: [{ name: 'x', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'base64' } }, contents: { bytes_contents: [Buffer.from(bin.toString('base64'))] } }],
      });
      expect(seldonCalls.at(-1)!.request).toEqual({ meta: {}, binData: bin });
      // Base64 text that is not base64 would reach the model as other bytes: refused, nothing sent.
      const sent = seldonCalls.length;
      await refused(
        () => v2('legacy', { inputs: [{ name: 'x', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'base64' } }, contents: { bytes_contents: [Buffer.from('a*k=')] } }] }),
        /not base64/,
      );
      expect(seldonCalls.length).toBe(sent);
      expect(b.res).toEqual({
        model_name: 'legacy',
        outputs: [{ name: 'output-0', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'base64' } }, contents: { bytes_contents: [Buffer.from(bin.toString('base64'))] } }],
      });
    });

    it('ModelMetadata and ModelReady are the gateway’s answers: nothing sent', async () => {
      const before = seldonCalls.length;
      const meta = await call('legacy', v2Svc.ModelMetadata!, '/inference.GRPCInferenceService/ModelMetadata', { name: 'legacy' });
      expect(meta.err).toBeUndefined();
      expect(meta.res).toEqual({ name: 'legacy', platform: 'seldon' });
      expect(meta.headers['x-seldon-translated']).toBe('v2->seldon');
      const ready = await call('legacy', v2Svc.ModelReady!, '/inference.GRPCInferenceService/ModelReady', { name: 'legacy' });
      expect(ready.res).toEqual({ ready: true });
      expect(seldonCalls.length).toBe(before);
    });

    it('ModelMetadata and ModelReady naming a version are answered as the model’s (a Seldon model has no versions, as over REST), nothing sent', async () => {
      const before = seldonCalls.length;
      for (const version of ['2', 'v1.2_b-3']) {
        const meta = await call('legacy', v2Svc.ModelMetadata!, '/inference.GRPCInferenceService/ModelMetadata', { name: 'legacy', version });
        expect(meta.err, version).toBeUndefined();
        expect(meta.res, version).toEqual({ name: 'legacy', platform: 'seldon' });
        expect(meta.headers['x-seldon-translated']).toBe('v2->seldon');
        const ready = await call('legacy', v2Svc.ModelReady!, '/inference.GRPCInferenceService/ModelReady', { name: 'legacy', version });
        expect(ready.err, version).toBeUndefined();
        expect(ready.res, version).toEqual({ ready: true });
      }
      expect(seldonCalls.length).toBe(before);
    });

    it('a version that is not one, or another model’s name, is NOT_FOUND with MLServer’s message, nothing sent', async () => {
      const before = seldonCalls.length;
      for (const [method, path] of [
        [v2Svc.ModelMetadata!, '/inference.GRPCInferenceService/ModelMetadata'],
        [v2Svc.ModelReady!, '/inference.GRPCInferenceService/ModelReady'],
      ] as const) {
        for (const version of ['../2', '1/2', '.hidden', '-1', '%2F']) {
          const r = await call('legacy', method, path, { name: 'legacy', version });
          expect(r.res, `${path} ${version}`).toBeUndefined();
          expect(r.err?.code, `${path} ${version}`).toBe(grpc.status.NOT_FOUND);
          expect(r.err?.details).toBe(`Model legacy with version ${version} not found`);
        }
        for (const name of ['other', '', 'LEGACY']) {
          const r = await call('legacy', method, path, { name, version: '2' });
          expect(r.err?.code, `${path} ${name}`).toBe(grpc.status.NOT_FOUND);
          expect(r.err?.details).toBe(`Model ${name} not found`);
        }
        // A message that is not one: INVALID_ARGUMENT.
        const bad = await call('legacy', method, path, Buffer.from([0x0a, 0x7f]));
        expect(bad.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      }
      expect(seldonCalls.length).toBe(before);
    });
  });

  it('a v2 shadow behind a Seldon primary gets ModelInfer; the primary its Predict as it came', async () => {
    const before = shadowCalls.length;
    const o = await seldon('shadowed', { data: { tensor: { shape: [1], values: [3] } } });
    expect(o.err).toBeUndefined();
    expect(o.headers['x-seldon-translated']).toBeUndefined();
    expect(seldonCalls.at(-1)!.request).toEqual({ data: { tensor: { shape: [1], values: [3] } } });
    await waitFor(() => shadowCalls.length > before, 3000);
    expect(shadowCalls.at(-1)!.request).toEqual({ model_name: 'model', inputs: [{ name: 'input-0', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [3] } }] });
  });

  it('a retry resends the translated message as it was sent: translated once, counted once', async () => {
    const series = 'seldon_gateway_protocol_translations_total{namespace="m",deployment="retried",from="seldon",to="v2",result="ok"}';
    const before = await metric(gw.adminUrl, series);
    const first = flakyBodies.length;
    const o = await seldon('retried', { meta: { puid: 'again' }, data: { tensor: { shape: [1], values: [1] } } });
    expect(o.err, o.err?.details).toBeUndefined();
    expect(o.res).toEqual({ meta: { puid: 'again' }, data: { tensor: { shape: [1], values: [2] } } });
    expect(flakyBodies.length - first).toBe(2);
    const [a, b] = flakyBodies.slice(first);
    expect(b).toEqual(a);
    expect(v2Svc.ModelInfer!.requestDeserialize(a!.subarray(5))).toEqual({
      model_name: 'clf',
      id: 'again',
      inputs: [{ name: 'input-0', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [1] } }],
    });
    expect(flaky.streams.filter((s) => s[':path'] !== INFER).every((s) => s[':path'] === '/inference.GRPCInferenceService/ModelMetadata')).toBe(true);
    expect(await metric(gw.adminUrl, series)).toBe(before + 1);
  });

  it('a canary pair, Seldon main and v2 next: each model its own protocol, the client always the Seldon form', async () => {
    const [s0, v0] = [seldonCalls.length, v2Calls.length];
    const answers: Msg[] = [];
    for (let i = 0; i < 24; i++) {
      const o = await seldon('pair', { data: { tensor: { shape: [1], values: [3] } } });
      expect(o.err, o.err?.details).toBeUndefined();
      answers.push(o.res!);
    }
    expect(seldonCalls.length - s0).toBeGreaterThan(0);
    expect(v2Calls.length - v0).toBeGreaterThan(0);
    expect(seldonCalls.length - s0 + v2Calls.length - v0).toBe(24);
    for (const c of seldonCalls.slice(s0)) expect(c.request).toEqual({ data: { tensor: { shape: [1], values: [3] } } });
    for (const c of v2Calls.slice(v0)) expect(c.request).toEqual({ model_name: 'model', inputs: [{ name: 'input-0', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [3] } }] });
    for (const a of answers) expect(a).toEqual({ meta: {}, data: { tensor: { shape: [1], values: [3] } } });
  });

  it('a fallback of the client’s protocol gets the client’s message as it came, not the translation', async () => {
    const busyInfers = (): number => busy.streams.filter((s) => s[':path'] === INFER).length;
    const before = busyInfers();
    const o = await seldon('fb', { meta: { puid: 'fb-1' }, data: { tensor: { shape: [1], values: [4] } } });
    expect(o.err, o.err?.details).toBeUndefined();
    expect(busyInfers() - before).toBe(1);
    expect(seldonCalls.at(-1)!.request).toEqual({ meta: { puid: 'fb-1' }, data: { tensor: { shape: [1], values: [4] } } });
    expect(o.res).toEqual({ meta: {}, data: { tensor: { shape: [1], values: [4] } } });
    expect(o.headers['x-seldon-translated']).toBeUndefined();
  });

  it('no annotation: the call goes as it came, untranslated', async () => {
    const o = await seldon('plain', { data: { tensor: { shape: [1], values: [3] } }, meta: { puid: 'x' } });
    expect(o.err).toBeUndefined();
    expect(o.headers['x-seldon-translated']).toBeUndefined();
    expect(seldonCalls.at(-1)!.request).toEqual({ meta: { puid: 'x' }, data: { tensor: { shape: [1], values: [3] } } });
  });

  it('counts each translated answer', async () => {
    const series = 'seldon_gateway_protocol_translations_total{namespace="m",deployment="iris",from="seldon",to="v2",result="ok"}';
    const before = await metric(gw.adminUrl, series);
    await seldon('iris', { data: { ndarray: lv([1]) } });
    expect(await metric(gw.adminUrl, series)).toBe(before + 1);
  });
});

/** A SeldonMessage whose ndarray nests `levels` lists, empty at the bottom: only headers, each a tag and the length of all inside it. */
function deepNdarray(levels: number): Buffer {
  const heads: number[][] = [];
  let inside = 0;
  const wrap = (field: number): void => {
    const h = [field * 8 + 2];
    let n = inside;
    while (n >= 0x80) {
      h.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    h.push(n);
    heads.push(h);
    inside += h.length;
  };
  for (let i = 0; i < levels; i++) {
    wrap(6); // Value.list_value
    wrap(1); // ListValue.values
  }
  wrap(3); // DefaultData.ndarray
  wrap(3); // SeldonMessage.data
  return Buffer.from(heads.reverse().flat());
}

describe('gRPC translation: a request that stops mid-message, and a model that stops answering', () => {
  const calls: Recorded[] = [];
  let model: grpc.Server;
  /** A v2 model that reads each inference and never answers (ModelMetadata: UNIMPLEMENTED). */
  let mute: RawUpstream;
  let gw: TestGateway;

  /** A Predict over `session` of a whole SeldonMessage: its headers and trailers merged. */
  const predictOn = (session: http2.ClientHttp2Session, deployment: string): Promise<http2.IncomingHttpHeaders> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers', seldon: deployment, namespace: 'm' });
      const message = seldonSvc.Predict!.requestSerialize({ data: { tensor: { shape: [1, 2], values: [1, 2] } } });
      const head = Buffer.alloc(5);
      head.writeUInt32BE(message.length, 1);
      let got: http2.IncomingHttpHeaders = {};
      s.on('response', (h) => (got = { ...got, ...h }));
      s.on('trailers', (h) => (got = { ...got, ...h }));
      s.on('error', reject);
      s.resume();
      s.on('close', () => resolve(got));
      s.end(Buffer.concat([head, message]));
    });

  beforeAll(async () => {
    const m = await startV2Model(calls, {});
    model = m.server;
    mute = await startRawUpstream((stream, _n, headers) => {
      stream.resume();
      if (headers[':path'] !== INFER) stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    });
    gw = await startTestGateway({
      manifests: {
        'slow.yaml': sdep('slow', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [PROTOCOL]: '{}' }),
        // Its model never answers: a call held there holds the breaker's one slot until the idle timeout.
        'tight.yaml': sdep('tight', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [PROTOCOL]: '{}', 'seldon.io/ambassador-circuit-breakers-max-requests': '1' }),
        'mute.yaml': sdep('mute', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [PROTOCOL]: '{}' }),
      },
      resolve: { 'slow-main.m:5001': m.port, 'tight-main.m:5001': mute.port, 'mute-main.m:5001': mute.port },
      args: ['--default-idle-timeout', '1s'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    model?.forceShutdown();
    await mute?.close();
  });

  it('is cut at the route’s idle timeout: DEADLINE_EXCEEDED, nothing sent', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const s = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers', seldon: 'slow', namespace: 'm' });
      // A frame that announces 10 bytes and sends one.
      s.write(Buffer.from([0, 0, 0, 0, 10, 0x1a]));
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => s.once('response', resolve));
      expect(headers['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(decodeURIComponent(String(headers['grpc-message']))).toMatch(/no request bytes for 1000 ms/);
      expect(calls).toHaveLength(0);
    } finally {
      session.destroy();
    }
  });

  it('holds no breaker slot while its message is read, nor gives one back when its client leaves: max_requests still holds', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    const inferences = (): number => mute.streams.filter((h) => h[':path'] === INFER).length;
    const n = inferences();
    const cancelled = 'seldon_gateway_requests_total{namespace="m",deployment="tight",predictor="main",protocol="grpc",kind="primary",code="1"}';
    try {
      // On a connection of its own, which it then drops (a reset stream would end its message first: Node's `close` sends END_STREAM).
      const halfSession = http2.connect(`http://127.0.0.1:${gw.port}`);
      halfSession.on('error', () => undefined);
      const half = halfSession.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers', seldon: 'tight', namespace: 'm' });
      half.on('error', () => undefined);
      half.write(Buffer.from([0, 0, 0, 0, 10, 0x1a]));
      await new Promise((resolve) => halfSession.ping(resolve));
      // While the half message is read the breaker's one slot is free: this call reaches the model, and holds the slot there.
      const held = predictOn(session, 'tight');
      await waitFor(() => inferences() === n + 1);
      halfSession.destroy();
      // Counted once its client left (CANCELLED), nothing sent.
      const until = Date.now() + 5000;
      while ((await metric(gw.adminUrl, cancelled)) < 1) if (Date.now() > until) throw new Error('the call its client left was not counted');
      // The slot is still the held call's: the next is refused.
      const refused = await predictOn(session, 'tight');
      expect(refused['grpc-status']).toBe(String(grpc.status.UNAVAILABLE));
      expect(decodeURIComponent(String(refused['grpc-message']))).toMatch(/max_requests \(1\) reached/);
      const cut = await held;
      expect(cut['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(decodeURIComponent(String(cut['grpc-message']))).toMatch(/no bytes in either direction for 1000 ms/);
      expect(inferences()).toBe(n + 1);
    } finally {
      session.destroy();
    }
  });

  it('once translated and sent, is cut at the idle timeout as any forwarded call: the model that never answers', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const got = await predictOn(session, 'mute');
      expect(got['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(decodeURIComponent(String(got['grpc-message']))).toMatch(/no bytes in either direction for 1000 ms on the call to/);
      // It reached the model translated: ModelInfer.
      expect(mute.streams.some((h) => h[':path'] === INFER)).toBe(true);
    } finally {
      session.destroy();
    }
  });
});

describe('gRPC translation: a request that trickles its message', () => {
  const calls: Recorded[] = [];
  let model: grpc.Server;
  let gw: TestGateway;

  beforeAll(async () => {
    const m = await startV2Model(calls, {});
    model = m.server;
    gw = await startTestGateway({
      manifests: { 'trickle.yaml': sdep('trickle', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [PROTOCOL]: '{}' }) },
      resolve: { 'trickle-main.m:5001': m.port },
      // Bytes come far more often than the idle timeout: only the route's timeout can end the read.
      args: ['--default-timeout', '600ms', '--default-idle-timeout', '30s'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    model?.forceShutdown();
  });

  it('is cut at the route’s timeout though bytes keep coming: DEADLINE_EXCEEDED, nothing sent', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    let trickle: NodeJS.Timeout | undefined;
    try {
      const s = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers', seldon: 'trickle', namespace: 'm' });
      // A frame that announces 10,000 bytes, then one byte every 50 ms: 500 s of message, never idle.
      s.write(Buffer.from([0, 0, 0, 0x27, 0x10]));
      trickle = setInterval(() => s.write(Buffer.from([0x1a])), 50);
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => s.once('response', resolve));
      expect(headers['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(decodeURIComponent(String(headers['grpc-message']))).toMatch(/not read within the route timeout of 600 ms/);
      expect(calls).toHaveLength(0);
    } finally {
      clearInterval(trickle);
      session.destroy();
    }
  });

  it('is cut at the client’s deadline, counted from its arrival, while its message trickles: DEADLINE_EXCEEDED, nothing sent', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    let trickle: NodeJS.Timeout | undefined;
    try {
      const s = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m', seldon: 'trickle', namespace: 'm' });
      s.write(Buffer.from([0, 0, 0, 0x27, 0x10]));
      trickle = setInterval(() => s.write(Buffer.from([0x1a])), 50);
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => s.once('response', resolve));
      expect(headers['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(decodeURIComponent(String(headers['grpc-message']))).toBe("the client's deadline (grpc-timeout 200m) expired while its message was read to be translated");
      expect(calls).toHaveLength(0);
    } finally {
      clearInterval(trickle);
      session.destroy();
    }
  });
});
