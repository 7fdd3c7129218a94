/**
 * `error_response_overrides` on a Mapping (Envoy's local reply mapper), over real sockets: an answer
 * with a listed status, the model's or the gateway's own, reaches the client with the override's
 * body (`%RESPONSE_CODE%` its status), content type and length, its status kept; other statuses and
 * a Mapping with `bypass_error_response_overrides` pass as they are.
 */
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type HeaderLine, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';

const NS = 'models';
const P = `/seldon/${NS}/ovr`;

const OVERRIDES = [
  'error_response_overrides:',
  '- on_status_code: 503',
  '  body:',
  '    text_format: "busy (%RESPONSE_CODE%)"',
  '- on_status_code: 404',
  '  body:',
  '    json_format: {error: "not here", code: "%RESPONSE_CODE%"}',
  '- on_status_code: 500',
  '  body:',
  '    text_format: "<h1>oops</h1>"',
  '    content_type: text/html',
].join('\n');

const CONFIG = [
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: over\nprefix: ${P}/over/\nservice: ovr-main.${NS}:8000\n${OVERRIDES}\nadd_response_headers:\n  x-route: over`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: bypass\nprefix: ${P}/bypass/\nservice: ovr-main.${NS}:8000\nbypass_error_response_overrides: true\n${OVERRIDES}`,
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: down\nprefix: ${P}/down/\nservice: down.${NS}:8000\n${OVERRIDES}`,
].join('\n---\n');

const LIMITED = `apiVersion: getambassador.io/v2\nkind: Mapping\nname: limited\nprefix: /seldon/${NS}/limited/\nservice: limited-main.${NS}:8000\nadd_response_headers:\n  x-route: limited\nerror_response_overrides:\n- on_status_code: 429\n  body:\n    text_format: "slow down"`;

/** What the model answers for `x-status`: its own body, length-framed or chunked (`x-chunked`), encoded as it says. */
const MODEL_BODY = '{"model":"own body"}';

describe.each(['gateway', 'node'] as const)('Mapping error overrides (--http1-server %s)', (server) => {
  let model: RecordingUpstream;
  let gw: TestGateway;

  async function send(target: string, headers: HeaderLine[] = [], method = 'GET'): Promise<RawResponse> {
    const { res, x } = await rawRequest(gw.port, { method, target, headers: [['Host', 'gw.example'], ...headers], framing: 'none' }, 10_000);
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }
  /** The answer's lines the test compares: names lower case, without Date, connection fields and the upstream's time (the moment's). */
  const head = (r: RawResponse): string[] => r.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`).filter((l) => !/^(date|connection|keep-alive|x-envoy-upstream-service-time):/.test(l));

  beforeAll(async () => {
    model = await startRecordingUpstream({
      name: 'model',
      responder: (req) => {
        const status = Number(headerValue(req.headers, 'x-status') ?? '200');
        return {
          statusLine: `HTTP/1.1 ${status} Model Says`,
          headers: [
            ['Content-Type', 'application/json'],
            ['ETag', '"abc"'],
            ['X-Model', 'yes'],
          ],
          body: MODEL_BODY,
          framing: headerValue(req.headers, 'x-chunked') ? 'chunked' : 'content-length',
        };
      },
    });
    gw = await startTestGateway({
      manifests: {
        'ovr.yaml': sdep('ovr', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }),
        // One request an hour: the second is the gate's 429, a refusal on the Mapping's route.
        'limited.yaml': sdep('limited', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-rate-limit': '1/h', 'seldon.io/ambassador-config': LIMITED }),
      },
      resolve: { [`ovr-main.${NS}:8000`]: model.port, [`limited-main.${NS}:8000`]: model.port, [`down.${NS}:8000`]: await freePort() },
      args: ['--http1-server', server],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it('the model’s 503: the override’s text body with its status, text/plain, its length; the status kept, the body’s own fields gone', async () => {
    const r = await send(`${P}/over/x`, [['x-status', '503']]);
    expect(r.status).toBe(503);
    expect(r.body.toString()).toBe('busy (503)');
    expect(head(r)).toEqual(['x-model: yes', 'x-route: over', 'content-type: text/plain', 'content-length: 10']);
  });

  it('the model’s chunked 404: the override’s JSON body on one line, application/json, with a Content-Length', async () => {
    const r = await send(`${P}/over/x`, [
      ['x-status', '404'],
      ['x-chunked', '1'],
    ]);
    expect(r.status).toBe(404);
    expect(r.chunked).toBe(false);
    const body = '{"error":"not here","code":"404"}\n';
    expect(r.body.toString()).toBe(body);
    expect(headerValue(r.headers, 'content-type')).toBe('application/json');
    expect(headerValue(r.headers, 'content-length')).toBe(String(body.length));
  });

  it('content_type is the override’s own', async () => {
    const r = await send(`${P}/over/x`, [['x-status', '500']]);
    expect(r.status).toBe(500);
    expect(r.body.toString()).toBe('<h1>oops</h1>');
    expect(headerValue(r.headers, 'content-type')).toBe('text/html');
  });

  it('a HEAD: the override’s length, no body', async () => {
    const r = await send(`${P}/over/x`, [['x-status', '503']], 'HEAD');
    expect(r.status).toBe(503);
    expect(headerValue(r.headers, 'content-length')).toBe('10');
    expect(r.body.length).toBe(0);
  });

  it('a status not listed passes as the model sent it', async () => {
    const r = await send(`${P}/over/x`, [['x-status', '502']]);
    expect(r.status).toBe(502);
    expect(r.body.toString()).toBe(MODEL_BODY);
    expect(head(r)).toEqual(['content-type: application/json', 'etag: "abc"', 'x-model: yes', `content-length: ${MODEL_BODY.length}`, 'x-route: over']);
  });

  it('the gateway’s own 503 on the route (the upstream refuses connections) gets the override too', async () => {
    const r = await send(`${P}/down/x`);
    expect(r.status).toBe(503);
    expect(r.body.toString()).toBe('busy (503)');
    expect(headerValue(r.headers, 'content-type')).toBe('text/plain');
    expect(headerValue(r.headers, 'content-length')).toBe('10');
  });

  it('over HTTP/2: the model’s 503 with the override’s body, type and length; the gateway’s own 503 too', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    const ask = (path: string, status?: string): Promise<{ head: http2.IncomingHttpHeaders; body: string }> =>
      new Promise((resolve, reject) => {
        const s = session.request({ ':path': path, ':method': 'GET', ':authority': 'gw.example', ...(status ? { 'x-status': status } : {}) });
        let head: http2.IncomingHttpHeaders = {};
        let body = '';
        s.setEncoding('latin1');
        s.on('response', (h) => (head = h));
        s.on('data', (d: string) => (body += d));
        s.on('end', () => resolve({ head, body }));
        s.on('error', reject);
      });
    try {
      for (const [path, status] of [
        [`${P}/over/x`, '503'],
        [`${P}/down/x`, undefined],
      ] as const) {
        const { head, body } = await ask(path, status);
        expect(head[':status']).toBe(503);
        expect(body).toBe('busy (503)');
        expect(head['content-type']).toBe('text/plain');
        expect(head['content-length']).toBe('10');
      }
    } finally {
      session.close();
    }
  });

  it('the gate’s refusal on the route (a rate limit’s 429) gets the override and the answer edits', async () => {
    const first = await send(`/seldon/${NS}/limited/x`);
    expect(first.status).toBe(200);
    const r = await send(`/seldon/${NS}/limited/x`);
    expect(r.status).toBe(429);
    expect(r.body.toString()).toBe('slow down');
    expect(headerValue(r.headers, 'content-type')).toBe('text/plain');
    expect(headerValue(r.headers, 'x-route')).toBe('limited');
  });

  it('bypass_error_response_overrides: none applies', async () => {
    const r = await send(`${P}/bypass/x`, [['x-status', '503']]);
    expect(r.status).toBe(503);
    expect(r.body.toString()).toBe(MODEL_BODY);
    expect(headerValue(r.headers, 'content-type')).toBe('application/json');
  });
});
