/**
 * Protocol translation on every kind of route (docs/protocol-translation.md#once-per-request): a Seldon
 * REST client reaches a v2 model through a steered route (a bandit), a flow-limited one, a gated one
 * (external auth and a rate limit), a compressed one and a header route. Each time the model receives
 * exactly the v2 request, the client exactly the Seldon answer with `x-seldon-translated: seldon->v2`, and
 * the translation is counted once; a request the gate refuses reaches no model, is not counted as a
 * translation that went, and spends nothing of the rate limit. A hedged route (four pods, each request's
 * first arrival slow): every attempt of a request carries the same translated bytes, translated once.
 * A gRPC Seldon client on a flow-limited route reaches a v2 gRPC model (ModelInfer) the same way.
 */
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { headerValue, rawRequest, startRecordingUpstream, type Answer, type HeaderLine, type RawResponse, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { firstSlow, HedgingWorld } from '../../helpers/hedging.js';
import { metric } from '../../helpers/metrics.js';
import { listenLocal } from '../../helpers/net.js';
import { metricSum, scrape } from '../../helpers/observability.js';

const NS = 'm';
const PROTOCOL = 'seldon.io/gateway-protocol';
const JSON_TYPE: HeaderLine = ['Content-Type', 'application/json'];

/** The request a Seldon client sends, what the v2 model must receive, and the answer the client must get. */
const SENT = '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const AT_MODEL = { inputs: [{ name: 'input-0', shape: [1, 4], datatype: 'FP64', data: [5.1, 3.5, 1.4, 0.2] }] };
const ANSWER = '{"data":{"names":["t:0","t:1","t:2","t:3"],"ndarray":[[5.1,3.5,1.4,0.2]]},"meta":{}}';

/** What a model stand-in was asked but its metadata (fetched beside translated traffic). */
const inferences = (u: RecordingUpstream): RecordedRequest[] => u.requests.filter((r) => r.method !== 'GET');

/** `x-case: hold` answers wait for this. */
let release: () => void = () => undefined;
const held = new Promise<void>((resolve) => (release = resolve));

/** A v2 model as MLServer answers: its one output is its one input, renamed, data as received; `x-case: hold` once `release`d. */
function v2Model(req: RecordedRequest): Answer | Promise<Answer> {
  const m = /^\/v2\/models\/([^/]+)\/infer$/.exec(req.target);
  if (req.method !== 'POST' || m === null) return { statusLine: 'HTTP/1.1 404 Not Found', headers: [JSON_TYPE], body: '{"error":"Model not found"}' };
  const echoed = req.body.toString('utf8').replace(/^\{"inputs":\[\{"name":"[^"]*"/, `{"model_name":"${m[1]}","outputs":[{"name":"output-0"`);
  const answer: Answer = { headers: [JSON_TYPE], body: echoed };
  return headerValue(req.headers, 'x-case') === 'hold' ? held.then(() => answer) : answer;
}

/** A Seldon model: its request back. */
function seldonModel(req: RecordedRequest): Answer {
  return { headers: [JSON_TYPE], body: req.body };
}

/** An auth service that denies a request carrying `x-deny` with 403, and allows the rest. */
async function startAuthService(): Promise<{ port: number; checks: string[]; close(): Promise<void> }> {
  const checks: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      checks.push(req.url!);
      if (req.headers['x-deny'] !== undefined) res.writeHead(403, { 'content-type': 'text/plain' }).end('denied');
      else res.writeHead(200).end();
    });
  });
  return { ...(await listenLocal(server)), checks };
}

async function post(port: number, target: string, headers: HeaderLine[] = [], body = SENT): Promise<RawResponse> {
  const { res, x } = await rawRequest(port, { method: 'POST', target, headers: [['Host', 'gw'], JSON_TYPE, ...headers], body: Buffer.from(body) });
  x.socket.destroy();
  expect(res, 'an answer').not.toBeNull();
  return res!;
}

const series = (deployment: string, result: string): string => `seldon_gateway_protocol_translations_total{namespace="${NS}",deployment="${deployment}",from="seldon",to="v2",result="${result}"}`;

describe('protocol translation on every kind of route (REST: a Seldon client, a v2 model)', () => {
  let v2: RecordingUpstream;
  let seldon: RecordingUpstream;
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let gw: TestGateway;

  beforeAll(async () => {
    v2 = await startRecordingUpstream({ name: 'v2', responder: v2Model });
    seldon = await startRecordingUpstream({ name: 'seldon', responder: seldonModel });
    auth = await startAuthService();
    const one = { predictors: [{ name: 'main', graph: { name: 'iris' } }] };
    gw = await startTestGateway({
      manifests: {
        'steered.yaml': sdep(
          'steered',
          NS,
          {
            predictors: [
              { name: 'a', graph: { name: 'iris' } },
              { name: 'b', graph: { name: 'iris' } },
            ],
          },
          { [PROTOCOL]: 'speaks: v2', 'seldon.io/gateway-bandit': 'arms: [a, b]\nfloor: 5%\nhalfLife: none' },
        ),
        'flowed.yaml': sdep('flowed', NS, one, { [PROTOCOL]: 'speaks: v2', 'seldon.io/gateway-flow': 'concurrency: 1\nqueue: 16' }),
        'gated.yaml': sdep('gated', NS, one, { [PROTOCOL]: 'speaks: v2', 'seldon.io/gateway-auth': 'external', 'seldon.io/gateway-rate-limit': '1/h' }),
        'compressed.yaml': sdep('compressed', NS, one, { [PROTOCOL]: 'speaks: v2', 'seldon.io/gateway-compression': 'algorithms: [gzip]\nminLength: 1' }),
        'base.yaml': sdep('base', NS, one),
        'base-eu.yaml': sdep('base-eu', NS, one, { [PROTOCOL]: 'speaks: v2', 'seldon.io/ambassador-service-name': 'base', 'seldon.io/ambassador-header': 'x-region:eu' }),
      },
      resolve: {
        [`steered-a.${NS}:8000`]: v2.port,
        [`steered-b.${NS}:8000`]: v2.port,
        [`flowed-main.${NS}:8000`]: v2.port,
        [`gated-main.${NS}:8000`]: v2.port,
        [`compressed-main.${NS}:8000`]: v2.port,
        [`base-main.${NS}:8000`]: seldon.port,
        [`base-eu-main.${NS}:8000`]: v2.port,
      },
      args: ['--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-default', 'off', '--ext-auth-allowed-request-headers', 'x-deny'],
    });
  });
  afterAll(async () => {
    release();
    await gw?.stop();
    await v2?.close();
    await seldon?.close();
    await auth?.close();
  });

  /** The model received exactly the v2 request of SENT, at `/v2/models/iris/infer`. */
  const expectAtModel = (got: RecordedRequest): void => {
    expect(got.target).toBe('/v2/models/iris/infer');
    expect(JSON.parse(got.body.toString())).toEqual(AT_MODEL);
    expect(headerValue(got.headers, 'content-length')).toBe(String(got.body.length));
  };
  const expectTranslated = (res: RawResponse, body: string = res.body.toString()): void => {
    expect(res.status).toBe(200);
    expect(headerValue(res.headers, 'x-seldon-translated')).toBe('seldon->v2');
    expect(body).toBe(ANSWER);
  };

  it('steered (a bandit): whichever arm it picks, the model receives the v2 request, the client the Seldon answer', async () => {
    const before = inferences(v2).length;
    const ok = await metric(gw.adminUrl, series('steered', 'ok'));
    for (let i = 0; i < 6; i++) {
      const res = await post(gw.port, `/seldon/${NS}/steered/api/v1.0/predictions`);
      // The bandit tags the translated (Seldon) answer with its attribution token, as it tags a Seldon model's.
      const text = res.body.toString();
      const token = /"meta":\{"tags":\{"seldon\.io\/gateway-arm":"1\.[ab]\.[^"]+"\}\}\}$/.exec(text);
      expect(token, text).not.toBeNull();
      expectTranslated(res, text.replace(/"meta":\{"tags":\{[^}]*\}\}/, '"meta":{}'));
    }
    const got = inferences(v2).slice(before);
    expect(got.length).toBe(6);
    for (const r of got) expectAtModel(r);
    expect(await metric(gw.adminUrl, series('steered', 'ok'))).toBe(ok + 6);
  });

  it('flow-limited (concurrency 1, a queue): of four sent at once, one at the model and three queued; each reaches the model translated once, each client gets the Seldon answer', async () => {
    const before = inferences(v2).length;
    const ok = await metric(gw.adminUrl, series('flowed', 'ok'));
    const queued = async (): Promise<number> => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_flow_queued', { deployment: 'flowed' });
    const sending = Promise.all(Array.from({ length: 4 }, () => post(gw.port, `/seldon/${NS}/flowed/api/v1.0/predictions`, [['x-case', 'hold']])));
    // One at the model (held there), three waiting for its slot: translated already, not yet sent.
    await expect.poll(queued, { timeout: 10_000 }).toBe(3);
    expect(inferences(v2).length).toBe(before + 1);
    release();
    const answers = await sending;
    for (const res of answers) expectTranslated(res);
    const got = inferences(v2).slice(before);
    expect(got.length).toBe(4);
    for (const r of got) expectAtModel(r);
    expect(await metric(gw.adminUrl, series('flowed', 'ok'))).toBe(ok + 4);
  });

  it('gated: a denied request reaches no model, counts no translation that went and spends nothing of the rate limit; the one allowed is translated; the next is rate limited, nothing sent', async () => {
    const target = `/seldon/${NS}/gated/api/v1.0/predictions`;
    const before = inferences(v2).length;
    const checks = auth.checks.length;
    for (let i = 0; i < 3; i++) {
      const denied = await post(gw.port, target, [['x-deny', '1']]);
      expect(denied.status).toBe(403);
      expect(denied.body.toString()).toBe('denied');
      expect(headerValue(denied.headers, 'x-seldon-translated')).toBeUndefined();
    }
    expect(auth.checks.length).toBe(checks + 3);
    expect(inferences(v2).length).toBe(before);
    expect(await metric(gw.adminUrl, series('gated', 'ok'))).toBe(0);

    // 1/h: the burst is one request. The denials spent none of it.
    expectTranslated(await post(gw.port, target));
    expect(inferences(v2).length).toBe(before + 1);
    expectAtModel(inferences(v2).at(-1)!);
    expect(await metric(gw.adminUrl, series('gated', 'ok'))).toBe(1);

    const limited = await post(gw.port, target);
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.body.toString())).toMatchObject({ status: { code: 429, status: 'FAILURE' } });
    expect(inferences(v2).length).toBe(before + 1);
    expect(await metric(gw.adminUrl, series('gated', 'ok'))).toBe(1);
  });

  it('compressed: a client accepting gzip gets the Seldon answer gzipped, the model the v2 request plain, not asked for an encoding', async () => {
    const before = inferences(v2).length;
    const res = await post(gw.port, `/seldon/${NS}/compressed/api/v1.0/predictions`, [['Accept-Encoding', 'gzip']]);
    expect(headerValue(res.headers, 'content-encoding')).toBe('gzip');
    expectTranslated(res, gunzipSync(res.body).toString());
    expect(inferences(v2).length).toBe(before + 1);
    const got = inferences(v2).at(-1)!;
    expectAtModel(got);
    expect(headerValue(got.headers, 'accept-encoding')).toBeUndefined();
    expect(await metric(gw.adminUrl, series('compressed', 'ok'))).toBe(1);
  });

  it('a header route: the request with the header reaches the translating deployment (v2), the one without the plain Seldon one, untranslated', async () => {
    const target = `/seldon/${NS}/base/api/v1.0/predictions`;
    const v2Before = inferences(v2).length;
    const seldonBefore = inferences(seldon).length;
    expectTranslated(await post(gw.port, target, [['x-region', 'eu']]));
    expect(inferences(v2).length).toBe(v2Before + 1);
    expectAtModel(inferences(v2).at(-1)!);

    const plain = await post(gw.port, target);
    expect(plain.status).toBe(200);
    expect(headerValue(plain.headers, 'x-seldon-translated')).toBeUndefined();
    expect(plain.body.toString()).toBe(SENT);
    expect(inferences(seldon).length).toBe(seldonBefore + 1);
    expect(inferences(seldon).at(-1)!.body.toString()).toBe(SENT);
    expect(inferences(v2).length).toBe(v2Before + 1);
    expect(await metric(gw.adminUrl, series('base-eu', 'ok'))).toBe(1);
  });
});

// Decoded as they are on the wire: int64 as decimal strings, no defaults filled in.
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
const INFER = '/inference.GRPCInferenceService/ModelInfer';
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const seldonSvc = defs['seldon.protos.Seldon'] as unknown as Record<string, Method>;
const v2Svc = defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>;

describe('protocol translation on a hedged route (REST and gRPC: a Seldon client, v2 model pods)', () => {
  let world: HedgingWorld | undefined;
  afterAll(async () => {
    await world?.close();
  });

  it('every attempt of a request carries the same translated bytes; the client gets the Seldon answer; one translation per request', async () => {
    world = await HedgingWorld.start({ hedged: { annotations: { 'seldon.io/gateway-hedge': 'after: 10ms\nbudget: 100%', [PROTOCOL]: 'speaks: v2' } } }, firstSlow());
    const w = world;
    // Each pod is a v2 model: its one output is its one input (its metadata, asked with an empty body, is not JSON: ignored).
    w.pods.respond = (_ip, _id, body) => body.toString().replace(/^\{"inputs":\[\{"name":"[^"]*"/, '{"model_name":"model","outputs":[{"name":"output-0"');
    const n = 6;
    let hedged = 0;
    for (let i = 0; i < n; i++) {
      const got = await w.rest('hedged', `h-${i}`, SENT);
      expect(got.status, got.body).toBe(200);
      expect(got.body).toBe(ANSWER);
      expect(got.header!('x-seldon-translated')).toBe('seldon->v2');
      const attempts = w.arrivalsOf((id) => id === `h-${i}`);
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      if (attempts.length === 2) hedged++;
      for (const a of attempts) {
        expect(JSON.parse(a.body!.toString())).toEqual(AT_MODEL);
        expect(a.body).toEqual(attempts[0]!.body);
      }
    }
    // Each first arrival waits 60 ms and the hedge goes at 10: most were hedged, even on a busy machine.
    expect(hedged).toBeGreaterThanOrEqual(1);

    // gRPC: a Seldon client's Predict reaches each pod as the same ModelInfer message, bytes and all.
    w.pods.respondGrpc = (_ip, _id, message, path) => {
      if (path !== INFER) return Buffer.alloc(0);
      const r = v2Svc.ModelInfer!.requestDeserialize(message);
      return v2Svc.ModelInfer!.responseSerialize({ model_name: r.model_name, outputs: ((r.inputs as Msg[]) ?? []).map((i) => ({ ...i, name: 'output-0' })) });
    };
    let grpcHedged = 0;
    for (let i = 0; i < n; i++) {
      const got = await w.grpcPredict('hedged', `g-${i}`, 'hello');
      expect(got.status, got.body).toBe(0);
      expect(got.body).toBe('hello');
      const attempts = w.arrivalsOf((id) => id === `g-${i}`);
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      if (attempts.length === 2) grpcHedged++;
      for (const a of attempts) {
        expect(a.protocol).toBe('grpc');
        expect(v2Svc.ModelInfer!.requestDeserialize(a.body!)).toEqual({
          model_name: 'model',
          inputs: [{ name: 'input-0', datatype: 'BYTES', shape: ['1'], parameters: { content_type: { string_param: 'str' } }, contents: { bytes_contents: [Buffer.from('hello')] } }],
        });
        expect(a.body).toEqual(attempts[0]!.body);
      }
    }
    expect(grpcHedged).toBeGreaterThanOrEqual(1);
    await w.counted('hedged', 2 * n);
    expect(await w.metric('seldon_gateway_protocol_translations_total', { deployment: 'hedged', from: 'seldon', to: 'v2' })).toBe(2 * n);
    expect(await w.metric('seldon_gateway_protocol_translations_total', { deployment: 'hedged', result: 'ok' })).toBe(2 * n);
  });
});

describe('protocol translation on a flow-limited route (gRPC: a Seldon client, a v2 model)', () => {
  const received: Msg[] = [];
  const server = new grpc.Server();
  let gw: TestGateway;
  let client: grpc.Client;

  beforeAll(async () => {
    // A v2 model as MLServer answers: its inputs back as outputs.
    server.addService(v2Svc as unknown as grpc.ServiceDefinition, {
      ModelInfer: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        received.push(call.request);
        const inputs = (call.request.inputs as Msg[] | undefined) ?? [];
        cb(null, { model_name: call.request.model_name, outputs: inputs.map((i, n) => ({ ...i, name: `output-${n}` })) });
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    gw = await startTestGateway({
      manifests: {
        'flowed.yaml': sdep('flowed', NS, { predictors: [{ name: 'main', graph: { name: 'iris' } }] }, { [PROTOCOL]: 'speaks: v2', 'seldon.io/gateway-flow': 'concurrency: 1\nqueue: 16' }),
      },
      resolve: { [`flowed-main.${NS}:5001`]: port },
    });
    client = new grpc.Client(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await gw?.stop();
    server.forceShutdown();
  });

  const predict = (req: Msg): Promise<{ res: Msg | undefined; err: grpc.ServiceError | undefined; headers: Record<string, unknown> }> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      md.set('seldon', 'flowed');
      md.set('namespace', NS);
      let headers: Record<string, unknown> = {};
      const method = seldonSvc.Predict!;
      const c = client.makeUnaryRequest('/seldon.protos.Seldon/Predict', method.requestSerialize, method.responseDeserialize, req, md, (err, res) =>
        resolve({ res: res ?? undefined, err: err ?? undefined, headers }),
      );
      c.on('metadata', (m) => (headers = m.getMap()));
    });

  it('calls sent at once each reach the model as the one ModelInfer, each client the SeldonMessage answer; one translation each', async () => {
    const n = 4;
    const calls = await Promise.all(Array.from({ length: n }, (_, i) => predict({ meta: { puid: `p-${i}` }, data: { tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } })));
    for (const [i, o] of calls.entries()) {
      expect(o.err).toBeUndefined();
      expect(o.headers['x-seldon-translated']).toBe('seldon->v2');
      expect(o.res).toEqual({ meta: { puid: `p-${i}` }, data: { names: ['t:0', 't:1', 't:2', 't:3'], tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } });
    }
    expect(received.length).toBe(n);
    const ids = received.map((r) => r.id).sort();
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => `p-${i}`));
    for (const r of received) {
      expect(r).toEqual({ model_name: 'iris', id: r.id, inputs: [{ name: 'input-0', datatype: 'FP64', shape: ['1', '4'], contents: { fp64_contents: [5.1, 3.5, 1.4, 0.2] } }] });
    }
    expect(await metric(gw.adminUrl, series('flowed', 'ok'))).toBe(n);
  });
});
