/**
 * Payload logging and shadows on a deployment that compresses its answers and decodes its
 * requests (`seldon.io/gateway-compression`): everything that reads a body reads it plain. A
 * client sends a gzip body and asks for a gzip answer; the request and response events carry the
 * JSON the model received and sent, the shadow receives what the primary received, and the client
 * alone gets the compressed bytes. A real gateway, recording models, a CloudEvents receiver.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';

const REQUEST = 'io.seldon.serving.inference.request';
const RESPONSE = 'io.seldon.serving.inference.response';

describe('payload logging and shadows see plain bodies when the client compresses', () => {
  let receiver: EventReceiver;
  let model: RecordingUpstream;
  let copy: RecordingUpstream;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-zlog-'));
  const answer = JSON.stringify({ data: { ndarray: [Array.from({ length: 500 }, (_, i) => i / 7)] }, meta: {} });

  beforeAll(async () => {
    receiver = await startEventReceiver();
    const responder = (): { headers: [string, string][]; body: string } => ({ headers: [['Content-Type', 'application/json']], body: answer });
    model = await startRecordingUpstream({ name: 'main', responder });
    copy = await startRecordingUpstream({ name: 'copy', responder });
    writeFileSync(join(dir, 'sinks.yaml'), `- name: seldon\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 20ms\n`);
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep(
          'iris',
          'ml',
          {
            predictors: [
              { name: 'main', graph: { name: 'classifier' } },
              { name: 'copy', shadow: true, graph: { name: 'classifier' } },
            ],
          },
          { 'seldon.io/gateway-log': 'sinks: [seldon]', 'seldon.io/gateway-compression': '{algorithms: [gzip], decodeRequests: true}' },
        ),
      },
      resolve: { 'iris-main.ml:8000': model.port, 'iris-copy.ml:8000': copy.port },
      args: ['--log-sinks', join(dir, 'sinks.yaml')],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await copy?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the events carry JSON, the shadow gets the plain body, the client the compressed answer', async () => {
    const puid = `puid-${randomUUID()}`;
    const sent = JSON.stringify({ data: { ndarray: [Array.from({ length: 300 }, (_, i) => i)] } });
    const { res, x } = await rawRequest(gw.port, {
      target: '/seldon/ml/iris/api/v1.0/predictions',
      headers: [
        ['Host', 'gw'],
        ['Content-Type', 'application/json'],
        ['Content-Encoding', 'gzip'],
        ['Accept-Encoding', 'gzip'],
        ['Seldon-Puid', puid],
      ],
      body: gzipSync(sent),
    });
    x.socket.destroy();
    expect(res?.status).toBe(200);
    expect(headerValue(res!.headers, 'content-encoding')).toBe('gzip');
    expect(gunzipSync(res!.body).toString()).toBe(answer);

    await receiver.until((events) => events.filter((e) => e.event['requestid'] === puid && (e.event.type === REQUEST || e.event.type === RESPONSE)).length >= 2);
    const of = (type: string): Buffer => receiver.unique(type).find((e) => e.event['requestid'] === puid)!.body;
    expect(of(REQUEST).toString()).toBe(sent);
    expect(of(RESPONSE).toString()).toBe(answer);
    expect(model.requests.at(-1)!.body.toString()).toBe(sent);
    await waitFor(() => copy.requests.length > 0);
    const mirrored = copy.requests.at(-1)!;
    expect(mirrored.body.toString()).toBe(sent);
    expect(headerValue(mirrored.headers, 'content-encoding')).toBeUndefined();
  });
});
