/**
 * Payload logging's events, as Seldon's request logger and Alibi Detect take them: a real gateway
 * (no Redis: the in-memory delivery), real REST and gRPC models, the real @grpc/grpc-js client,
 * and a receiver that reads every POST with the CloudEvents SDK (`cloudevents` on npm).
 *
 * - REST and gRPC: a request, a response and a decision event per prediction, in binary mode with
 *   exactly the attributes Seldon Core 1.17's executor sets; the request event is the body the
 *   client sent, the response the body it received (gRPC: the messages' protobuf bytes);
 * - `Seldon-Puid` is the `requestid` when sent, else the request id the model got;
 *   `Seldon-Skip-Logging: true` logs nothing; a feedback is a feedback event;
 * - a body over `maxBodyBytes` is logged cut and marked;
 * - the decision record: the pick and its probability, the attempt and its endpoint, the shadow sent;
 * - a tenant naming a URL, or a sink the operator did not configure, is refused: the deployment
 *   degraded with the reason in /routes, and nothing sent anywhere.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudEvent } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSeldonMessage, encodeSeldonMessage, grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients, type SeldonMessage } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { decisionOf, startEventReceiver, type EventReceiver, type Received } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { md, predict as grpcPredict } from '../../helpers/grpc.js';
import { getJson, getText, metricSum, post, predict, scrape } from '../../helpers/observability.js';

const LOG = 'seldon.io/gateway-log';
const REQUEST = 'io.seldon.serving.inference.request';
const RESPONSE = 'io.seldon.serving.inference.response';
const FEEDBACK = 'io.seldon.serving.feedback';
const DECISION = 'io.seldon.gateway.decision';

const ofRequest = (r: EventReceiver, id: string): Received[] => r.unique().filter((e) => e.event['requestid'] === id);
const one = (events: Received[], type: string): Received => {
  const found = events.filter((e) => e.event.type === type);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};

/** Seldon's executor's attributes, and nothing else of ours but the payload (ce-time and ce-id are checked apart). */
function seldonAttributes(e: CloudEvent<unknown>): Record<string, unknown> {
  return {
    specversion: e.specversion,
    type: e.type,
    requestid: e['requestid'],
    modelid: e['modelid'],
    inferenceservicename: e['inferenceservicename'],
    namespace: e['namespace'],
    endpoint: e['endpoint'],
    protocol: e['protocol'],
    datacontenttype: e.datacontenttype,
  };
}

describe('payload logging: Seldon CloudEvents from the edge', () => {
  let receiver: EventReceiver;
  let evil: EventReceiver;
  let model: HttpBackend;
  let copy: HttpBackend;
  let grpcModel: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-log-'));

  beforeAll(async () => {
    receiver = await startEventReceiver();
    evil = await startEventReceiver();
    model = await startHttpBackend({ name: 'iris-main' });
    copy = await startHttpBackend({ name: 'iris-copy' });
    grpcModel = await startGrpcBackend({ name: 'g-main' });
    writeFileSync(join(dir, 'sinks.yaml'), `- name: seldon\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 20ms\n`);
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep(
          'iris',
          'ml',
          {
            protocol: 'seldon',
            predictors: [
              { name: 'main', graph: { name: 'classifier' } },
              { name: 'copy', shadow: true, graph: { name: 'classifier' } },
            ],
          },
          { [LOG]: 'sinks: [seldon]' },
        ),
        'g.yaml': sdep('g', 'ml', { predictors: [{ name: 'main', graph: { name: 'grpc-model' } }] }, { [LOG]: '{"sinks": ["seldon"]}' }),
        'small.yaml': sdep('small', 'ml', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]\nmaxBodyBytes: 10' }),
        'url.yaml': sdep('url', 'ml', { predictors: [{ name: 'main' }] }, { [LOG]: `sinks: [seldon]\nurl: ${evil.url}` }),
        'unknown.yaml': sdep('unknown', 'ml', { predictors: [{ name: 'main' }] }, { [LOG]: `sinks: ["${evil.url}"]` }),
        'quiet.yaml': sdep('quiet', 'ml', { predictors: [{ name: 'main' }] }),
      },
      resolve: {
        'iris-main.ml:8000': model.port,
        'iris-copy.ml:8000': copy.port,
        'g-main.ml:5001': grpcModel.port,
        'small-main.ml:8000': model.port,
        'url-main.ml:8000': model.port,
        'unknown-main.ml:8000': model.port,
        'quiet-main.ml:8000': model.port,
      },
      args: ['--log-sinks', join(dir, 'sinks.yaml')],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });

  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    for (const b of [model, copy]) await b?.close();
    await grpcModel?.close();
    await receiver?.close();
    await evil?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('REST: request, response and decision events with exactly the attributes of Seldon’s executor; the bodies the client sent and received', async () => {
    const puid = `puid-${randomUUID()}`;
    const sent = '{"data":{"names":["a","b"],"ndarray":[[1.25,2]]}}';
    const r = await post(`${gw.url}/seldon/ml/iris${predict}`, { 'seldon-puid': puid }, sent);
    expect(r.status).toBe(200);
    await receiver.until(() => ofRequest(receiver, puid).length >= 3);
    const events = ofRequest(receiver, puid);
    const req = one(events, REQUEST);
    const res = one(events, RESPONSE);
    one(events, DECISION);
    const attrs = {
      specversion: '1.0',
      requestid: puid,
      modelid: 'classifier',
      inferenceservicename: 'iris',
      namespace: 'ml',
      endpoint: 'main',
      protocol: 'seldon',
      datacontenttype: 'application/json',
    };
    expect(seldonAttributes(req.event)).toEqual({ ...attrs, type: REQUEST });
    expect(seldonAttributes(res.event)).toEqual({ ...attrs, type: RESPONSE });
    expect(req.body.toString()).toBe(sent);
    expect(res.body.toString()).toBe(r.text);
    // Binary mode: the attributes are ce- headers, the payload the body with its own Content-Type.
    expect(req.headers['ce-specversion']).toBe('1.0');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.event.source).toMatch(/^http:\/\/.+\/seldon-gateway$/);
    expect(Math.abs(Date.parse(req.event.time!) - Date.now())).toBeLessThan(60_000);
    // A fresh ce-id per event, as the executor makes one per log request.
    expect(new Set(events.map((e) => e.event.id)).size).toBe(events.length);
    expect(receiver.malformed).toEqual([]);
  });

  it('REST without Seldon-Puid: the requestid is the request id the model got', async () => {
    const before = model.requests.length;
    expect((await post(`${gw.url}/seldon/ml/iris${predict}`)).status).toBe(200);
    const rid = String(model.requests.slice(before).find((q) => q.url.includes('predictions'))!.headers['x-request-id']);
    await receiver.until(() => ofRequest(receiver, rid).length >= 3);
    expect(
      ofRequest(receiver, rid)
        .map((e) => e.event.type)
        .sort(),
    ).toEqual([DECISION, REQUEST, RESPONSE]);
  });

  it('gRPC: the messages as protobuf bytes (application/protobuf), the requestid the model got', async () => {
    const sent: SeldonMessage = { data: { names: ['x'], ndarray: { values: [{ numberValue: 7 }] } } } as unknown as SeldonMessage;
    const o = await grpcPredict(clients, sent, md({ seldon: 'g', namespace: 'ml' }));
    expect(o.ok).toBe(true);
    const call = grpcModel.calls[grpcModel.calls.length - 1]!;
    const rid = String(call.metadata['x-request-id']);
    await receiver.until(() => ofRequest(receiver, rid).length >= 3);
    const events = ofRequest(receiver, rid);
    const req = one(events, REQUEST);
    const res = one(events, RESPONSE);
    const attrs = {
      specversion: '1.0',
      requestid: rid,
      modelid: 'grpc-model',
      inferenceservicename: 'g',
      namespace: 'ml',
      endpoint: 'main',
      protocol: 'seldon',
      datacontenttype: 'application/protobuf',
    };
    expect(seldonAttributes(req.event)).toEqual({ ...attrs, type: REQUEST });
    expect(seldonAttributes(res.event)).toEqual({ ...attrs, type: RESPONSE });
    // The request event is the message the client sent, byte for byte; the response the one it got.
    expect(req.body.equals(encodeSeldonMessage(sent))).toBe(true);
    expect(decodeSeldonMessage(res.body)).toEqual(o.ok ? o.result.response : undefined);
  });

  it('Seldon-Skip-Logging: true logs nothing of that request; a feedback is a feedback event', async () => {
    const skipped = `skip-${randomUUID()}`;
    const marker = `after-${randomUUID()}`;
    for (const v of ['true', 'ON', '1']) expect((await post(`${gw.url}/seldon/ml/iris${predict}`, { 'seldon-puid': skipped, 'seldon-skip-logging': v })).status).toBe(200);
    expect((await post(`${gw.url}/seldon/ml/iris/api/v1.0/feedback`, { 'seldon-puid': marker }, '{"reward":1}')).status).toBe(200);
    await receiver.until(() => ofRequest(receiver, marker).length >= 2);
    // The marker's events came after the skipped requests' would have (one process, in order).
    expect(ofRequest(receiver, skipped)).toEqual([]);
    const fb = ofRequest(receiver, marker);
    expect(fb.map((e) => e.event.type).sort()).toEqual([DECISION, FEEDBACK]);
    expect(one(fb, FEEDBACK).body.toString()).toBe('{"reward":1}');
  });

  it('a body over maxBodyBytes is logged cut to it, and marked so (truncated, bodylength)', async () => {
    const puid = `small-${randomUUID()}`;
    const sent = '{"data":{"ndarray":[[1,2,3,4,5,6,7,8]]}}';
    expect((await post(`${gw.url}/seldon/ml/small${predict}`, { 'seldon-puid': puid }, sent)).status).toBe(200);
    await receiver.until(() => ofRequest(receiver, puid).length >= 3);
    const req = one(ofRequest(receiver, puid), REQUEST);
    expect(req.body.toString()).toBe(sent.slice(0, 10));
    expect(req.event['truncated']).toBe('true');
    expect(req.event['bodylength']).toBe(String(sent.length));
  });

  it('the decision record: the pick with its probability and weights, each attempt with its endpoint and outcome, the shadow sent, what the client got', async () => {
    const puid = `decision-${randomUUID()}`;
    expect((await post(`${gw.url}/seldon/ml/iris${predict}`, { 'seldon-puid': puid })).status).toBe(200);
    await receiver.until(() => ofRequest(receiver, puid).length >= 3);
    const d = decisionOf(one(ofRequest(receiver, puid), DECISION));
    expect(d).toMatchObject({
      deployment: 'ml/iris',
      protocol: 'rest',
      method: 'POST',
      path: `/seldon/ml/iris${predict}`,
      predictor: 'main',
      probability: 1,
      why: { weights: { main: 100 }, rule: null, sticky: null, rollout: null, bandit: null, feedback: null },
      shadows: [{ predictor: 'copy', sent: true }],
      attempts: [{ endpoint: `127.0.0.1:${model.port}`, status: 200 }],
      refused: null,
      status: 200,
      grpcStatus: null,
    });
    expect(d.latencyMs as number).toBeGreaterThan(0);
    expect(d.upstreamMs as number).toBeGreaterThan(0);
  });

  it('a tenant naming a URL, or a sink the operator did not configure, is refused: degraded with the reason, nothing sent anywhere', async () => {
    const routes = await getJson<{ deployments: { name: string; state: string; reasons: string[] }[] }>(`${gw.adminUrl}/routes`);
    const of = (name: string): { state: string; reasons: string[] } => routes.deployments.find((d) => d.name === name)!;
    expect(of('url').state).toBe('degraded');
    expect(of('url').reasons.join('\n')).toContain("url: where events go is the operator's to say (--log-sinks)");
    expect(of('unknown').reasons.join('\n')).toContain(`"${evil.url}" is not a sink of this gateway (configured: seldon)`);
    const marker = `marker-${randomUUID()}`;
    for (const name of ['url', 'unknown', 'quiet']) expect((await post(`${gw.url}/seldon/ml/${name}${predict}`, { 'seldon-puid': marker })).status).toBe(200);
    expect((await post(`${gw.url}/seldon/ml/iris${predict}`, { 'seldon-puid': marker })).status).toBe(200);
    await receiver.until(() => ofRequest(receiver, marker).length >= 3);
    expect(new Set(ofRequest(receiver, marker).map((e) => e.event['inferenceservicename']))).toEqual(new Set(['iris']));
    expect(evil.posts).toBe(0);
    const samples = await scrape(gw.adminUrl);
    expect(metricSum(samples, 'seldon_gateway_log_events_total', { sink: 'seldon', result: 'delivered' })).toBeGreaterThan(0);
    expect(metricSum(samples, 'seldon_gateway_log_drops_total')).toBe(0);
  });

  it('the admin page shows each sink: its target, its state, what it delivered and dropped', async () => {
    const page = await getText(`${gw.adminUrl}/`);
    const line = /<span class="log-sink" data-sink="seldon">(.*?)<\/span>/.exec(page)?.[1] ?? '';
    expect(line).toContain(`log sink <b>seldon</b> (cloudevents <code>${receiver.url}</code>, via memory): delivering;`);
    expect(line).toMatch(/ [1-9]\d* delivered, 0 dropped/);
  });
});
