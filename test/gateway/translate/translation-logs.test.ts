/**
 * A translated request in the access log and the payload log (docs/protocol-translation.md), over
 * real sockets: a real gateway, a v2 model stand-in, raw HTTP/1.1 clients, the access lines as the
 * log writes them (JSON and text) and the CloudEvents a real receiver got.
 *
 * - the line of a translated request says `translated: seldon->v2`, a refused translation's too;
 *   an untranslated request's line has no such field (JSON and text: it ends as it always did);
 * - the payload log's events carry the `translated` attribute, and their bodies are the client's
 *   message and the answer as the client got it, byte for byte.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type HeaderLine, type RawResponse, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { LogCapture } from '../../helpers/observability.js';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { startV2DoublingModel, type V2DoublingModel } from '../../fixtures/v2-doubling-model.js';

/** What a model stand-in was asked but its metadata (`GET /v2/models/<m>`, fetched beside translated traffic: docs/protocol-translation.md#the-models-metadata). */
const inferences = (u: { readonly requests: readonly RecordedRequest[] }): RecordedRequest[] => u.requests.filter((r) => r.method !== 'GET');

const JSON_TYPE: HeaderLine = ['Content-Type', 'application/json'];
const PREDICT = (name: string): string => `/seldon/m/${name}/api/v1.0/predictions`;
const V2_ANSWER = '{"model_name":"iris","outputs":[{"name":"output-0","shape":[1,2],"datatype":"INT64","data":[3,4]}]}';

async function ask(port: number, target: string, id: string, body: string): Promise<RawResponse> {
  const { res, x } = await rawRequest(port, { target, headers: [['Host', 'gw'], JSON_TYPE, ['X-Request-Id', id]], body: Buffer.from(body) });
  x.socket.destroy();
  expect(res, 'an answer').not.toBeNull();
  return res!;
}

describe('a translated request in the access log and the payload log', () => {
  let model: RecordingUpstream;
  let grpcModel: V2DoublingModel;
  let receiver: EventReceiver;
  let json: TestGateway;
  let text: TestGateway;
  const jsonLogs = new LogCapture();
  const textLogs = new LogCapture();
  const dir = mkdtempSync(join(tmpdir(), 'sgw-translog-'));

  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'v2', responder: (req) => ({ headers: [JSON_TYPE], body: req.target.startsWith('/v2/') ? V2_ANSWER : '{"data":{"ndarray":[[1]]},"meta":{}}' }) });
    receiver = await startEventReceiver();
    grpcModel = await startV2DoublingModel('classifier');
    writeFileSync(join(dir, 'sinks.yaml'), `- name: seldon\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 20ms\n`);
    const manifests = {
      'iris.yaml': sdep(
        'iris',
        'm',
        { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'classifier' } }] },
        { 'seldon.io/gateway-protocol': '{"modelName": "iris"}', 'seldon.io/gateway-log': 'sinks: [seldon]' },
      ),
      'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }),
      'giris.yaml': sdep(
        'giris',
        'm',
        { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'classifier' } }] },
        { 'seldon.io/gateway-protocol': '{}', 'seldon.io/gateway-log': 'sinks: [seldon]' },
      ),
    };
    const resolve = { 'iris-main.m:8000': model.port, 'plain-main.m:8000': model.port, 'giris-main.m:5001': grpcModel.grpcPort };
    json = await startTestGateway({ manifests, resolve, accessSink: jsonLogs, args: ['--log-sinks', join(dir, 'sinks.yaml')] });
    text = await startTestGateway({ manifests, resolve, accessSink: textLogs, args: ['--access-log-format', 'text', '--log-sinks', join(dir, 'sinks.yaml')] });
  });
  afterAll(async () => {
    await json?.stop();
    await text?.stop();
    await model?.close();
    await grpcModel?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const lineOf = async (id: string): Promise<Record<string, unknown>> => {
    await waitFor(() => jsonLogs.text.includes(id));
    return jsonLogs.lines().find((l) => l.request_id === id)!;
  };
  const textLineOf = async (id: string): Promise<string> => {
    await waitFor(() => textLogs.text.includes(id));
    return textLogs.text.split('\n').find((l) => l.includes(`"${id}"`))!;
  };

  it('JSON: a translated request says seldon->v2, a refused translation too; an untranslated one has no such field', async () => {
    const ok = await ask(json.port, PREDICT('iris'), 'tl-ok', '{"data":{"ndarray":[[1,2]]}}');
    expect(ok.status).toBe(200);
    expect(headerValue(ok.headers, 'x-seldon-translated')).toBe('seldon->v2');
    expect(await lineOf('tl-ok')).toMatchObject({ response_code: 200, deployment: 'iris', translated: 'seldon->v2' });

    const before = inferences(model).length;
    const refused = await ask(json.port, PREDICT('iris'), 'tl-ragged', '{"data":{"ndarray":[[1,2],[3]]}}');
    expect(refused.status).toBe(400);
    expect(inferences(model).length).toBe(before);
    expect(await lineOf('tl-ragged')).toMatchObject({ response_code: 400, translated: 'seldon->v2' });

    expect((await ask(json.port, PREDICT('plain'), 'tl-plain', '{"data":{"ndarray":[[1]]}}')).status).toBe(200);
    expect(await lineOf('tl-plain')).not.toHaveProperty('translated');
  });

  it('text: the six compression fields (dashes) then "seldon->v2"; an untranslated line ends at FALLBACK as before', async () => {
    expect((await ask(text.port, PREDICT('iris'), 'tt-ok', '{"data":{"ndarray":[[1,2]]}}')).status).toBe(200);
    expect(await textLineOf('tt-ok')).toMatch(/ "-" "-" - - "-" - - "seldon->v2"$/);
    expect((await ask(text.port, PREDICT('plain'), 'tt-plain', '{"data":{"ndarray":[[1]]}}')).status).toBe(200);
    expect(await textLineOf('tt-plain')).toMatch(/ \d+ "-"$/);
  });

  it("the payload log's events say translated, and carry the client's message and the answer the client got, byte for byte", async () => {
    const sent = '{"data":{"names":["a","b"],"ndarray":[[1,2]]},"meta":{"puid":"tl-puid"}}';
    const res = await ask(json.port, PREDICT('iris'), 'tl-log', sent);
    expect(res.status).toBe(200);
    const modelGot = inferences(model).at(-1)!;
    expect(modelGot.target).toBe('/v2/models/iris/infer');
    expect(JSON.parse(modelGot.body.toString())).toMatchObject({ id: 'tl-puid', inputs: [{ shape: [1, 2], data: [1, 2] }] });
    await waitFor(() => receiver.unique().filter((e) => e.event['requestid'] === 'tl-log').length >= 2);
    const events = receiver.unique().filter((e) => e.event['requestid'] === 'tl-log');
    const request = events.find((e) => e.event.type === 'io.seldon.serving.inference.request')!;
    const response = events.find((e) => e.event.type === 'io.seldon.serving.inference.response')!;
    expect(request.event['translated']).toBe('seldon->v2');
    expect(response.event['translated']).toBe('seldon->v2');
    expect(request.body.toString()).toBe(sent);
    expect(response.body.equals(res.body)).toBe(true);
  });

  it("gRPC: the payload log's events say translated, and carry the client's SeldonMessage and the answer the client got, byte for byte (protobuf, no length prefix)", async () => {
    const defs = protoLoader.loadSync(['seldon.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, defaults: false, oneofs: false });
    const predict = (defs['seldon.protos.Seldon'] as unknown as Record<string, protoLoader.MethodDefinition<Record<string, unknown>, Record<string, unknown>>>)['Predict']!;
    const sent = predict.requestSerialize({ meta: { puid: 'g-puid' }, data: { tensor: { shape: [1, 2], values: [1.5, -2] } } });
    const client = new grpc.Client(`127.0.0.1:${json.port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set('seldon', 'giris');
      md.set('namespace', 'm');
      md.set('x-request-id', 'tl-grpc');
      const answer = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          '/seldon.protos.Seldon/Predict',
          (b: Buffer) => b,
          (b: Buffer) => b,
          sent,
          md,
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
      expect(predict.responseDeserialize(answer)).toMatchObject({ data: { tensor: { shape: [1, 2], values: [3, -4] } } });
      expect(grpcModel.inferences.at(-1)!.inputs).toEqual([{ name: 'input-0', datatype: 'FP64', shape: [1, 2], data: [1.5, -2] }]);
      await waitFor(() => receiver.unique().filter((e) => e.event['requestid'] === 'tl-grpc').length >= 2);
      const events = receiver.unique().filter((e) => e.event['requestid'] === 'tl-grpc');
      const request = events.find((e) => e.event.type === 'io.seldon.serving.inference.request')!;
      const response = events.find((e) => e.event.type === 'io.seldon.serving.inference.response')!;
      expect(request.event['translated']).toBe('seldon->v2');
      expect(response.event['translated']).toBe('seldon->v2');
      expect(request.body.equals(sent)).toBe(true);
      expect(response.body.equals(answer)).toBe(true);
    } finally {
      client.close();
    }
  });
});
