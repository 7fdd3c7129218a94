/**
 * Protocol translation on every kind of gRPC route (docs/protocol-translation.md#once-per-request), byte
 * for byte: raw HTTP/2 model stand-ins record each message as it arrived (frame and all), and the
 * @grpc/grpc-js client reads each answer as bytes. A canary pair whose predictors speak different
 * protocols, a shadow of the other protocol (both ways round), a header route, a fallback (both ways
 * round), a steered route (a bandit, whose token goes into the translated answer) and a JWT-gated
 * translated route, REST and gRPC: each model receives its own protocol, the
 * client always the Seldon form; a request the gate refuses reaches no model (its metadata included)
 * and counts no translation.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_DIR, grpcFrame } from '../../fixtures/grpc-backend.js';
import { signingKey, startIdentityProvider, type IdentityProvider } from '../../fixtures/identity-provider.js';
import { headerValue, rawRequest, startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { metricSum, scrape } from '../../helpers/observability.js';

const NS = 'm';
const PROTOCOL = 'seldon.io/gateway-protocol';
const PREDICT = '/seldon.protos.Seldon/Predict';
const INFER = '/inference.GRPCInferenceService/ModelInfer';
const METADATA = '/inference.GRPCInferenceService/ModelMetadata';

// Decoded as they are on the wire: int64 as decimal strings, no defaults filled in.
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const seldonSvc = defs['seldon.protos.Seldon'] as unknown as Record<string, Method>;
const v2Svc = defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>;

/** What a Seldon client sends, the ModelInfer a v2 model must receive (frame and all), and the SeldonMessage the client must get back. */
const VALUES = [5.1, 3.5, 1.4, 0.2];
const SENT = seldonSvc.Predict!.requestSerialize({ meta: { puid: 'p-1' }, data: { tensor: { shape: [1, 4], values: VALUES } } });
const AT_V2_MODEL = grpcFrame(
  v2Svc.ModelInfer!.requestSerialize({ model_name: 'model', id: 'p-1', inputs: [{ name: 'input-0', datatype: 'FP64', shape: [1, 4], contents: { fp64_contents: VALUES } }] }),
);
const TRANSLATED_ANSWER = seldonSvc.Predict!.responseSerialize({ meta: { puid: 'p-1' }, data: { names: ['t:0', 't:1', 't:2', 't:3'], tensor: { shape: [1, 4], values: VALUES } } });

interface Arrival {
  readonly path: string;
  readonly headers: http2.IncomingHttpHeaders;
  /** The request's bytes as they arrived: the gRPC frame and its message. */
  readonly body: Buffer;
}

interface GrpcModel {
  readonly up: RawUpstream;
  readonly arrivals: Arrival[];
  /** The inferences (its metadata, fetched beside translated traffic, aside). */
  inferences(): Arrival[];
}

function answer(stream: http2.ServerHttp2Stream, message: Buffer): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(grpcFrame(message));
}

/**
 * A gRPC model stand-in recording each request's bytes. `v2`: MLServer's answer, its inputs back as
 * outputs; `seldon`: its request's message back as it came; `busy`: UNAVAILABLE (its predictor falls
 * back). Its metadata is UNIMPLEMENTED (inputs by their values).
 */
async function startGrpcModel(kind: 'v2' | 'seldon' | 'busy'): Promise<GrpcModel> {
  const arrivals: Arrival[] = [];
  const up = await startRawUpstream((stream, _n, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => {
      const path = String(headers[':path']);
      const body = Buffer.concat(chunks);
      arrivals.push({ path, headers, body });
      const trailersOnly = (status: string): void => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': status }, { endStream: true });
      if (path === METADATA) return trailersOnly('12');
      if (kind === 'busy') return trailersOnly('14');
      if (kind === 'seldon' && path === PREDICT) return answer(stream, body.subarray(5));
      if (kind === 'v2' && path === INFER) {
        const r = v2Svc.ModelInfer!.requestDeserialize(body.subarray(5));
        const outputs = ((r.inputs as Msg[] | undefined) ?? []).map((i, n) => ({ ...i, name: `output-${n}` }));
        return answer(stream, v2Svc.ModelInfer!.responseSerialize({ model_name: r.model_name, id: r.id, outputs }));
      }
      trailersOnly('12');
    });
  });
  return { up, arrivals, inferences: () => arrivals.filter((a) => a.path !== METADATA) };
}

interface Called {
  readonly answer: Buffer | undefined;
  readonly err: grpc.ServiceError | undefined;
  readonly headers: Record<string, unknown>;
}

const translations = async (gw: TestGateway, deployment: string): Promise<number> => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_protocol_translations_total', { deployment });
const translationsOk = async (gw: TestGateway, deployment: string): Promise<number> =>
  metricSum(await scrape(gw.adminUrl), 'seldon_gateway_protocol_translations_total', { deployment, from: 'seldon', to: 'v2', result: 'ok' });

describe('protocol translation on every kind of gRPC route (a Seldon client; models of either protocol)', () => {
  const models: Record<string, GrpcModel> = {};
  let v2Rest: RecordingUpstream;
  let idp: IdentityProvider;
  let gw: TestGateway;
  let client: grpc.Client;

  /** A Predict of `message` (bytes as given) to `deployment`; the answer as bytes. */
  const predict = (deployment: string, extra: Record<string, string> = {}, message: Buffer = SENT): Promise<Called> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      md.set('seldon', deployment);
      md.set('namespace', NS);
      for (const [k, v] of Object.entries(extra)) md.set(k, v);
      let headers: Record<string, unknown> = {};
      const c = client.makeUnaryRequest(
        PREDICT,
        (b: Buffer) => b,
        (b: Buffer) => b,
        message,
        md,
        (err, res) => resolve({ answer: res ?? undefined, err: err ?? undefined, headers }),
      );
      c.on('metadata', (m) => (headers = m.getMap()));
    });

  /** The client got the wrapper's answer of a v2 model, said translated. */
  const expectTranslated = (o: Called): void => {
    expect(o.err, o.err?.details).toBeUndefined();
    expect(o.headers['x-seldon-translated']).toBe('seldon->v2');
    expect(o.answer).toEqual(TRANSLATED_ANSWER);
  };
  /** The client got a Seldon model's answer (its own message back) as it came, untranslated. */
  const expectUntranslated = (o: Called): void => {
    expect(o.err, o.err?.details).toBeUndefined();
    expect(o.headers['x-seldon-translated']).toBeUndefined();
    expect(o.answer).toEqual(SENT);
  };
  const expectV2Arrival = (a: Arrival | undefined): void => {
    expect(a?.path).toBe(INFER);
    expect(a?.body).toEqual(AT_V2_MODEL);
  };
  const expectSeldonArrival = (a: Arrival | undefined): void => {
    expect(a?.path).toBe(PREDICT);
    expect(a?.body).toEqual(grpcFrame(SENT));
  };

  beforeAll(async () => {
    for (const [name, kind] of [
      ['pair-main', 'seldon'],
      ['pair-next', 'v2'],
      ['shadowed-main', 'seldon'],
      ['shadowed-copy', 'v2'],
      ['reversed-main', 'v2'],
      ['reversed-copy', 'seldon'],
      ['base-main', 'seldon'],
      ['base-eu-main', 'v2'],
      ['fb-main', 'busy'],
      ['fb-small', 'seldon'],
      ['fbv2-main', 'busy'],
      ['fbv2-small', 'v2'],
      ['jwt-main', 'v2'],
      ['steered-a', 'v2'],
      ['steered-b', 'v2'],
    ] as const)
      models[name] = await startGrpcModel(kind);
    v2Rest = await startRecordingUpstream({ name: 'v2-rest', responder: v2RestModel });
    idp = await startIdentityProvider();
    idp.published = [await signingKey('k1', 'RS256')];
    const providers = join(mkdtempSync(join(tmpdir(), 'sgw-xlate-jwt-')), 'providers.yaml');
    writeFileSync(providers, `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  audiences: [seldon]\n`);
    const v2Predictor = (name: string, extra: Msg = {}): Msg => ({ name, graph: { name: 'model' }, annotations: { [PROTOCOL]: 'speaks: v2' }, ...extra });
    const seldonPredictor = (name: string, extra: Msg = {}): Msg => ({ name, graph: { name: 'model' }, ...extra });
    const fallback = { 'seldon.io/gateway-fallback': 'to: {predictor: small}\non: [error]' };
    const resolve: Record<string, number> = { [`jwt-main.${NS}:8000`]: v2Rest.port };
    for (const [name, m] of Object.entries(models)) resolve[`${name}.${NS}:5001`] = m.up.port;
    gw = await startTestGateway({
      manifests: {
        'pair.yaml': sdep('pair', NS, { predictors: [seldonPredictor('main', { traffic: 50 }), v2Predictor('next', { traffic: 50 })] }),
        'shadowed.yaml': sdep('shadowed', NS, { predictors: [seldonPredictor('main'), v2Predictor('copy', { shadow: true })] }),
        // The deployment speaks v2; its shadow, on Seldon's wrapper still, says so on its own predictor.
        'reversed.yaml': sdep(
          'reversed',
          NS,
          { predictors: [{ name: 'main', graph: { name: 'model' } }, seldonPredictor('copy', { shadow: true, annotations: { [PROTOCOL]: 'speaks: seldon' } })] },
          { [PROTOCOL]: 'speaks: v2' },
        ),
        'base.yaml': sdep('base', NS, { predictors: [seldonPredictor('main')] }),
        'base-eu.yaml': sdep(
          'base-eu',
          NS,
          { predictors: [{ name: 'main', graph: { name: 'model' } }] },
          {
            [PROTOCOL]: 'speaks: v2',
            'seldon.io/ambassador-service-name': 'base',
            'seldon.io/ambassador-header': 'x-region:eu',
          },
        ),
        'fb.yaml': sdep('fb', NS, { predictors: [v2Predictor('main'), seldonPredictor('small')] }, fallback),
        'fbv2.yaml': sdep('fbv2', NS, { predictors: [seldonPredictor('main'), v2Predictor('small')] }, fallback),
        'steered.yaml': sdep(
          'steered',
          NS,
          {
            predictors: [
              { name: 'a', graph: { name: 'model' } },
              { name: 'b', graph: { name: 'model' } },
            ],
          },
          { [PROTOCOL]: 'speaks: v2', 'seldon.io/gateway-bandit': 'arms: [a, b]\nfloor: 5%\nhalfLife: none' },
        ),
        'jwt.yaml': sdep('jwt', NS, { predictors: [{ name: 'main', graph: { name: 'model' } }] }, { [PROTOCOL]: 'speaks: v2', 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'] }) }),
      },
      resolve,
      // The canary's draws: seeded, so the run is the same every time.
      args: ['--random-seed', '75', '--jwt-providers', providers],
    });
    client = new grpc.Client(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await gw?.stop();
    for (const m of Object.values(models)) await m.up.close();
    await v2Rest?.close();
    await idp?.close();
  });

  it('a canary pair, Seldon main and v2 next: each model receives its own protocol, byte for byte; the client always the Seldon form', async () => {
    const n = 24;
    for (let i = 0; i < n; i++) {
      const o = await predict('pair');
      expect(o.err, o.err?.details).toBeUndefined();
      if (o.headers['x-seldon-translated'] !== undefined) expectTranslated(o);
      else expectUntranslated(o);
    }
    const main = models['pair-main']!.inferences();
    const next = models['pair-next']!.inferences();
    expect(main.length).toBeGreaterThan(0);
    expect(next.length).toBeGreaterThan(0);
    expect(main.length + next.length).toBe(n);
    for (const a of main) expectSeldonArrival(a);
    for (const a of next) expectV2Arrival(a);
    expect(await translationsOk(gw, 'pair')).toBe(next.length);
  });

  it('steered (a bandit): whichever arm it picks, the model receives ModelInfer byte for byte, the client the Seldon answer with the arm’s token in its meta', async () => {
    const n = 8;
    for (let i = 0; i < n; i++) {
      const o = await predict('steered');
      expect(o.err, o.err?.details).toBeUndefined();
      expect(o.headers['x-seldon-translated']).toBe('seldon->v2');
      // The bandit tags the translated SeldonMessage, as it tags a Seldon model's: the token in meta.tags, the rest the translation's bytes.
      const got = seldonSvc.Predict!.responseDeserialize(o.answer!) as { meta: { tags: Record<string, { stringValue?: string }> } };
      const token = got.meta.tags['seldon.io/gateway-arm']?.stringValue;
      expect(token).toMatch(/^1\.[ab]\./);
      delete got.meta.tags['seldon.io/gateway-arm'];
      expect(Object.keys(got.meta.tags)).toEqual([]);
      delete (got.meta as { tags?: unknown }).tags;
      expect(seldonSvc.Predict!.responseSerialize(got)).toEqual(TRANSLATED_ANSWER);
    }
    const a = models['steered-a']!.inferences();
    const b = models['steered-b']!.inferences();
    expect(a.length + b.length).toBe(n);
    for (const arrival of [...a, ...b]) expectV2Arrival(arrival);
    expect(await translationsOk(gw, 'steered')).toBe(n);
  });

  it('a v2 shadow behind a Seldon primary gets ModelInfer; the primary its Predict as it came; the client the primary’s answer, untranslated', async () => {
    expectUntranslated(await predict('shadowed'));
    expectSeldonArrival(models['shadowed-main']!.inferences().at(-1));
    await waitFor(() => models['shadowed-copy']!.inferences().length === 1, 5000);
    expectV2Arrival(models['shadowed-copy']!.inferences()[0]);
  });

  it('a Seldon shadow behind a v2 primary gets the client’s Predict as it came; the primary ModelInfer; the client the translated answer', async () => {
    expectTranslated(await predict('reversed'));
    expectV2Arrival(models['reversed-main']!.inferences().at(-1));
    await waitFor(() => models['reversed-copy']!.inferences().length === 1, 5000);
    expectSeldonArrival(models['reversed-copy']!.inferences()[0]);
    expect(await translationsOk(gw, 'reversed')).toBe(1);
  });

  it('a header route: the call with the header reaches the translating deployment (v2), the one without the Seldon one, untranslated', async () => {
    expectTranslated(await predict('base', { 'x-region': 'eu' }));
    expect(models['base-eu-main']!.inferences().length).toBe(1);
    expectV2Arrival(models['base-eu-main']!.inferences()[0]);
    expect(models['base-main']!.inferences().length).toBe(0);

    expectUntranslated(await predict('base'));
    expect(models['base-main']!.inferences().length).toBe(1);
    expectSeldonArrival(models['base-main']!.inferences()[0]);
    expect(models['base-eu-main']!.inferences().length).toBe(1);
    expect(await translationsOk(gw, 'base-eu')).toBe(1);
  });

  it('a fallback from a v2 model to a Seldon one: the v2 model got ModelInfer, the fallback the client’s Predict as it came, the client its answer untranslated', async () => {
    expectUntranslated(await predict('fb'));
    expect(models['fb-main']!.inferences().length).toBe(1);
    expectV2Arrival(models['fb-main']!.inferences()[0]);
    expect(models['fb-small']!.inferences().length).toBe(1);
    expectSeldonArrival(models['fb-small']!.inferences()[0]);
  });

  it('a fallback from a Seldon model to a v2 one: the fallback gets the translation, the client the translated answer', async () => {
    expectTranslated(await predict('fbv2'));
    expect(models['fbv2-main']!.inferences().length).toBe(1);
    expectSeldonArrival(models['fbv2-main']!.inferences()[0]);
    expect(models['fbv2-small']!.inferences().length).toBe(1);
    expectV2Arrival(models['fbv2-small']!.inferences()[0]);
    expect(await translationsOk(gw, 'fbv2')).toBe(1);
  });

  it('JWT-gated (gRPC): a call without a token or with a forged one reaches no model, not even its metadata, and counts no translation; a good token is translated', async () => {
    const jwt = models['jwt-main']!;
    const forged = `${(await idp.token({ sub: 'alice', aud: 'seldon' })).slice(0, -4)}AAAA`;
    const refused: Record<string, string>[] = [{}, { authorization: `Bearer ${forged}` }, { authorization: 'Bearer not.a.jwt' }];
    for (const extra of refused) {
      const o = await predict('jwt', extra);
      expect(o.err?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(o.headers['x-seldon-translated']).toBeUndefined();
    }
    expect(jwt.arrivals.length).toBe(0);
    expect(await translations(gw, 'jwt')).toBe(0);

    expectTranslated(await predict('jwt', { authorization: `Bearer ${await idp.token({ sub: 'alice', aud: 'seldon' })}` }));
    expect(jwt.inferences().length).toBe(1);
    expectV2Arrival(jwt.inferences()[0]);
    expect(await translationsOk(gw, 'jwt')).toBe(1);
  });

  it('JWT-gated (REST): a request without a token or with a forged one reaches no model and counts no translation; a good token is translated', async () => {
    const target = `/seldon/${NS}/jwt/api/v1.0/predictions`;
    const post = async (headers: [string, string][]): Promise<{ status: number; body: string; translated: string | undefined }> => {
      const { res, x } = await rawRequest(gw.port, { method: 'POST', target, headers: [['Host', 'gw'], ['Content-Type', 'application/json'], ...headers], body: Buffer.from(REST_SENT) });
      x.socket.destroy();
      expect(res, 'an answer').not.toBeNull();
      return { status: res!.status, body: res!.body.toString(), translated: headerValue(res!.headers, 'x-seldon-translated') };
    };
    const before = await translations(gw, 'jwt');
    const forged = `${(await idp.token({ sub: 'alice', aud: 'seldon' })).slice(0, -4)}AAAA`;
    for (const headers of [[], [['Authorization', `Bearer ${forged}`]]] as [string, string][][]) {
      const r = await post(headers);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ status: { code: 401, reason: 'UNAUTHENTICATED', status: 'FAILURE' } });
      expect(r.translated).toBeUndefined();
    }
    expect(v2Rest.requests.length).toBe(0);
    expect(await translations(gw, 'jwt')).toBe(before);

    const ok = await post([['Authorization', `Bearer ${await idp.token({ sub: 'alice', aud: 'seldon' })}`]]);
    expect(ok).toEqual({ status: 200, body: REST_ANSWER, translated: 'seldon->v2' });
    const got = v2Rest.requests.filter((r) => r.method === 'POST');
    expect(got.length).toBe(1);
    expect(got[0]!.target).toBe('/v2/models/model/infer');
    expect(got[0]!.body.toString()).toBe(REST_AT_MODEL);
    expect(await translationsOk(gw, 'jwt')).toBe(before + 1);
  });
});

const REST_SENT = '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const REST_AT_MODEL = '{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}';
const REST_ANSWER = '{"data":{"names":["t:0","t:1","t:2","t:3"],"ndarray":[[5.1,3.5,1.4,0.2]]},"meta":{}}';

/** A v2 REST model as MLServer answers: its one input back as `output-0`. */
function v2RestModel(req: RecordedRequest): { statusLine?: string; headers: [string, string][]; body: string } {
  if (req.method !== 'POST') return { statusLine: 'HTTP/1.1 404 Not Found', headers: [['Content-Type', 'application/json']], body: '{"error":"Model not found"}' };
  return { headers: [['Content-Type', 'application/json']], body: req.body.toString().replace(/^\{"inputs":\[\{"name":"[^"]*"/, '{"model_name":"model","outputs":[{"name":"output-0"') };
}
