/**
 * A SeldonMessage's `meta` ⇄ the Open Inference Protocol's `parameters` over real sockets
 * (docs/protocol-translation.md#meta-and-parameters): a real gateway, REST stand-ins recording each body
 * byte for byte, gRPC stand-ins (@grpc/grpc-js) recording each message decoded (int64 as strings: exact),
 * raw HTTP/1.1 clients and the real @grpc/grpc-js client.
 *
 * - the attacker's inputs first: a tag named as a v2 server's own parameter, a request's routing, tags
 *   nested 10,000 deep, a huge number of tags against --max-body, an input's stray parameter; each refused
 *   (400 / INVALID_ARGUMENT, a Seldon-style error), counted `refused`, zero upstream calls;
 * - each direction, REST and gRPC: what the model received and what the client got, byte for byte: tags
 *   become parameters and back, long integers and NUL text exact, Seldon's own answer fields carried;
 * - an answer with what has no place on the client's side: 502 / INTERNAL, counted `bad-answer`.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type Answer, type HeaderLine, type RawResponse, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';

const PROTOCOL = 'seldon.io/gateway-protocol';
const JSON_TYPE: HeaderLine = ['Content-Type', 'application/json'];
const MAX_BODY = 1 << 20;

/** The REST answers the stand-ins give, by the request's `x-case` header. */
const V2_ANSWERS: Record<string, string> = {
  tags: '{"model_name":"iris","id":"p1","parameters":{"content_type":"np","score":"high","n":1,"user":"model"},"outputs":[{"name":"o","shape":[1,2],"datatype":"INT64","data":[1,2]}]}',
  'output-parameter': '{"model_name":"iris","outputs":[{"name":"o","shape":[1],"datatype":"INT64","parameters":{"precision":"high"},"data":[1]}]}',
};
const SELDON_ANSWERS: Record<string, string> = {
  meta: '{"data":{"names":[],"tensor":{"shape":[2],"values":[1.0,2.5]}},"meta":{"metrics":[{"key":"calls","type":"COUNTER","value":1}],"puid":"i1","requestPath":{"doubler":"seldonio/doubler:1.0"},"tags":{"model":"doubler","n":9007199254740993,"user":"u1"}}}',
  'content-type-tag': '{"data":{"names":[],"tensor":{"shape":[2],"values":[1.0,2.5]}},"meta":{"tags":{"content_type":"np"}}}',
};
const answer =
  (answers: Record<string, string>) =>
  (req: RecordedRequest): Answer => {
    const body = answers[headerValue(req.headers, 'x-case') ?? ''];
    if (req.method !== 'POST' || body === undefined) return { statusLine: 'HTTP/1.1 404 Not Found', headers: [JSON_TYPE], body: '{"error":"not here"}' };
    return { headers: [JSON_TYPE], body };
  };
const inferences = (u: RecordingUpstream): RecordedRequest[] => u.requests.filter((r) => r.method !== 'GET');

// gRPC, decoded as on the wire: int64 as decimal strings, no defaults filled in.
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const seldonSvc = defs['seldon.protos.Seldon'] as unknown as Record<string, Method>;
const v2Svc = defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>;

/** A gRPC stand-in of `svc` recording each message decoded and answering the next of `answers`. */
function startGrpcModel(svc: Record<string, Method>, method: string, calls: Msg[], answers: Msg[]): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(svc as unknown as grpc.ServiceDefinition, {
    [method]: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      calls.push(call.request);
      cb(null, answers.shift() ?? {});
    },
  });
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port }))));
}

interface Called {
  readonly res: Msg | undefined;
  readonly err: grpc.ServiceError | undefined;
}

describe('meta ⇄ parameters over real sockets', () => {
  let v2: RecordingUpstream;
  let seldon: RecordingUpstream;
  const v2Calls: Msg[] = [];
  const seldonCalls: Msg[] = [];
  const v2Answers: Msg[] = [];
  const seldonAnswers: Msg[] = [];
  const servers: grpc.Server[] = [];
  let gw: TestGateway;
  let client: grpc.Client;

  beforeAll(async () => {
    v2 = await startRecordingUpstream({ name: 'v2', responder: answer(V2_ANSWERS) });
    seldon = await startRecordingUpstream({ name: 'seldon', responder: answer(SELDON_ANSWERS) });
    const gv2 = await startGrpcModel(v2Svc, 'ModelInfer', v2Calls, v2Answers);
    const gseldon = await startGrpcModel(seldonSvc, 'Predict', seldonCalls, seldonAnswers);
    servers.push(gv2.server, gseldon.server);
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'iris' } }] }, { [PROTOCOL]: '{}' }),
        'legacy.yaml': sdep('legacy', 'm', { predictors: [{ name: 'main', graph: { name: 'legacy' } }] }, { [PROTOCOL]: 'accept: [v2]' }),
      },
      resolve: { 'iris-main.m:8000': v2.port, 'legacy-main.m:8000': seldon.port, 'iris-main.m:5001': gv2.port, 'legacy-main.m:5001': gseldon.port },
      args: ['--max-body', String(MAX_BODY)],
    });
    client = new grpc.Client(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await gw?.stop();
    for (const s of servers) s.forceShutdown();
    await v2?.close();
    await seldon?.close();
  });

  const calls = (): number => inferences(v2).length + inferences(seldon).length + v2Calls.length + seldonCalls.length;
  const series = (deployment: string, from: string, to: string, result: string): string =>
    `seldon_gateway_protocol_translations_total{namespace="m",deployment="${deployment}",from="${from}",to="${to}",result="${result}"}`;

  async function post(target: string, body: string, xCase = ''): Promise<RawResponse> {
    const { res, x } = await rawRequest(gw.port, { method: 'POST', target, headers: [['Host', 'gw'], JSON_TYPE, ['x-case', xCase]], body: Buffer.from(body) });
    x.socket.destroy();
    expect(res, 'an answer').not.toBeNull();
    return res!;
  }
  const predictions = '/seldon/m/iris/api/v1.0/predictions';
  const infer = '/seldon/m/legacy/v2/models/legacy/infer';

  /** Refused before any model: `status`, the gateway's Seldon-style error saying `why`, counted refused, nothing sent. */
  async function refusedRest(target: string, body: string, status: number, why: RegExp, from: string, to: string, deployment: string): Promise<void> {
    const before = calls();
    const counted = await metric(gw.adminUrl, series(deployment, from, to, 'refused'));
    const res = await post(target, body);
    expect(res.status).toBe(status);
    const err = JSON.parse(res.body.toString()) as { status: { code: number; info: string; status: string } };
    expect(err.status).toMatchObject({ code: status, status: 'FAILURE' });
    expect(err.status.info).toMatch(why);
    expect(calls(), 'no upstream call').toBe(before);
    expect(await metric(gw.adminUrl, series(deployment, from, to, 'refused'))).toBe(counted + 1);
  }

  const grpcCall = (deployment: string, method: Method, path: string, req: Msg): Promise<Called> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      md.set('seldon', deployment);
      md.set('namespace', 'm');
      client.makeUnaryRequest(
        path,
        (m: Msg) => method.requestSerialize(m),
        (b: Buffer) => method.responseDeserialize(b),
        req,
        md,
        (err, res) => resolve({ res: res ?? undefined, err: err ?? undefined }),
      );
    });
  const predict = (req: Msg) => grpcCall('iris', seldonSvc.Predict!, '/seldon.protos.Seldon/Predict', req);
  const modelInfer = (req: Msg) => grpcCall('legacy', v2Svc.ModelInfer!, '/inference.GRPCInferenceService/ModelInfer', req);
  const ndarray = { ndarray: { values: [{ numberValue: 1 }] } };

  async function refusedGrpc(f: () => Promise<Called>, code: grpc.status, why: RegExp): Promise<void> {
    const before = calls();
    const o = await f();
    expect(o.err?.code, o.err?.details).toBe(code);
    expect(o.err?.details).toMatch(why);
    if (code === grpc.status.INVALID_ARGUMENT) expect(calls(), 'no upstream call').toBe(before);
  }

  describe("the attacker's inputs: refused, counted, nothing sent", () => {
    it('REST: a tag named content_type, a routing, tags nested 10,000 deep, a NUL-keyed routing', async () => {
      await refusedRest(
        predictions,
        '{"meta":{"tags":{"content_type":"pd"}},"data":{"ndarray":[1]}}',
        400,
        /meta.tags\["content_type"\] would be read by the v2 server as its own parameter/,
        'seldon',
        'v2',
        'iris',
      );
      await refusedRest(predictions, '{"meta":{"routing":{"\\u0000":1}},"data":{"ndarray":[1]}}', 400, /meta.routing is written by Seldon's executor into answers/, 'seldon', 'v2', 'iris');
      const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
      await refusedRest(predictions, `{"meta":{"tags":{"t":${deep}}},"data":{"ndarray":[1]}}`, 400, /meta is nested too deeply to be written back/, 'seldon', 'v2', 'iris');
      await refusedRest(
        infer,
        `{"parameters":{"t":${deep}},"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]}`,
        400,
        /parameters are nested too deeply to be written back/,
        'v2',
        'seldon',
        'legacy',
      );
      await refusedRest(
        infer,
        '{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","parameters":{"constructor":1},"data":[1]}]}',
        400,
        /inputs\[0\].parameters\["constructor"\] has no place/,
        'v2',
        'seldon',
        'legacy',
      );
      expect(({} as Record<string, unknown>).a).toBeUndefined();
    });

    it('REST: a huge number of tags within --max-body that translation grows beyond it is 413; over it, 413 before translation', async () => {
      // Each tag is 13 bytes either side; the v2 input's head is longer than `"data":{"ndarray":[1]}`.
      const tags = (n: number): string => Array.from({ length: n }, (_, i) => `"${String(i).padStart(8, '0')}":1`).join(',');
      const body = (n: number): string => `{"meta":{"tags":{${tags(n)}}},"data":{"ndarray":[1]}}`;
      let n = Math.floor((MAX_BODY - 40) / 13);
      while (body(n + 1).length <= MAX_BODY) n++;
      expect(body(n).length).toBeLessThanOrEqual(MAX_BODY);
      await refusedRest(predictions, body(n), 413, /translated request body is \d+ bytes, larger than 1048576/, 'seldon', 'v2', 'iris');
      const before = calls();
      const res = await post(predictions, body(n + 2));
      expect(res.status).toBe(413);
      expect(calls()).toBe(before);
    });

    it('gRPC: a tag an InferParameter cannot hold, a tag named headers, a requestPath: INVALID_ARGUMENT', async () => {
      await refusedGrpc(
        () => predict({ meta: { tags: { score: { numberValue: 0.5 } } }, data: ndarray }),
        grpc.status.INVALID_ARGUMENT,
        /meta.tags\["score"\] is 0.5, which a gRPC InferParameter .* cannot hold/,
      );
      await refusedGrpc(() => predict({ meta: { tags: { headers: { stringValue: 'x' } } }, data: ndarray }), grpc.status.INVALID_ARGUMENT, /own parameter headers/);
      await refusedGrpc(() => predict({ meta: { requestPath: { m: 'image' } }, data: ndarray }), grpc.status.INVALID_ARGUMENT, /meta.requestPath is written by Seldon's executor/);
      await refusedGrpc(
        () => modelInfer({ inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], parameters: { p: { bool_param: true } }, contents: { int64_contents: ['1'] } }] }),
        grpc.status.INVALID_ARGUMENT,
        /inputs\[0\].parameters\["p"\] has no place in a SeldonMessage/,
      );
      await refusedGrpc(
        () => modelInfer({ parameters: { n: { int64_param: '9007199254740993' } }, inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['1'] } }] }),
        grpc.status.INVALID_ARGUMENT,
        /meta.tags\["n"\] is 9007199254740993, which a SeldonMessage \(doubles\) cannot hold exactly/,
      );
    });
  });

  describe('REST, byte for byte', () => {
    it('a Seldon client’s tags reach the v2 model as its parameters; the model’s parameters come back among them, keys sorted', async () => {
      const sent = '{"meta":{"puid":"p1","tags":{"user":"u1","n":9007199254740993,"nul":"a\\u0000b😀","nested":{"b":[1,2],"a":null}}},"data":{"ndarray":[[1,2]]}}';
      const res = await post(predictions, sent, 'tags');
      expect(res.status).toBe(200);
      expect(inferences(v2).at(-1)!.body.toString()).toBe(
        '{"id":"p1","parameters":{"user":"u1","n":9007199254740993,"nul":"a\\u0000b😀","nested":{"b":[1,2],"a":null}},"inputs":[{"name":"input-0","shape":[1,2],"datatype":"INT64","data":[1,2]}]}',
      );
      expect(res.body.toString()).toBe(
        '{"data":{"names":["t:0","t:1"],"ndarray":[[1,2]]},"meta":{"puid":"p1","tags":{"n":1,"nested":{"a":null,"b":[1,2]},"nul":"a\\u0000b😀","score":"high","user":"model"}}}',
      );
      expect(headerValue(res.headers, 'x-seldon-translated')).toBe('seldon->v2');
    });

    it('a v2 client’s parameters reach the Seldon model as meta.tags; its answer’s tags, requestPath and metrics come back as parameters', async () => {
      const sent = '{"id":"i1","parameters":{"content_type":"np","user":"u1","n":9007199254740993},"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2.5]}]}';
      const res = await post(infer, sent, 'meta');
      expect(res.status).toBe(200);
      expect(inferences(seldon).at(-1)!.body.toString()).toBe('{"data":{"names":[],"tensor":{"shape":[2],"values":[1.0,2.5]}},"meta":{"puid":"i1","tags":{"user":"u1","n":9007199254740993}}}');
      expect(res.body.toString()).toBe(
        '{"model_name":"legacy","id":"i1","parameters":{"model":"doubler","n":9007199254740993,"user":"u1","metrics":[{"key":"calls","type":"COUNTER","value":1}],"requestPath":{"doubler":"seldonio/doubler:1.0"}},"outputs":[{"name":"output-0","shape":[2],"datatype":"FP32","data":[1.0,2.5]}]}',
      );
    });

    it('an answer with what has no place on the client’s side is a 502, counted bad-answer', async () => {
      const bad = await metric(gw.adminUrl, series('iris', 'seldon', 'v2', 'bad-answer'));
      const res = await post(predictions, '{"data":{"ndarray":[1]}}', 'output-parameter');
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body.toString())).toEqual({
        status: {
          code: 502,
          info: 'the model\'s answer cannot be translated: outputs[0].parameters["precision"] has no place in a SeldonMessage: a tensor\'s one parameter there is content_type',
          reason: 'UPSTREAM_BAD_RESPONSE',
          status: 'FAILURE',
        },
      });
      expect(await metric(gw.adminUrl, series('iris', 'seldon', 'v2', 'bad-answer'))).toBe(bad + 1);
      const tag = await post(infer, '{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]}', 'content-type-tag');
      expect(tag.status).toBe(502);
      expect(tag.body.toString()).toMatch(/meta.tags\[\\"content_type\\"\] would be read by a v2 client as the server's parameter content_type/);
    });
  });

  describe('gRPC, each message decoded', () => {
    it('a Seldon client’s tags reach the v2 model as InferParameters; the model’s come back as tags', async () => {
      v2Answers.push({
        model_name: 'iris',
        parameters: { content_type: { string_param: 'np' }, user: { string_param: 'model' }, n: { int64_param: '9007199254740992' } },
        outputs: [{ name: 'o', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['2'] } }],
      });
      const o = await predict({ meta: { puid: 'p', tags: { user: { stringValue: 'u\u0000😀' }, big: { numberValue: 2 ** 60 }, flag: { boolValue: true } } }, data: ndarray });
      expect(o.err).toBeUndefined();
      expect(v2Calls.at(-1)).toEqual({
        model_name: 'iris',
        id: 'p',
        parameters: { user: { string_param: 'u\u0000😀' }, big: { int64_param: '1152921504606846976' }, flag: { bool_param: true } },
        inputs: [{ name: 'input-0', datatype: 'FP64', shape: ['1'], contents: { fp64_contents: [1] } }],
      });
      expect(o.res).toEqual({
        meta: { puid: 'p', tags: { user: { stringValue: 'model' }, big: { numberValue: 2 ** 60 }, flag: { boolValue: true }, n: { numberValue: 9007199254740992 } } },
        data: { ndarray: { values: [{ numberValue: 2 }] } },
      });
    });

    it('a v2 client’s parameters reach the Seldon model as tags; its answer’s meta comes back as parameters (Seldon’s own fields as JSON text)', async () => {
      seldonAnswers.push({
        meta: { puid: 'i', tags: { user: { stringValue: 'u' }, n: { numberValue: 7 } }, requestPath: { doubler: 'seldonio/doubler:1.0' }, routing: { router: 1 } },
        data: { tensor: { shape: [1], values: [2] } },
      });
      const o = await modelInfer({
        id: 'i',
        parameters: { user: { string_param: 'u' }, n: { int64_param: '-5' } },
        inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['1'] } }],
      });
      expect(o.err).toBeUndefined();
      expect(seldonCalls.at(-1)).toEqual({ meta: { puid: 'i', tags: { user: { stringValue: 'u' }, n: { numberValue: -5 } } }, data: { tensor: { shape: [1], values: [1] } } });
      expect(o.res).toEqual({
        model_name: 'legacy',
        id: 'i',
        parameters: {
          user: { string_param: 'u' },
          n: { int64_param: '7' },
          requestPath: { string_param: '{"doubler":"seldonio/doubler:1.0"}' },
          routing: { string_param: '{"router":1}' },
        },
        outputs: [{ name: 'output-0', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['2'] } }],
      });
    });

    it('an answer’s tag an InferParameter cannot hold, or a v2 model’s int64 a double cannot: INTERNAL, counted bad-answer', async () => {
      const bad = await metric(gw.adminUrl, series('legacy', 'v2', 'seldon', 'bad-answer'));
      seldonAnswers.push({ meta: { tags: { score: { numberValue: 0.93 } } }, data: { tensor: { shape: [1], values: [2] } } });
      await refusedGrpc(() => modelInfer({ inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['1'] } }] }), grpc.status.INTERNAL, /meta.tags\["score"\] is 0.93/);
      expect(await metric(gw.adminUrl, series('legacy', 'v2', 'seldon', 'bad-answer'))).toBe(bad + 1);
      v2Answers.push({ model_name: 'iris', parameters: { n: { int64_param: '9007199254740993' } }, outputs: [{ name: 'o', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['2'] } }] });
      await refusedGrpc(() => predict({ data: ndarray }), grpc.status.INTERNAL, /meta.tags\["n"\] is 9007199254740993, which a SeldonMessage \(doubles\) cannot hold exactly/);
    });
  });
});
