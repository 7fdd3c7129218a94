/**
 * Protocol translation over real sockets, REST (docs/protocol-translation.md): a real gateway, a v2
 * model stand-in speaking the Open Inference Protocol and a Seldon one speaking SeldonMessage, both
 * recording exactly what they received, raw HTTP/1.1 clients.
 *
 * - a Seldon client reaches a v2 model: the model receives exactly the v2 request, the client gets
 *   exactly the wrapper's answer, with `x-seldon-translated: seldon->v2`; INT64 2^53+1 survives;
 * - a v2 client reaches a Seldon model, and back; INT64 2^53+1 survives; its metadata and readiness are the gateway's answers;
 * - every refusal: 400, a Seldon-style error, zero upstream calls; feedback goes as it came;
 * - a model's v2 error becomes a Seldon-style error of its status;
 * - a canary pair (Seldon main, v2 next) at 50/50: each model gets its own protocol, the client always
 *   the Seldon form; a v2 shadow behind a Seldon primary gets v2;
 * - no annotation: byte for byte unchanged; a bad annotation degrades its deployment alone, untranslated;
 * - the metric counts each result.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectRaw,
  headerValue,
  rawRequest,
  startRecordingUpstream,
  writeRequest,
  type Answer,
  type HeaderLine,
  type RawResponse,
  type RecordedRequest,
  type RecordingUpstream,
} from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { seededRandom } from '../../../routing/table/pick.js';

/** What a model stand-in was asked but its metadata (`GET /v2/models/<m>`, fetched beside translated traffic: docs/protocol-translation.md#the-models-metadata). */
const inferences = (u: { readonly requests: readonly RecordedRequest[] }): RecordedRequest[] => u.requests.filter((r) => r.method !== 'GET');

const PROTOCOL = 'seldon.io/gateway-protocol';
const JSON_TYPE: HeaderLine = ['Content-Type', 'application/json'];

/**
 * A v2 model as MLServer answers: its one output is its one input, renamed, data as received (the
 * stand-in edits the text: its numbers never go through a JavaScript number). `x-case: error` answers a v2 error.
 */
function v2Model(req: RecordedRequest): Answer | Promise<Answer> {
  const m = /^\/v2\/models\/([^/]+)\/infer$/.exec(req.target);
  if (req.method !== 'POST' || m === null) return { statusLine: 'HTTP/1.1 404 Not Found', headers: [JSON_TYPE], body: '{"error":"Model not found"}' };
  if (headerValue(req.headers, 'x-case') === 'error') return { statusLine: 'HTTP/1.1 422 Unprocessable Entity', headers: [JSON_TYPE], body: '{"error":"shape mismatch"}' };
  // `x-case: several`: a model of several outputs (a classifier's labels and probabilities), FP64 whole numbers and 64-bit integers among them.
  if (headerValue(req.headers, 'x-case') === 'several')
    return {
      headers: [JSON_TYPE],
      body: '{"model_name":"iris","outputs":[{"name":"label","shape":[2],"datatype":"INT64","data":[9007199254740993,0]},{"name":"proba","shape":[2,2],"datatype":"FP64","data":[1,0.0,0.25,0.75]},{"name":"tag","shape":[1],"datatype":"BYTES","data":["é"]}]}',
    };
  // `x-case: down`: the model is unavailable (a predictor's fallback takes over).
  if (headerValue(req.headers, 'x-case') === 'down') return { statusLine: 'HTTP/1.1 503 Service Unavailable', headers: [JSON_TYPE], body: '{"error":"down"}' };
  // The first attempt of a `x-case: retry` request fails as a gateway error; the next is answered.
  if (headerValue(req.headers, 'x-case') === 'retry' && ++retryAttempts % 2 === 1) return { statusLine: 'HTTP/1.1 503 Service Unavailable', headers: [JSON_TYPE], body: '{"error":"busy"}' };
  if (headerValue(req.headers, 'x-case') === 'hold') return held.then(() => ({ headers: [JSON_TYPE], body: '{"model_name":"iris","outputs":[]}' }));
  const text = req.body.toString('utf8');
  const echoed = text.replace(
    /^\{(?:"id":("[^"]*"),)?"inputs":\[\{"name":"[^"]*"/,
    (_all, id: string | undefined) => `{"model_name":"${m[1]}",${id ? `"id":${id},` : ''}"outputs":[{"name":"output-0"`,
  );
  return { headers: [JSON_TYPE], body: echoed };
}

/** `x-case: retry` requests the v2 model has seen. */
let retryAttempts = 0;
/** `x-case: hold` answers wait for this. */
let release: () => void = () => undefined;
const held = new Promise<void>((resolve) => (release = resolve));

/** A Seldon-protocol model as the Python wrapper answers an ndarray or tensor: its data back, names by rank. */
function seldonModel(req: RecordedRequest) {
  if (req.target !== '/api/v1.0/predictions') return { statusLine: 'HTTP/1.1 404 Not Found', headers: [JSON_TYPE], body: '{"status":{"code":404,"info":"not found","status":"FAILURE"}}' };
  // The wrapper answers `tensor` with `tensor` and keeps its numbers' text.
  const text = req.body.toString('utf8').replace(/,"meta":\{[^}]*\}\}$/, ',"meta":{}}');
  return { headers: [JSON_TYPE], body: text };
}

async function post(port: number, target: string, body: string, headers: HeaderLine[] = []): Promise<RawResponse> {
  const { res, x } = await rawRequest(port, { method: 'POST', target, headers: [['Host', 'gw'], JSON_TYPE, ...headers], body: Buffer.from(body) });
  x.socket.destroy();
  expect(res, 'an answer').not.toBeNull();
  return res!;
}

describe('REST protocol translation', () => {
  let v2: RecordingUpstream;
  let seldon: RecordingUpstream;
  let shadow: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(async () => {
    v2 = await startRecordingUpstream({ name: 'v2', responder: v2Model });
    seldon = await startRecordingUpstream({ name: 'seldon', responder: seldonModel });
    shadow = await startRecordingUpstream({ name: 'shadow', responder: v2Model });
    gw = await startTestGateway({
      manifests: {
        'retried.yaml': sdep('retried', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [PROTOCOL]: '{}', 'seldon.io/ambassador-retries': '2' }),
        'iris.yaml': sdep('iris', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'classifier' } }] }, { [PROTOCOL]: '{"modelName": "iris"}' }),
        'named.yaml': sdep('named', 'm', { predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [PROTOCOL]: 'speaks: v2\nnames: [setosa, versicolor]\ndatatype: FP32' }),
        'legacy.yaml': sdep('legacy', 'm', { predictors: [{ name: 'main', graph: { name: 'legacy' } }] }, { [PROTOCOL]: 'accept: [v2]' }),
        'pair.yaml': sdep('pair', 'm', {
          predictors: [
            { name: 'main', traffic: 50, graph: { name: 'model' } },
            { name: 'next', traffic: 50, graph: { name: 'model' }, annotations: { [PROTOCOL]: 'speaks: v2' } },
          ],
        }),
        'shadowed.yaml': sdep('shadowed', 'm', {
          predictors: [
            { name: 'main', graph: { name: 'model' } },
            { name: 'copy', shadow: true, graph: { name: 'model' }, annotations: { [PROTOCOL]: 'speaks: v2' } },
          ],
        }),
        'plain.yaml': sdep('plain', 'm', { protocol: 'v2', predictors: [{ name: 'main' }] }),
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
        'bad.yaml': sdep('bad', 'm', { predictors: [{ name: 'main' }] }, { [PROTOCOL]: 'speaks: grpc' }),
      },
      resolve: {
        'iris-main.m:8000': v2.port,
        'retried-main.m:8000': v2.port,
        'named-main.m:8000': v2.port,
        'legacy-main.m:8000': seldon.port,
        'pair-main.m:8000': seldon.port,
        'pair-next.m:8000': v2.port,
        'shadowed-main.m:8000': seldon.port,
        'shadowed-copy.m:8000': shadow.port,
        'plain-main.m:8000': v2.port,
        'fb-main.m:8000': v2.port,
        'fb-small.m:8000': seldon.port,
        'bad-main.m:8000': v2.port,
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await v2?.close();
    await seldon?.close();
    await shadow?.close();
  });

  const calls = (): number => inferences(v2).length + inferences(seldon).length + inferences(shadow).length;

  describe('a Seldon client, a v2 model', () => {
    const cases: [string, string, string, string][] = [
      [
        'ndarray, rank 2',
        '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}',
        '{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}',
        '{"data":{"names":["t:0","t:1","t:2","t:3"],"ndarray":[[5.1,3.5,1.4,0.2]]},"meta":{}}',
      ],
      [
        'tensor with a puid',
        '{"meta":{"puid":"abc"},"data":{"tensor":{"shape":[2,1],"values":[1,2]}}}',
        '{"id":"abc","inputs":[{"name":"input-0","shape":[2,1],"datatype":"INT64","data":[1,2]}]}',
        '{"data":{"names":["t:0"],"tensor":{"shape":[2,1],"values":[1,2]}},"meta":{"puid":"abc"}}',
      ],
      ['rank 0', '{"data":{"ndarray":3}}', '{"inputs":[{"name":"input-0","shape":[],"datatype":"INT64","data":[3]}]}', '{"data":{"names":[],"ndarray":3},"meta":{}}'],
      [
        'rank 3 booleans',
        '{"data":{"ndarray":[[[true],[false]]]}}',
        '{"inputs":[{"name":"input-0","shape":[1,2,1],"datatype":"BOOL","data":[true,false]}]}',
        '{"data":{"names":["t:0","t:1"],"ndarray":[[[true],[false]]]},"meta":{}}',
      ],
      ['strData', '{"strData":"hello"}', '{"inputs":[{"name":"input-0","shape":[1],"datatype":"BYTES","parameters":{"content_type":"str"},"data":["hello"]}]}', '{"meta":{},"strData":"hello"}'],
      [
        'a whole number beyond INT64 (numpy: uint64)',
        '{"data":{"tensor":{"shape":[2],"values":[18446744073709551615,1]}}}',
        '{"inputs":[{"name":"input-0","shape":[2],"datatype":"UINT64","data":[18446744073709551615,1]}]}',
        '{"data":{"names":[],"tensor":{"shape":[2],"values":[18446744073709551615,1]}},"meta":{}}',
      ],
      [
        'INT64 2^53+1',
        '{"data":{"ndarray":[9007199254740993]}}',
        '{"inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[9007199254740993]}]}',
        '{"data":{"names":[],"ndarray":[9007199254740993]},"meta":{}}',
      ],
    ];
    it.each(cases)('%s: the model receives exactly the v2 request, the client exactly the Seldon answer', async (_name, sent, atModel, answer) => {
      const before = inferences(v2).length;
      for (const version of ['v1.0', 'v0.1']) {
        const res = await post(gw.port, `/seldon/m/iris/api/${version}/predictions`, sent);
        expect(res.status).toBe(200);
        expect(res.body.toString()).toBe(answer);
        expect(headerValue(res.headers, 'x-seldon-translated')).toBe('seldon->v2');
        expect(headerValue(res.headers, 'content-length')).toBe(String(Buffer.byteLength(answer)));
        const got = inferences(v2).at(-1)!;
        expect(got.method).toBe('POST');
        expect(got.target).toBe('/v2/models/iris/infer');
        expect(got.body.toString()).toBe(atModel);
        expect(headerValue(got.headers, 'content-length')).toBe(String(Buffer.byteLength(atModel)));
        expect(headerValue(got.headers, 'content-type')).toBe('application/json');
      }
      expect(inferences(v2).length).toBe(before + 2);
    });

    it("the model is not asked for an encoded answer it would send back unreadable: the client's Accept-Encoding stays at the gateway", async () => {
      const res = await post(gw.port, '/seldon/m/iris/api/v1.0/predictions', '{"data":{"ndarray":[1]}}', [['Accept-Encoding', 'gzip, br']]);
      expect(res.status).toBe(200);
      expect(headerValue(inferences(v2).at(-1)!.headers, 'accept-encoding')).toBeUndefined();
    });

    it('a body sent encoded is never decoded for translation (no bomb to inflate): 400, zero upstream calls', async () => {
      const before = calls();
      const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, '['));
      const { res, x } = await rawRequest(gw.port, { method: 'POST', target: '/seldon/m/iris/api/v1.0/predictions', headers: [['Host', 'gw'], JSON_TYPE, ['Content-Encoding', 'gzip']], body: bomb });
      x.socket.destroy();
      expect(res!.status).toBe(400);
      expect(res!.body.toString()).toMatch(/not valid JSON/);
      expect(calls()).toBe(before);
    });

    it('several outputs: the client gets jsonData, each output nested by its shape under its name, floats written as floats, long integers exact', async () => {
      const res = await post(gw.port, '/seldon/m/iris/api/v1.0/predictions', '{"data":{"ndarray":[[1,2],[3,4]]}}', [['X-Case', 'several']]);
      expect(res.status).toBe(200);
      expect(headerValue(res.headers, 'x-seldon-translated')).toBe('seldon->v2');
      expect(res.body.toString()).toBe('{"jsonData":{"label":[9007199254740993,0],"proba":[[1.0,0.0],[0.25,0.75]],"tag":["é"]},"meta":{}}');
      expect(inferences(v2).at(-1)!.body.toString()).toBe('{"inputs":[{"name":"input-0","shape":[2,2],"datatype":"INT64","data":[1,2,3,4]}]}');
    });
    it("the annotation's datatype and names", async () => {
      const res = await post(gw.port, '/seldon/m/named/api/v1.0/predictions', '{"data":{"ndarray":[[0.25,0.75]]}}');
      expect(inferences(v2).at(-1)!.body.toString()).toBe('{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP32","data":[0.25,0.75]}]}');
      expect(inferences(v2).at(-1)!.target).toBe('/v2/models/clf/infer');
      expect(res.body.toString()).toBe('{"data":{"names":["setosa","versicolor"],"ndarray":[[0.25,0.75]]},"meta":{}}');
    });

    it("a model's v2 error is a Seldon-style error of its status", async () => {
      const res = await post(gw.port, '/seldon/m/iris/api/v1.0/predictions', '{"data":{"ndarray":[1]}}', [['X-Case', 'error']]);
      expect(res.status).toBe(422);
      expect(res.body.toString()).toBe('{"status":{"code":422,"info":"shape mismatch","status":"FAILURE"}}');
      expect(headerValue(res.headers, 'x-seldon-translated')).toBe('seldon->v2');
    });

    const refusals: [string, string, RegExp][] = [
      ['ragged', '{"data":{"ndarray":[[1,2],[3]]}}', /ragged/],
      ['mixed', '{"data":{"ndarray":[1,"a"]}}', /mixed array/],
      ['count vs shape', '{"data":{"tensor":{"shape":[3],"values":[1,2]}}}', /2 elements where its shape \[3\] holds 3/],
      ['not JSON', '{"data"', /not valid JSON/],
      ['jsonData', '{"jsonData":{"a":1}}', /jsonData/],
      ['a shape dimension that is a long integer', '{"data":{"tensor":{"shape":[18446744073709551616],"values":[1]}}}', /whole numbers from 0, not \["18446744073709551616"\]/],
    ];
    it.each(refusals)('refused (%s): 400, a Seldon-style error, zero upstream calls', async (_name, body, info) => {
      const before = calls();
      const res = await post(gw.port, '/seldon/m/iris/api/v1.0/predictions', body);
      expect(res.status).toBe(400);
      const err = JSON.parse(res.body.toString()) as { status: { code: number; info: string; reason: string; status: string } };
      expect(err.status).toMatchObject({ code: 400, reason: 'BAD_REQUEST', status: 'FAILURE' });
      expect(err.status.info).toMatch(info);
      expect(calls()).toBe(before);
    });

    it('refused for an integer datatype: a fraction, out of range', async () => {
      const before = calls();
      const ints = 'seldon.io/gateway-protocol';
      await gw.write('ints.yaml', sdep('ints', 'm', { predictors: [{ name: 'main', graph: { name: 'clf' } }] }, { [ints]: 'speaks: v2\ndatatype: UINT8' }));
      for (const [body, info] of [
        ['{"data":{"ndarray":[1.5]}}', /not a whole number/],
        ['{"data":{"ndarray":[256]}}', /out of range for UINT8/],
      ] as const) {
        const res = await post(gw.port, '/seldon/m/ints/api/v1.0/predictions', body);
        expect(res.status).toBe(400);
        expect(res.body.toString()).toMatch(info);
      }
      expect(calls()).toBe(before);
    });

    it('feedback is never turned into an inference: it goes as it came', async () => {
      const body = '{"request":{"data":{"ndarray":[1]}},"reward":1}';
      await post(gw.port, '/seldon/m/iris/api/v1.0/feedback', body);
      const got = inferences(v2).at(-1)!;
      expect(got.target).toBe('/api/v1.0/feedback');
      expect(got.body.toString()).toBe(body);
    });
  });

  describe('a v2 client, a Seldon model', () => {
    it('the model receives a SeldonMessage, the client a v2 answer; INT64 2^53+1 both ways', async () => {
      const res = await post(gw.port, '/seldon/m/legacy/v2/models/legacy/infer', '{"id":"r1","inputs":[{"name":"x","shape":[1,2],"datatype":"INT64","data":[9007199254740993,2]}]}');
      expect(inferences(seldon).at(-1)!.target).toBe('/api/v1.0/predictions');
      expect(inferences(seldon).at(-1)!.body.toString()).toBe('{"data":{"names":[],"tensor":{"shape":[1,2],"values":[9007199254740993,2]}},"meta":{"puid":"r1"}}');
      expect(res.status).toBe(200);
      expect(headerValue(res.headers, 'x-seldon-translated')).toBe('v2->seldon');
      expect(res.body.toString()).toBe('{"model_name":"legacy","id":"r1","outputs":[{"name":"output-0","shape":[1,2],"datatype":"INT64","data":[9007199254740993,2]}]}');
    });
    // datatype (and what it shows), shape, the v2 client's data, what the Seldon model gets as `data`, the client's output data
    const goldens: [string, string, number[], string, string, string][] = [
      ['BOOL rank 1', 'BOOL', [2], '[true,false]', '{"names":[],"ndarray":[true,false]}', '[true,false]'],
      ['INT8 rank 2, its limits', 'INT8', [1, 2], '[-128,127]', '{"names":[],"tensor":{"shape":[1,2],"values":[-128,127]}}', '[-128,127]'],
      ['INT16', 'INT16', [2], '[-32768,32767]', '{"names":[],"tensor":{"shape":[2],"values":[-32768,32767]}}', '[-32768,32767]'],
      ['INT32 rank 0', 'INT32', [], '[-7]', '{"names":[],"tensor":{"shape":[],"values":[-7]}}', '[-7]'],
      [
        'INT64 at its limits',
        'INT64',
        [2],
        '[-9223372036854775808,9223372036854775807]',
        '{"names":[],"tensor":{"shape":[2],"values":[-9223372036854775808,9223372036854775807]}}',
        '[-9223372036854775808,9223372036854775807]',
      ],
      ['UINT8', 'UINT8', [2], '[0,255]', '{"names":[],"tensor":{"shape":[2],"values":[0,255]}}', '[0,255]'],
      ['UINT16', 'UINT16', [1], '[65535]', '{"names":[],"tensor":{"shape":[1],"values":[65535]}}', '[65535]'],
      ['UINT32', 'UINT32', [1], '[4294967295]', '{"names":[],"tensor":{"shape":[1],"values":[4294967295]}}', '[4294967295]'],
      // numpy reads it as uint64, and the wrapper answers it so: beyond INT64, never a 502.
      ['UINT64 2^64 - 1', 'UINT64', [1], '[18446744073709551615]', '{"names":[],"tensor":{"shape":[1],"values":[18446744073709551615]}}', '[18446744073709551615]'],
      ['FP16', 'FP16', [1], '[1.5]', '{"names":[],"tensor":{"shape":[1],"values":[1.5]}}', '[1.5]'],
      ['FP32 rank 3', 'FP32', [1, 1, 2], '[0.5,-1.25]', '{"names":[],"tensor":{"shape":[1,1,2],"values":[0.5,-1.25]}}', '[0.5,-1.25]'],
      // A negative zero keeps its sign both ways (Python's json reads `-0` as the integer 0, `-0.0` as a float).
      ['FP64, a negative zero, 1e300', 'FP64', [3], '[0.1,-0.0,1e300]', '{"names":[],"tensor":{"shape":[3],"values":[0.1,-0.0,1e+300]}}', '[0.1,-0.0,1e+300]'],
      ['BYTES rank 2', 'BYTES', [1, 2], '["a","bc"]', '{"names":[],"ndarray":[["a","bc"]]}', '["a","bc"]'],
      ['BYTES rank 3', 'BYTES', [1, 1, 1], '["x"]', '{"names":[],"ndarray":[[["x"]]]}', '["x"]'],
    ];
    it.each(goldens)('golden, %s: the Seldon model receives exactly the SeldonMessage, the client exactly the v2 answer', async (_name, datatype, shape, data, atModel, answered) => {
      const before = inferences(seldon).length;
      const res = await post(gw.port, '/seldon/m/legacy/v2/models/legacy/infer', `{"id":"r-1","inputs":[{"name":"x","shape":${JSON.stringify(shape)},"datatype":"${datatype}","data":${data}}]}`);
      expect(inferences(seldon).length).toBe(before + 1);
      const got = inferences(seldon).at(-1)!;
      expect(got.target).toBe('/api/v1.0/predictions');
      expect(got.body.toString()).toBe(`{"data":${atModel},"meta":{"puid":"r-1"}}`);
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(`{"model_name":"legacy","id":"r-1","outputs":[{"name":"output-0","shape":${JSON.stringify(shape)},"datatype":"${datatype}","data":${answered}}]}`);
      expect(headerValue(res.headers, 'content-length')).toBe(String(res.body.length));
    });
    it("the answer keeps the request's datatype when it is of its shape and each value is one of it: FP32 in, FP32 back, the values' text as the model wrote it", async () => {
      const res = await post(gw.port, '/seldon/m/legacy/v2/models/legacy/infer', '{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[5.1,3.5,1]}]}');
      expect(inferences(seldon).at(-1)!.body.toString()).toBe('{"data":{"names":[],"tensor":{"shape":[1,3],"values":[5.1,3.5,1.0]}},"meta":{}}');
      expect(res.body.toString()).toBe('{"model_name":"legacy","outputs":[{"name":"output-0","shape":[1,3],"datatype":"FP32","data":[5.1,3.5,1.0]}]}');
      const ints = await post(gw.port, '/seldon/m/legacy/v2/models/legacy/infer', '{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[7,-3]}]}');
      expect(ints.body.toString()).toBe('{"model_name":"legacy","outputs":[{"name":"output-0","shape":[2],"datatype":"INT32","data":[7,-3]}]}');
    });
    it('GET …/v2/models/<m> and …/ready are answered from what the gateway knows, nothing sent to the model', async () => {
      const before = calls();
      for (const [target, body] of [
        ['/seldon/m/legacy/v2/models/legacy', '{"name":"legacy","versions":[],"platform":"seldon","inputs":[],"outputs":[]}'],
        ['/seldon/m/legacy/v2/models/legacy/ready', ''],
      ] as const) {
        const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: [['Host', 'gw']] });
        x.socket.destroy();
        expect(res!.status).toBe(200);
        expect(res!.body.toString()).toBe(body);
        expect(headerValue(res!.headers, 'x-seldon-translated')).toBe('v2->seldon');
      }
      expect(calls()).toBe(before);
    });
    it('GET …/v2/models/<m>/versions/<v> and …/ready are answered as the model’s (a query aside), nothing sent to the model', async () => {
      const asked = seldon.requests.length;
      const metadata = '{"name":"legacy","versions":[],"platform":"seldon","inputs":[],"outputs":[]}';
      for (const [target, body] of [
        ['/seldon/m/legacy/v2/models/legacy/versions/2', metadata],
        ['/seldon/m/legacy/v2/models/legacy/versions/v1.2_b-3', metadata],
        ['/seldon/m/legacy/v2/models/legacy/versions/2/ready', ''],
        ['/seldon/m/legacy/v2/models/legacy/versions/2/ready?x=../../api/v1.0/predictions', ''],
        // Dot segments are resolved before routing (RFC 3986, Envoy's normalize_path): the model's own readiness.
        ['/seldon/m/legacy/v2/models/legacy/versions/../ready', ''],
        ['/seldon/m/legacy/v2/models/legacy/versions/%2e%2e/ready', ''],
      ] as const) {
        const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: [['Host', 'gw']] });
        x.socket.destroy();
        expect(res!.status, target).toBe(200);
        expect(res!.body.toString(), target).toBe(body);
        expect(headerValue(res!.headers, 'x-seldon-translated')).toBe('v2->seldon');
      }
      expect(seldon.requests.length).toBe(asked);
    });
    it('GET …/v2/models/<another model> and its …/ready are MLServer’s 404 {"error": …}, nothing sent to the model', async () => {
      const asked = seldon.requests.length;
      for (const target of [
        '/seldon/m/legacy/v2/models/other',
        '/seldon/m/legacy/v2/models/other/ready',
        '/seldon/m/legacy/v2/models/Legacy/versions/2',
        '/seldon/m/legacy/v2/models/other/versions/2/ready',
      ]) {
        const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: [['Host', 'gw']] });
        x.socket.destroy();
        expect(res!.status, target).toBe(404);
        const name = target.split('/')[6];
        expect(res!.body.toString(), target).toBe(`{"error":"Model ${name} not found"}`);
      }
      expect(seldon.requests.length).toBe(asked);
    });
    it('a version segment that is not one as sent (an encoded slash, an encoded query, a leading dot) is never the gateway’s to answer: it reaches the model as it came', async () => {
      // Dot segments between encoded slashes: the edge's own 400 (the model might decode them into a traversal), nothing sent.
      for (const tail of ['', '/ready']) {
        const target = `/seldon/m/legacy/v2/models/legacy/versions/1%2F..%2F..%2Fready${tail}`;
        const asked = seldon.requests.length;
        const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: [['Host', 'gw']] });
        x.socket.destroy();
        expect(res!.status, target).toBe(400);
        expect(JSON.parse(res!.body.toString())).toMatchObject({ status: { code: 400, status: 'FAILURE' } });
        expect(seldon.requests.length, target).toBe(asked);
      }
      for (const version of ['1%2F2', '1%3Fready', '.hidden', '-1']) {
        for (const tail of ['', '/ready']) {
          const target = `/seldon/m/legacy/v2/models/legacy/versions/${version}${tail}`;
          const asked = seldon.requests.length;
          const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: [['Host', 'gw']] });
          x.socket.destroy();
          expect(headerValue(res!.headers, 'x-seldon-translated'), target).toBeUndefined();
          // The Seldon model's own 404: it has no v2 paths.
          expect(res!.status, target).toBe(404);
          expect(seldon.requests.length, target).toBe(asked + 1);
          expect(seldon.requests.at(-1)!.target, target).toBe(`/v2/models/legacy/versions/${version}${tail}`);
        }
      }
    });
    it("a BYTES element of content_type base64 (MLServer's Base64Codec) reaches the Seldon model as binData, its bytes; text that is not base64 is refused, nothing sent", async () => {
      const bytes = Buffer.from([9, 0, 255, 104, 105]);
      const res = await post(
        gw.port,
        '/seldon/m/legacy/v2/models/legacy/infer',
        `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["${bytes.toString('base64')}"]}]}`,
      );
      const got = JSON.parse(inferences(seldon).at(-1)!.body.toString()) as { binData: string };
      expect(Buffer.from(got.binData, 'base64')).toEqual(bytes);
      expect(res.body.toString()).toBe(
        `{"model_name":"legacy","outputs":[{"name":"output-0","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["${bytes.toString('base64')}"]}]}`,
      );
      const before = calls();
      for (const text of ['aGk', 'a*k=', 'hi there']) {
        const refused = await post(
          gw.port,
          '/seldon/m/legacy/v2/models/legacy/infer',
          `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["${text}"]}]}`,
        );
        expect(refused.status, text).toBe(400);
        expect(refused.body.toString()).toMatch(/content_type base64 and its element is not base64/);
      }
      expect(calls()).toBe(before);
    });
    it('refused: 400, zero upstream calls', async () => {
      const before = calls();
      const res = await post(gw.port, '/seldon/m/legacy/v2/models/legacy/infer', '{"inputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[1,300]}]}');
      expect(res.status).toBe(400);
      expect(res.body.toString()).toMatch(/out of range for INT8/);
      expect(calls()).toBe(before);
    });
  });

  describe("the attacker's requests: 400, a Seldon-style error, zero upstream calls", () => {
    const deep = (n: number, leaf = '1'): string => '['.repeat(n) + leaf + ']'.repeat(n);
    const attacks: [string, string, string, RegExp][] = [
      ['a Seldon ndarray nested 200,000 deep (a JSON bomb for the stack)', '/seldon/m/iris/api/v1.0/predictions', `{"data":{"ndarray":${deep(200_000)}}}`, /deep|nest/],
      ['a Seldon tensor of a huge shape and one value', '/seldon/m/iris/api/v1.0/predictions', '{"data":{"tensor":{"shape":[1000000000,1000000000],"values":[1]}}}', /holds/],
      ['a Seldon tensor whose shape product overflows 64 bits to 0, no values', '/seldon/m/iris/api/v1.0/predictions', '{"data":{"tensor":{"shape":[4294967296,4294967296],"values":[]}}}', /shape/],
      ['a Seldon tensor of negative dimensions whose product is its count', '/seldon/m/iris/api/v1.0/predictions', '{"data":{"tensor":{"shape":[-1,-2],"values":[1,2]}}}', /shape/],
      ['a v2 input nested 200,000 deep', '/seldon/m/legacy/v2/models/legacy/infer', `{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":${deep(200_000)}}]}`, /deep|nest/],
      [
        'a v2 input of a huge shape and one element',
        '/seldon/m/legacy/v2/models/legacy/infer',
        '{"inputs":[{"name":"x","shape":[1000000000,1000000000],"datatype":"FP64","data":[1]}]}',
        /holds|shape/,
      ],
      [
        'a v2 input whose shape product overflows 64 bits to 0, no data',
        '/seldon/m/legacy/v2/models/legacy/infer',
        '{"inputs":[{"name":"x","shape":[4294967296,4294967296],"datatype":"FP64","data":[]}]}',
        /shape/,
      ],
      ['a v2 input of negative dimensions whose product is its count', '/seldon/m/legacy/v2/models/legacy/infer', '{"inputs":[{"name":"x","shape":[-1,-2],"datatype":"FP64","data":[1,2]}]}', /shape/],
      ['a v2 datatype not in the list', '/seldon/m/legacy/v2/models/legacy/infer', '{"inputs":[{"name":"x","shape":[1],"datatype":"FP128","data":[1]}]}', /datatype/],
      ['a v2 datatype in lower case', '/seldon/m/legacy/v2/models/legacy/infer', '{"inputs":[{"name":"x","shape":[1],"datatype":"fp64","data":[1]}]}', /datatype/],
      ['a v2 BOOL element that is a number', '/seldon/m/legacy/v2/models/legacy/infer', '{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]}', /BOOL|bool/],
      [
        'two v2 inputs for a one-input Seldon model',
        '/seldon/m/legacy/v2/models/legacy/infer',
        '{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]},{"name":"y","shape":[1],"datatype":"FP64","data":[1]}]}',
        /input/,
      ],
    ];
    it("objects nested 200,000 deep in meta.tags (the v2 request's parameters) are read without exhausting the stack and refused: 400, nothing sent", async () => {
      const before = calls();
      const res = await post(gw.port, '/seldon/m/iris/api/v1.0/predictions', `{"meta":{"tags":{"t":${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}}},"data":{"ndarray":[1]}}`);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body.toString())).toMatchObject({ status: { code: 400, info: 'meta is nested too deeply to be written back', status: 'FAILURE' } });
      expect(calls()).toBe(before);
    });
    it.each(attacks)('%s', async (_name, target, body, info) => {
      const before = calls();
      const res = await post(gw.port, target, body);
      expect(res.status).toBe(400);
      const err = JSON.parse(res.body.toString()) as { status: { code: number; info: string; reason: string; status: string } };
      expect(err.status).toMatchObject({ code: 400, reason: 'BAD_REQUEST', status: 'FAILURE' });
      expect(err.status.info).toMatch(info);
      expect(calls()).toBe(before);
    });
  });

  it('random arrays (seeded) survive a Seldon client → v2 model → Seldon client unchanged, their text byte for byte (ndarray and tensor, ranks 1–3)', async () => {
    const r = seededRandom(75);
    const int = (n: number): number => Math.floor(r() * n);
    const kinds = ['float', 'int', 'int64', 'bool', 'string'] as const;
    for (let c = 0; c < 30; c++) {
      const kind = kinds[c % kinds.length]!;
      const shape = Array.from({ length: 1 + int(3) }, () => 1 + int(4));
      const count = shape.reduce((a, b) => a * b, 1);
      const flat = Array.from({ length: count }, (): string => {
        if (kind === 'float') return String((int(2) ? -1 : 1) * (1 + int(999_999) + (1 + int(999)) / 1000));
        if (kind === 'int') return String(int(2001) - 1000);
        if (kind === 'int64') return (BigInt(int(2 ** 30)) * 2n ** 33n + BigInt(int(2 ** 30)) - 2n ** 62n).toString();
        if (kind === 'bool') return int(2) ? 'true' : 'false';
        return JSON.stringify(`s${int(1000)}é"\\`);
      });
      const nest = (at: number, dims: number[]): string => (dims.length === 0 ? flat[at]! : `[${Array.from({ length: dims[0]! }, (_, i) => nest(at * dims[0]! + i, dims.slice(1))).join(',')}]`);
      const nested = nest(0, shape);
      const tensor = (kind === 'float' || kind === 'int' || kind === 'int64') && int(2) === 1;
      const sent = tensor ? `{"data":{"tensor":{"shape":${JSON.stringify(shape)},"values":[${flat.join(',')}]}}}` : `{"data":{"ndarray":${nested}}}`;
      const res = await post(gw.port, '/seldon/m/iris/api/v1.0/predictions', sent);
      expect(res.status, sent).toBe(200);
      const text = res.body.toString();
      const data = tensor ? text.slice(text.indexOf('"values":') + 9, text.lastIndexOf('}},"meta"')) : text.slice(text.indexOf('"ndarray":') + 10, text.lastIndexOf('},"meta"'));
      expect(data, sent).toBe(tensor ? `[${flat.join(',')}]` : nested);
      const atModel = inferences(v2).at(-1)!.body.toString();
      expect(atModel.slice(atModel.indexOf('"data":') + 7, -3), sent).toBe(`[${flat.join(',')}]`);
    }
  });

  it('a retry resends the body translated once: both attempts byte for byte the same, one translation counted', async () => {
    const ok = 'seldon_gateway_protocol_translations_total{namespace="m",deployment="retried",from="seldon",to="v2",result="ok"}';
    const before = await metric(gw.adminUrl, ok);
    const res = await post(gw.port, '/seldon/m/retried/api/v1.0/predictions', '{"data":{"tensor":{"shape":[1,2],"values":[3,0.5]}}}', [['X-Case', 'retry']]);
    expect(res.status).toBe(200);
    const sent = v2.byCase('retry').map((r) => [r.target, r.body.toString()]);
    expect(res.body.toString()).toBe('{"data":{"names":["t:0","t:1"],"tensor":{"shape":[1,2],"values":[3.0,0.5]}},"meta":{}}');
    const atModel = '{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP64","data":[3,0.5]}]}';
    expect(sent).toEqual([
      ['/v2/models/clf/infer', atModel],
      ['/v2/models/clf/infer', atModel],
    ]);
    expect(await metric(gw.adminUrl, ok)).toBe(before + 1);
  });

  it('a client that goes while the model works on its translated request: the request ends there (499), as an untranslated one does', async () => {
    const series = 'seldon_gateway_requests_total{namespace="m",deployment="iris",predictor="main",protocol="rest",kind="primary",code="499"}';
    const before = await metric(gw.adminUrl, series);
    const x = await connectRaw(gw.port);
    try {
      await writeRequest(x, { method: 'POST', target: '/seldon/m/iris/api/v1.0/predictions', headers: [['Host', 'gw'], JSON_TYPE, ['X-Case', 'hold']], body: Buffer.from('{"data":{"ndarray":[1]}}') });
      await waitFor(() => v2.byCase('hold').length === 1);
      x.socket.destroy();
      await expect.poll(() => metric(gw.adminUrl, series)).toBe(before + 1);
    } finally {
      release();
    }
  });

  it('a fallback of the client’s protocol gets the client’s body as it came, not the translation: translated once, for the v2 model alone', async () => {
    const sent = '{"data":{"tensor":{"shape":[1],"values":[4]}},"meta":{"puid":"fb-1"}}';
    const v2Before = inferences(v2).length;
    const seldonBefore = inferences(seldon).length;
    const res = await post(gw.port, '/seldon/m/fb/api/v1.0/predictions', sent, [['X-Case', 'down']]);
    expect(
      inferences(v2)
        .slice(v2Before)
        .map((r) => [r.target, r.body.toString()]),
    ).toEqual([['/v2/models/model/infer', '{"id":"fb-1","inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[4]}]}']]);
    expect(
      inferences(seldon)
        .slice(seldonBefore)
        .map((r) => [r.target, r.body.toString()]),
    ).toEqual([['/api/v1.0/predictions', sent]]);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('{"data":{"tensor":{"shape":[1],"values":[4]}},"meta":{}}');
    expect(headerValue(res.headers, 'x-seldon-translated')).toBeUndefined();
  });

  it('a canary pair at 50/50: each model gets its own protocol, the client always the Seldon form', async () => {
    const v2Before = inferences(v2).length;
    const seldonBefore = inferences(seldon).length;
    const sent = '{"data":{"ndarray":[[1,2]]}}';
    const answers = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const res = await post(gw.port, '/seldon/m/pair/api/v1.0/predictions', sent);
      expect(res.status).toBe(200);
      answers.add(JSON.stringify(JSON.parse(res.body.toString()).data.ndarray));
    }
    const toV2 = inferences(v2).slice(v2Before);
    const toSeldon = inferences(seldon).slice(seldonBefore);
    expect(toV2.length).toBeGreaterThan(0);
    expect(toSeldon.length).toBeGreaterThan(0);
    expect(toV2.length + toSeldon.length).toBe(40);
    for (const r of toV2) expect([r.target, r.body.toString()]).toEqual(['/v2/models/model/infer', '{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"INT64","data":[1,2]}]}']);
    for (const r of toSeldon) expect([r.target, r.body.toString()]).toEqual(['/api/v1.0/predictions', sent]);
    expect([...answers]).toEqual(['[[1,2]]']);
  });

  it('a v2 shadow behind a Seldon primary receives v2', async () => {
    const before = inferences(shadow).length;
    const sent = '{"data":{"ndarray":[[7,8]]}}';
    const res = await post(gw.port, '/seldon/m/shadowed/api/v1.0/predictions', sent);
    expect(res.status).toBe(200);
    expect(inferences(seldon).at(-1)!.body.toString()).toBe(sent);
    await waitFor(() => inferences(shadow).length > before);
    expect(inferences(shadow).at(-1)!.target).toBe('/v2/models/model/infer');
    expect(inferences(shadow).at(-1)!.body.toString()).toBe('{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"INT64","data":[7,8]}]}');
  });

  it('no annotation: byte for byte as it came; a bad annotation degrades its deployment alone, untranslated', async () => {
    const sent = '{"data":{"ndarray":[[1,2]]}}';
    for (const name of ['plain', 'bad']) {
      const res = await post(gw.port, `/seldon/m/${name}/api/v1.0/predictions`, sent);
      const got = inferences(v2).at(-1)!;
      expect(got.target).toBe('/api/v1.0/predictions');
      expect(got.body.toString()).toBe(sent);
      expect(headerValue(res.headers, 'x-seldon-translated')).toBeUndefined();
      expect(res.status).toBe(404);
    }
    const routes = (await (await fetch(`${gw.adminUrl}/routes`)).json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    const bad = routes.deployments.find((d) => d.name === 'bad')!;
    expect(bad.state).toBe('degraded');
    expect(bad.reasons.join()).toMatch(/seldon.io\/gateway-protocol: speaks must be seldon or v2.*served untranslated/);
    expect(routes.deployments.find((d) => d.name === 'iris')!.state).toBe('accepted');
  });

  it('the metric counts each result', async () => {
    const series = (result: string, from = 'seldon', to = 'v2', dep = 'iris') =>
      `seldon_gateway_protocol_translations_total{namespace="m",deployment="${dep}",from="${from}",to="${to}",result="${result}"}`;
    expect(await metric(gw.adminUrl, series('ok'))).toBeGreaterThan(0);
    expect(await metric(gw.adminUrl, series('refused'))).toBeGreaterThan(0);
    expect(await metric(gw.adminUrl, series('model-error'))).toBe(1);
    // The v2 client's answered inferences: four, and the fourteen goldens.
    expect(await metric(gw.adminUrl, series('ok', 'v2', 'seldon', 'legacy'))).toBe(18);
  });
});

describe('REST protocol translation under --max-body', () => {
  let v2: RecordingUpstream;
  let seldon: RecordingUpstream;
  let gw: TestGateway;
  const LIMIT = 4096;
  beforeAll(async () => {
    v2 = await startRecordingUpstream({ name: 'v2', responder: v2Model });
    seldon = await startRecordingUpstream({ name: 'seldon', responder: seldonModel });
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'iris' } }] }, { [PROTOCOL]: '{}' }),
        'legacy.yaml': sdep('legacy', 'm', { predictors: [{ name: 'main', graph: { name: 'legacy' } }] }, { [PROTOCOL]: 'accept: [v2]' }),
      },
      resolve: { 'iris-main.m:8000': v2.port, 'legacy-main.m:8000': seldon.port },
      args: ['--max-body', String(LIMIT)],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await v2?.close();
    await seldon?.close();
  });

  it('a body within --max-body that translation grows beyond it is refused with 413, zero upstream calls; one that stays within goes', async () => {
    // FP32 whole numbers: `1,` in v2 is `1.0,` in a SeldonMessage (floats stay floats), nearly twice the bytes.
    const ones = (n: number): string => `{"inputs":[{"name":"x","shape":[${n}],"datatype":"FP32","data":[${Array(n).fill('1').join(',')}]}]}`;
    const big = ones(1500);
    expect(big.length).toBeLessThan(LIMIT);
    const before = inferences(seldon).length;
    const res = await post(gw.port, '/seldon/m/legacy/v2/models/legacy/infer', big);
    expect(res.status).toBe(413);
    const err = JSON.parse(res.body.toString()) as { status: { code: number; info: string; reason: string; status: string } };
    expect(err.status).toMatchObject({ code: 413, reason: 'PAYLOAD_TOO_LARGE', status: 'FAILURE' });
    expect(err.status.info).toMatch(/translated request body is \d+ bytes, larger than 4096/);
    expect(inferences(seldon).length).toBe(before);
    const small = await post(gw.port, '/seldon/m/legacy/v2/models/legacy/infer', ones(500));
    expect(small.status).toBe(200);
    expect(inferences(seldon).length).toBe(before + 1);
    expect(inferences(seldon).at(-1)!.body.length).toBeLessThanOrEqual(LIMIT);
    const refused = 'seldon_gateway_protocol_translations_total{namespace="m",deployment="legacy",from="v2",to="seldon",result="refused"}';
    expect(await metric(gw.adminUrl, refused)).toBe(1);
  });

  it('a Seldon body over --max-body is refused before translation: 413, zero upstream calls', async () => {
    const before = inferences(v2).length;
    const res = await post(gw.port, '/seldon/m/iris/api/v1.0/predictions', `{"data":{"ndarray":[${Array(LIMIT).fill('1').join(',')}]}}`);
    expect(res.status).toBe(413);
    expect(inferences(v2).length).toBe(before);
  });
});
