/**
 * Payload logging and shadows on a deployment that compresses its answers and decodes its
 * requests (`seldon.io/gateway-compression`): everything that reads a body reads it plain. A
 * client sends a gzip body and asks for a gzip (or br) answer; the request and response events carry
 * the JSON the model received and sent, and say the codings the client sent and got
 * (`requestencoding`, `responseencoding`); the shadow receives what the primary received, and the
 * client alone gets the compressed bytes. A request and answer that went plain have neither
 * attribute. A real gateway, recording models, a CloudEvents receiver.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';

const REQUEST = 'io.seldon.serving.inference.request';
const RESPONSE = 'io.seldon.serving.inference.response';

/** Per event type, the `requestencoding` and `responseencoding` attributes as the receiver read them (binary mode: `ce-` headers). */
let encodings: (puid: string) => Record<'request' | 'response', [unknown, unknown]>;

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
          { 'seldon.io/gateway-log': 'sinks: [seldon]', 'seldon.io/gateway-compression': '{algorithms: [gzip, br], decodeRequests: true}' },
        ),
      },
      resolve: { 'iris-main.ml:8000': model.port, 'iris-copy.ml:8000': copy.port },
      args: ['--log-sinks', join(dir, 'sinks.yaml')],
    });
  });
  encodings = (puid) => {
    const one = (type: string): [unknown, unknown] => {
      const e = receiver.unique(type).find((r) => r.event['requestid'] === puid)!;
      expect(e.headers['ce-requestencoding']).toBe(e.event['requestencoding']);
      return [e.event['requestencoding'], e.event['responseencoding']];
    };
    return { request: one(REQUEST), response: one(RESPONSE) };
  };
  const until = (puid: string): Promise<void> => receiver.until((events) => events.filter((e) => e.event['requestid'] === puid && (e.event.type === REQUEST || e.event.type === RESPONSE)).length >= 2);

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
    expect(encodings(puid)).toEqual({ request: ['gzip', undefined], response: [undefined, 'gzip'] });
    expect(model.requests.at(-1)!.body.toString()).toBe(sent);
    await waitFor(() => copy.requests.length > 0);
    const mirrored = copy.requests.at(-1)!;
    expect(mirrored.body.toString()).toBe(sent);
    expect(headerValue(mirrored.headers, 'content-encoding')).toBeUndefined();
  });

  it('a gzip request and a br answer: the sink gets the plain JSON both ways and the two codings', async () => {
    const puid = `puid-${randomUUID()}`;
    const sent = JSON.stringify({ data: { ndarray: [Array.from({ length: 400 }, (_, i) => i * 3)] } });
    const { res, x } = await rawRequest(gw.port, {
      target: '/seldon/ml/iris/api/v1.0/predictions',
      headers: [
        ['Host', 'gw'],
        ['Content-Type', 'application/json'],
        ['Content-Encoding', 'gzip'],
        ['Accept-Encoding', 'br'],
        ['Seldon-Puid', puid],
      ],
      body: gzipSync(sent),
    });
    x.socket.destroy();
    expect(headerValue(res!.headers, 'content-encoding')).toBe('br');
    expect(brotliDecompressSync(res!.body).toString()).toBe(answer);
    await until(puid);
    const of = (type: string): Buffer => receiver.unique(type).find((e) => e.event['requestid'] === puid)!.body;
    expect(of(REQUEST).toString()).toBe(sent);
    expect(of(RESPONSE).toString()).toBe(answer);
    expect(encodings(puid)).toEqual({ request: ['gzip', undefined], response: [undefined, 'br'] });
  });

  it('a plain request and a plain answer: no coding on either event', async () => {
    const puid = `puid-${randomUUID()}`;
    const sent = JSON.stringify({ data: { ndarray: [[1, 2, 3]] } });
    const { res, x } = await rawRequest(gw.port, {
      target: '/seldon/ml/iris/api/v1.0/predictions',
      headers: [
        ['Host', 'gw'],
        ['Content-Type', 'application/json'],
        ['Seldon-Puid', puid],
      ],
      body: Buffer.from(sent),
    });
    x.socket.destroy();
    expect(res!.body.toString()).toBe(answer);
    await until(puid);
    expect(encodings(puid)).toEqual({ request: [undefined, undefined], response: [undefined, undefined] });
  });
});
