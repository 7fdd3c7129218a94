/**
 * The request target and the Host judged at the edge, over real sockets, as an attacker sends them: an
 * invalid Host (HTTP/1.1, both the lane and Node's server) or `:authority` (HTTP/2 REST, gRPC) is a 400 with
 * the gateway's JSON error (gRPC: INTERNAL, as Envoy maps a 400) and reaches no model; a fragment in the
 * target is a 400 (Envoy's http_reject_path_with_fragment); valid hosts pass as sent. The model receives the
 * path routing resolved, also as x-envoy-original-path, and runs of `/` as sent (Envoy's merge_slashes default).
 */
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrpcBackend, type GrpcBackend, encodeSeldonMessage, grpcFrame } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { raw, rawRequest as req, type RawAnswer } from '../../helpers/net.js';
import { INVALID_HOST } from '../../../routing/values/host.js';

const API = '/seldon/models/iris/api/v1.0/predictions';

/** The JSON body of a raw answer. */
function bodyOf(a: RawAnswer): unknown {
  return JSON.parse(a.text.slice(a.text.indexOf('\r\n\r\n') + 4));
}

/** Hosts RFC 9112 §3.2 and RFC 3986 §3.2.2 make invalid, as an attacker writes them. */
const INVALID_HOSTS = [
  'api.example.com@evil.com',
  'user:pw@api.example.com',
  'a b',
  'x,y',
  'api.example.com,evil.com',
  '[::1',
  '::1',
  '[]',
  '[::1]x',
  '[::1]:',
  'h:80:80',
  'h:',
  ':80',
  'h:8o',
  'h:65536',
  'h:0',
  'h:123456',
  'h/evil',
  'h\\evil',
  'h?x',
  'h#x',
  'h%zz',
  'h%4',
  'évil.com',
  '<x>',
  'h"x',
];

/** Valid hosts, forwarded as sent. */
const VALID_HOSTS = [
  'api.example.com',
  'API.Example.COM:8080',
  '10.0.0.1',
  '10.0.0.1:80',
  '[::1]',
  '[2001:db8::1]:443',
  '[::ffff:10.0.0.1]',
  'my_host.local',
  'a%41b',
  "x!$&'()*+;=y",
  'h:65535',
  'h:1',
];

describe('the Host and the request target judged at the edge', () => {
  let model: HttpBackend;
  let grpcModel: GrpcBackend;
  const gws: Record<string, TestGateway> = {};

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'iris' });
    grpcModel = await startGrpcBackend({ name: 'iris-grpc' });
    const ws = 'apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nname: ws\nprefix: /seldon/models/ws/\nservice: http://ws-main.models:8000\nallow_upgrade: [websocket]\n';
    const manifests = {
      'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }),
      'ws.yaml': sdep('ws', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': ws }),
    };
    const resolve = { 'iris-main.models:8000': model.port, 'iris-main.models:5001': grpcModel.port, 'ws-main.models:8000': model.port };
    gws['lane'] = await startTestGateway({ manifests, resolve });
    gws['node'] = await startTestGateway({ manifests, resolve, args: ['--http1-server', 'node'] });
  });
  afterAll(async () => {
    for (const gw of Object.values(gws)) await gw.stop();
    await model?.close();
    await grpcModel?.close();
  });

  describe.each(['lane', 'node'])('HTTP/1.1 (%s)', (server) => {
    it.each(INVALID_HOSTS)('Host %j → 400 with the JSON error, nothing upstream', async (host) => {
      const before = model.requests.length;
      const a = await raw(gws[server]!.port, req([`GET ${API} HTTP/1.1`, `Host: ${host}`]));
      expect(a.status).toBe(400);
      // The value is not echoed back.
      expect(bodyOf(a)).toEqual({ status: { code: 400, info: INVALID_HOST, reason: 'BAD_REQUEST', status: 'FAILURE' } });
      expect(model.requests.length).toBe(before);
    });

    it('a WebSocket upgrade on a Mapping that allows it, with an invalid Host → 400, never relayed', async () => {
      const before = model.requests.length;
      for (const host of ['api.example.com@evil.com', 'h:80:80', 'x,y']) {
        const a = await raw(
          gws[server]!.port,
          req(['GET /seldon/models/ws/socket HTTP/1.1', `Host: ${host}`, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']),
        );
        expect(a.status, host).toBe(400);
      }
      expect(model.requests.length).toBe(before);
    });

    it('an empty Host on HTTP/1.1 → 400; an absolute-form target with an invalid authority → 400', async () => {
      const before = model.requests.length;
      expect((await raw(gws[server]!.port, req([`GET ${API} HTTP/1.1`, 'Host:']))).status).toBe(400);
      expect((await raw(gws[server]!.port, req([`GET http://h:80:80${API} HTTP/1.1`, 'Host: api.example.com']))).status).toBe(400);
      expect(model.requests.length).toBe(before);
    });

    it.each(VALID_HOSTS)('Host %j → 200, the model gets it as sent', async (host) => {
      const before = model.requests.length;
      const a = await raw(gws[server]!.port, req([`GET ${API} HTTP/1.1`, `Host: ${host}`, 'Connection: close']));
      expect(a.status).toBe(200);
      expect(model.requests.length).toBe(before + 1);
      expect(model.requests[before]!.headers.host).toBe(host);
    });

    it.each([`${API}#frag`, `${API}?a=1#frag`, `/seldon/models/iris/#/api`, `/seldon/models/iris/api%23x#`])('target %s → 400, nothing upstream', async (target) => {
      const before = model.requests.length;
      const a = await raw(gws[server]!.port, req([`GET ${target} HTTP/1.1`, 'Host: a']));
      expect(a.status).toBe(400);
      expect(bodyOf(a)).toMatchObject({ status: { code: 400, reason: 'BAD_REQUEST', status: 'FAILURE', info: expect.stringContaining('fragment') as unknown } });
      expect(model.requests.length).toBe(before);
    });

    it('an encoded # (%23) is no fragment: forwarded as sent', async () => {
      const before = model.requests.length;
      const a = await raw(gws[server]!.port, req([`GET /seldon/models/iris/api%23x HTTP/1.1`, 'Host: a', 'Connection: close']));
      expect(a.status).toBe(200);
      expect(model.requests[before]!.url).toBe('/api%23x');
    });

    it('the model gets the path with dot segments resolved, and so is its x-envoy-original-path (Envoy normalize_path)', async () => {
      const before = model.requests.length;
      const a = await raw(gws[server]!.port, req([`GET /seldon/models/other/../iris/a/./b/../api/?x=/../y HTTP/1.1`, 'Host: a', 'Connection: close']));
      expect(a.status).toBe(200);
      const got = model.requests[before]!;
      expect([got.url, got.headers['x-envoy-original-path']]).toEqual(['/a/api/?x=/../y', '/seldon/models/iris/a/api/?x=/../y']);
      // A path that needed nothing: its target as sent.
      const b = model.requests.length;
      await raw(gws[server]!.port, req([`GET ${API}?q=1 HTTP/1.1`, 'Host: a', 'Connection: close']));
      expect(model.requests[b]!.headers['x-envoy-original-path']).toBe(`${API}?q=1`);
    });

    it("runs of / are kept without the Module's merge_slashes: //prefix/ matches no /prefix/ route; the model gets // as sent", async () => {
      const before = model.requests.length;
      expect((await raw(gws[server]!.port, req([`GET /${API} HTTP/1.1`, 'Host: a', 'Connection: close']))).status).toBe(404);
      expect((await raw(gws[server]!.port, req([`GET ${API.replace('/models/', '//models/')} HTTP/1.1`, 'Host: a', 'Connection: close']))).status).toBe(404);
      expect(model.requests.length).toBe(before);
      const a = await raw(gws[server]!.port, req([`GET /seldon/models/iris//api//x HTTP/1.1`, 'Host: a', 'Connection: close']));
      expect(a.status).toBe(200);
      expect([model.requests[before]!.url, model.requests[before]!.headers['x-envoy-original-path']]).toEqual(['//api//x', '/seldon/models/iris//api//x']);
    });
  });

  /** One HTTP/2 request with these pseudo-headers: the status (or the reset), the headers and the body. */
  async function h2(headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string; reset?: number }> {
    const session = http2.connect(gws['lane']!.url);
    session.on('error', () => undefined);
    try {
      return await new Promise((resolve, reject) => {
        const s = session.request(headers, { endStream: body === undefined });
        let got: http2.IncomingHttpHeaders = {};
        let text = '';
        s.on('response', (h) => (got = h));
        s.on('data', (d: Buffer) => (text += d.toString('latin1')));
        s.on('end', () => resolve({ status: Number(got[':status'] ?? 0), headers: got, body: text }));
        s.on('error', () => resolve({ status: 0, headers: got, body: text, reset: s.rstCode }));
        s.on('close', () => resolve({ status: Number(got[':status'] ?? 0), headers: got, body: text, reset: s.rstCode }));
        if (body !== undefined) s.end(body);
        setTimeout(() => reject(new Error('no answer')), 5000).unref();
      });
    } finally {
      session.close();
    }
  }

  // nghttp2 itself resets a stream whose :authority has `@`, `/`, `?`, `#`, a space, `"`, `<` or a non-ASCII
  // byte (RST_STREAM PROTOCOL_ERROR, no answer); the rest reaches the gateway.
  const H2_INVALID = INVALID_HOSTS.filter((h) => /^[\x21-\x7e]*$/.test(h) && !/["<>\\@/?#]/.test(h));
  const NGHTTP2_REFUSED = INVALID_HOSTS.filter((h) => !H2_INVALID.includes(h));

  const grpcCall = (authority: string, path = '/seldon.protos.Seldon/Predict') =>
    h2(
      { ':method': 'POST', ':path': path, ':authority': authority, ':scheme': 'http', 'content-type': 'application/grpc', te: 'trailers', seldon: 'iris', namespace: 'models' },
      grpcFrame(encodeSeldonMessage({ strData: 'x' })),
    );

  it.each(H2_INVALID)('HTTP/2 REST :authority %j → 400 with the JSON error, nothing upstream', async (authority) => {
    const before = model.requests.length;
    const r = await h2({ ':method': 'GET', ':path': API, ':authority': authority });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ status: { code: 400, reason: 'BAD_REQUEST', status: 'FAILURE' } });
    expect(model.requests.length).toBe(before);
  });

  it('HTTP/2: what nghttp2 resets never reaches a model either, REST or gRPC; a fragment in :path is a 400', async () => {
    const before = model.requests.length;
    const calls = grpcModel.calls.length;
    for (const authority of NGHTTP2_REFUSED) {
      expect((await h2({ ':method': 'GET', ':path': API, ':authority': authority })).status, authority).not.toBe(200);
      expect((await grpcCall(authority)).headers['grpc-status'] ?? 'reset', authority).not.toBe('0');
    }
    expect(grpcModel.calls.length).toBe(calls);
    const f = await h2({ ':method': 'GET', ':path': `${API}#x`, ':authority': 'a' });
    expect([f.status, JSON.parse(f.body)]).toMatchObject([400, { status: { reason: 'BAD_REQUEST' } }]);
    expect(model.requests.length).toBe(before);
    const ok = await h2({ ':method': 'GET', ':path': API, ':authority': '[2001:db8::1]:443' });
    expect(ok.status).toBe(200);
    expect(model.requests[before]!.headers.host).toBe('[2001:db8::1]:443');
  });

  it.each(H2_INVALID)("gRPC :authority %j → INTERNAL (Envoy's status for a 400), nothing upstream", async (authority) => {
    const calls = grpcModel.calls.length;
    const r = await grpcCall(authority);
    expect([r.status, r.headers['grpc-status'], r.headers['grpc-message']]).toEqual([200, '13', expect.stringContaining('Host') as unknown]);
    expect(grpcModel.calls.length).toBe(calls);
  });

  it('gRPC: a valid :authority is served; a fragment in :path is refused', async () => {
    const calls = grpcModel.calls.length;
    const f = await grpcCall('a', '/seldon.protos.Seldon/Predict#x');
    expect([f.headers['grpc-status'], f.headers['grpc-message']]).toEqual(['13', expect.stringContaining('fragment') as unknown]);
    expect(grpcModel.calls.length).toBe(calls);
    const ok = await grpcCall('api.example.com:443');
    expect(ok.headers['grpc-status'] ?? '0').toBe('0');
    expect(grpcModel.calls.length).toBe(calls + 1);
  });
});
