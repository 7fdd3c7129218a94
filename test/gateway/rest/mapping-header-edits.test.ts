/**
 * What a hand-written Mapping changes of a REST request and its answer (docs/routing.md "What a
 * Mapping changes of a request and its answer"), over real sockets on the gateway's own HTTP/1.1
 * lane, Node's server and HTTP/2: `add_request_headers` / `remove_request_headers`, `host_rewrite`
 * and `auto_host_rewrite` as the model (and a shadow) receives them, line by line;
 * `add_response_headers` / `remove_response_headers` as the client receives the model's answer and
 * the gateway's own error on that route. Expectations ported from Emissary's acceptance tests
 * (AddReqHeadersMapping, RemoveReqHeadersMapping, AddRespHeadersMapping).
 */
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type HeaderLine, type RawResponse, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';

const NS = 'models';

const mapping = (name: string, service: string, extra: string): string => `apiVersion: getambassador.io/v2\nkind: Mapping\nname: ${name}\nprefix: /${name}/\nservice: ${service}\n${extra}`;

const SMUGGLING: [string, string][] = [
  ['smug-te', 'add_request_headers:\n  transfer-encoding: chunked'],
  ['smug-cl', 'add_request_headers:\n  content-length: "0"'],
  ['smug-host', 'add_request_headers:\n  host: internal.admin'],
  ['smug-conn', 'add_request_headers:\n  connection: upgrade'],
  ['smug-rm', 'remove_request_headers: [content-length]'],
  ['smug-resp', 'add_response_headers:\n  transfer-encoding: chunked'],
];

const CONFIG = [
  // Emissary's AddReqHeadersMapping: append false replaces, append true (the default) adds a line.
  mapping('addreq', `edits.${NS}:8000`, 'add_request_headers:\n  zoo: {append: false, value: Zoo}\n  aoo: {append: true, value: aoo}\n  boo: {value: boo}\n  foo: Foo'),
  // Emissary's RemoveReqHeadersMapping, with an addition after the removal of the same name.
  mapping('rmreq', `edits.${NS}:8000`, 'remove_request_headers: [zoo, aoo]\nadd_request_headers:\n  aoo: fresh'),
  mapping('hostrw', `edits.${NS}:8000`, 'host_rewrite: model.internal:8443'),
  mapping('autohost', `edits.${NS}:8000`, 'auto_host_rewrite: true'),
  // A shadow receives what its primary receives (its Host with -shadow).
  mapping('shadowed', `edits.${NS}:8000`, 'host_rewrite: primary.internal\nadd_request_headers:\n  x-added: yes'),
  `apiVersion: getambassador.io/v2\nkind: Mapping\nname: shadowed-copy\nprefix: /shadowed/\nservice: shadow.${NS}:8000\nshadow: true`,
  // Emissary's AddRespHeadersMapping.
  mapping(
    'addresp',
    `edits.${NS}:8000`,
    'add_response_headers:\n  koo: {append: false, value: KooK}\n  zoo: {append: true, value: ZooZ}\n  test: {value: boo}\n  foo: {value: Foo}\nremove_response_headers: [x-secret]',
  ),
  mapping('downresp', `down.${NS}:8000`, 'add_response_headers:\n  x-route: down\nremove_response_headers: [content-type]'),
  // A tenant's edits of the framing or a connection's own fields: each drops its Mapping (a desync towards the model, or a split answer).
  ...SMUGGLING.map(([name, edit]) => mapping(name, `edits.${NS}:8000`, edit)),
].join('\n---\n');

/** The model's header lines as it received them (the request id's value and the client's address left out), without the upstream client's own `connection: keep-alive` last. */
function lines(r: RecordedRequest): string[] {
  const out = r.headers.map(([k, v]) => (/^x-request-id$/i.test(k) ? `${k}: <id>` : /^x-forwarded-for$/i.test(k) ? `${k}: ${v.replace(/[0-9.]+$/, '<peer>')}` : `${k}: ${v}`));
  expect(out.at(-1)).toBe('connection: keep-alive');
  return out.slice(0, -1);
}

const FORWARDING = (path: string): string[] => ['x-forwarded-for: <peer>', 'x-forwarded-proto: http', `x-envoy-original-path: ${path}`, 'x-request-id: <id>'];

describe.each(['gateway', 'node'] as const)('Mapping header edits (--http1-server %s)', (server) => {
  let model: RecordingUpstream;
  let shadow: RecordingUpstream;
  let gw: TestGateway;

  async function send(target: string, headers: HeaderLine[]): Promise<RawResponse> {
    const { res, x } = await rawRequest(gw.port, { method: 'GET', target, headers: [['Host', 'gw.example'], ...headers], framing: 'none' }, 10_000);
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }

  /** The one request the model got for `id` (its x-case). */
  async function received(up: RecordingUpstream, id: string): Promise<RecordedRequest> {
    await waitFor(() => up.byCase(id).length > 0);
    expect(up.byCase(id)).toHaveLength(1);
    return up.byCase(id)[0]!;
  }

  beforeAll(async () => {
    model = await startRecordingUpstream({
      name: 'model',
      responder: (req) => ({
        headers: [
          ['Content-Type', 'application/json'],
          ['Date', 'Mon, 01 Jan 2024 00:00:00 GMT'],
          ['Zoo', 'Zoo'],
          ['Test', 'Test'],
          ['Koo', 'Koot'],
          ['X-Secret', 'model-only'],
        ],
        body: `{"case":"${headerValue(req.headers, 'x-case') ?? ''}"}`,
      }),
    });
    shadow = await startRecordingUpstream({ name: 'shadow' });
    gw = await startTestGateway({
      manifests: { 'edits.yaml': sdep('edits', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`edits.${NS}:8000`]: model.port, [`shadow.${NS}:8000`]: shadow.port, [`down.${NS}:8000`]: await freePort() },
      args: ['--http1-server', server, '--custom-config-scope', 'cluster'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await shadow?.close();
  });

  it('add_request_headers: append false replaces the client line in place, append true (the default) adds a line after the forwarding fields', async () => {
    const r = await send('/addreq/x?q=1', [
      ['zoo', 'ZooZ'],
      ['aoo', 'AooA'],
      ['boo', 'BooB'],
      ['foo', 'FooF'],
      ['x-case', 'addreq'],
    ]);
    expect(r.status).toBe(200);
    const got = await received(model, 'addreq');
    expect(got.requestLine).toBe('GET /x?q=1 HTTP/1.1');
    expect(lines(got)).toEqual(['Host: gw.example', 'zoo: Zoo', 'aoo: AooA', 'boo: BooB', 'foo: FooF', 'x-case: addreq', ...FORWARDING('/addreq/x?q=1'), 'aoo: aoo', 'boo: boo', 'foo: Foo']);
  });

  it('remove_request_headers drops every line of those names (any case) before the additions', async () => {
    await send('/rmreq/', [
      ['Zoo', 'ZooZ'],
      ['AOO', 'AooA'],
      ['foo', 'FooF'],
      ['zoo', 'again'],
      ['x-case', 'rmreq'],
    ]);
    const got = await received(model, 'rmreq');
    expect(lines(got)).toEqual(['Host: gw.example', 'foo: FooF', 'x-case: rmreq', ...FORWARDING('/rmreq/'), 'aoo: fresh']);
  });

  it('host_rewrite: the model gets that Host, in the client line’s place', async () => {
    await send('/hostrw/a', [['x-case', 'hostrw']]);
    const got = await received(model, 'hostrw');
    expect(lines(got)).toEqual(['Host: model.internal:8443', 'x-case: hostrw', ...FORWARDING('/hostrw/a')]);
  });

  it('auto_host_rewrite: the model gets the service’s host name, without its port (Envoy’s host hostname)', async () => {
    await send('/autohost/a', [['x-case', 'autohost']]);
    const got = await received(model, 'autohost');
    expect(lines(got)).toEqual([`Host: edits.${NS}`, 'x-case: autohost', ...FORWARDING('/autohost/a')]);
  });

  it('a shadow receives what its primary receives: the edits, and the rewritten Host with -shadow', async () => {
    await send('/shadowed/p', [['x-case', 'shadowed']]);
    const primary = await received(model, 'shadowed');
    const copy = await received(shadow, 'shadowed');
    expect(lines(primary)).toEqual(['Host: primary.internal', 'x-case: shadowed', ...FORWARDING('/shadowed/p'), 'x-added: yes']);
    expect(lines(copy)).toEqual(['Host: primary.internal-shadow', 'x-case: shadowed', ...FORWARDING('/shadowed/p'), 'x-added: yes']);
  });

  it('add_response_headers / remove_response_headers on the model’s answer: replaced, appended, removed', async () => {
    const r = await send('/addresp/', [['x-case', 'addresp']]);
    expect(r.status).toBe(200);
    const got = r.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(got.filter((l) => /^(zoo|koo|test|foo|x-secret):/.test(l))).toEqual(['zoo: Zoo', 'test: Test', 'koo: KooK', 'zoo: ZooZ', 'test: boo', 'foo: Foo']);
    expect(r.body.toString()).toBe('{"case":"addresp"}');
  });

  it('a Mapping that edits the framing or a connection’s own fields (Transfer-Encoding, Content-Length, Host, Connection) is dropped with the reason: 404, nothing reaches the model', async () => {
    for (const [name] of SMUGGLING) {
      const r = await send(`/${name}/`, [['x-case', name]]);
      expect(r.status, name).toBe(404);
      expect(model.byCase(name), name).toHaveLength(0);
    }
    const routes = (await (await fetch(`${gw.adminUrl}/routes`)).json()) as { deployments: { name: string; reasons: string[] }[] };
    const reasons = routes.deployments.find((d) => d.name === 'edits')!.reasons.filter((r) => r.includes('smug-'));
    expect(reasons).toHaveLength(SMUGGLING.length);
    for (const r of reasons) expect(r).toMatch(/is the message's framing or its connection's own field, not editable/);
  });

  it('the gateway’s own error on the route gets the same edits (Envoy’s local replies pass the route’s header edits)', async () => {
    const r = await send('/downresp/', [['x-case', 'down']]);
    expect(r.status).toBe(503);
    const names = r.headers.map(([k]) => k.toLowerCase());
    expect(names).not.toContain('content-type');
    expect(headerValue(r.headers, 'x-route')).toBe('down');
    expect(headerValue(r.headers, 'content-length')).toBe(String(r.body.length));
    expect(JSON.parse(r.body.toString()).status.reason).toBe('UPSTREAM_CONNECT_FAILURE');
  });
});

describe('Mapping header edits over HTTP/2', () => {
  let model: RecordingUpstream;
  let gw: TestGateway;
  beforeAll(async () => {
    model = await startRecordingUpstream({
      name: 'model',
      responder: () => ({
        headers: [
          ['Content-Type', 'text/plain'],
          ['Zoo', 'Zoo'],
        ],
        body: 'ok',
      }),
    });
    gw = await startTestGateway({
      manifests: { 'edits.yaml': sdep('edits', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`edits.${NS}:8000`]: model.port },
      args: ['--custom-config-scope', 'cluster'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
  });

  it(':authority becomes the rewritten Host, the request edits apply, the answer edits reach the HTTP/2 client', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const ask = (path: string, headers: http2.OutgoingHttpHeaders): Promise<http2.IncomingHttpHeaders> =>
        new Promise((resolve, reject) => {
          const s = session.request({ ':path': path, ':method': 'GET', ':authority': 'gw.example', ...headers });
          let head: http2.IncomingHttpHeaders = {};
          s.on('response', (h) => (head = h));
          s.resume();
          s.on('end', () => resolve(head));
          s.on('error', reject);
        });
      await ask('/hostrw/h2', { 'x-case': 'h2-host', zoo: 'client' });
      await waitFor(() => model.byCase('h2-host').length > 0);
      expect(lines(model.byCase('h2-host')[0]!)).toEqual(['host: model.internal:8443', 'x-case: h2-host', 'zoo: client', ...FORWARDING('/hostrw/h2')]);
      await ask('/addreq/h2', { 'x-case': 'h2-add', zoo: 'ZooZ', foo: 'FooF' });
      await waitFor(() => model.byCase('h2-add').length > 0);
      expect(lines(model.byCase('h2-add')[0]!)).toEqual(['host: gw.example', 'x-case: h2-add', 'zoo: Zoo', 'foo: FooF', ...FORWARDING('/addreq/h2'), 'aoo: aoo', 'boo: boo', 'foo: Foo']);
      const answer = await ask('/addresp/h2', { 'x-case': 'h2-resp' });
      expect(answer[':status']).toBe(200);
      expect(answer.zoo).toBe('Zoo, ZooZ');
      expect(answer.koo).toBe('KooK');
      expect(answer.foo).toBe('Foo');
    } finally {
      session.close();
    }
  });
});
