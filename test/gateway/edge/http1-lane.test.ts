/**
 * The gateway's own HTTP/1.1 server side (gateway/edge/http1-lane.ts) against Node's, which it
 * stands in front of (`--http1-server gateway`, the default, and `node`):
 *   - the same bytes on the wire both ways: each answer, byte for byte but the Date value, and
 *     each request as the model received it, for proxied answers (Content-Length, chunked, 204),
 *     the gateway's own (404, 503, a CORS preflight) and `Connection: close`;
 *   - a connection moves to Node's server at the first request the lane does not serve, that
 *     request's bytes unread: mid-connection, pipelined, and for hostile requests, which then get
 *     exactly Node's answer (and never reach the model);
 *   - a request dribbled a byte at a time is still read whole; the lane's own timeouts answer as
 *     Node's do (408), and an idle connection is closed after the keep-alive timeout;
 *   - 600 seeded random requests (valid, odd and hostile shapes; bodies by Content-Length around the
 *     lane's 64 KiB, chunked with extensions and trailers, malformed chunked framing; alone or after
 *     a served request on the same connection) get the same answer bytes and put the same bytes at
 *     the model, and agree with llhttp (Node's own parser, called directly): a request it refuses
 *     is refused and closed with nothing behind it served and nothing whole at the model, one it
 *     reads reaches the model with the body it decoded;
 *   - 20,000 seeded random heads: every one the lane's parser takes, llhttp reads the same way.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Http1Lane, type LaneHandler } from '../../../gateway/edge/http1-lane.js';
import type { LaneExchange } from '../../../gateway/edge/lane-exchange.js';
import { OTHER, parseRequestHead } from '../../../gateway/edge/http1-request.js';
import { seededRandom } from '../../../routing/table/pick.js';
import { ByteReader, headerValue, readHttpResponse, startRecordingUpstream, type Answer, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { llhttp } from '../../../fuzz/llhttp.js';
import { freePort, raw } from '../../helpers/net.js';
import { draws, fuzzSequence } from '../../helpers/random.js';

const PREDICT = '/api/v1.0/predictions';
const CORS = JSON.stringify({ origins: 'https://app.example', methods: 'POST', headers: 'content-type' });

/** The model's answers, by the request's x-case. */
function answer(req: RecordedRequest): Answer {
  const c = headerValue(req.headers, 'x-case') ?? '';
  const base: Answer = {
    headers: [
      ['Content-Type', 'application/json'],
      ['X-Case', c],
    ],
    body: `{"case":"${c}","got":${req.body.length}}`,
  };
  if (c === 'chunked') return { ...base, framing: 'chunked' };
  if (c === 'big') return { ...base, body: Buffer.alloc(64 * 1024, 120) };
  if (c === '204') return { headers: [['X-Case', c]], statusLine: 'HTTP/1.1 204 No Content', framing: 'none' };
  if (c === 'odd')
    return {
      ...base,
      statusLine: 'HTTP/1.1 299 Od\xe9 Reason',
      headers: [
        ['X-Dup', 'a'],
        ['x-dup', 'b'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
      ],
    };
  return base;
}

/** Everything a connection received, with each Date header's value blanked (it is the clock). */
/** How many answers a connection received. */
const answers = (text: string): number => text.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0;

/** Without the values that are the moment's: Date, and the upstream's time (x-envoy-upstream-service-time, test/gateway/edge/envoy-defaults.test.ts). */
const undated = (text: string): string => text.replace(/\r\nDate: [^\r]*/g, '\r\nDate: -').replace(/\r\nx-envoy-upstream-service-time: [0-9]+/g, '\r\nx-envoy-upstream-service-time: -');

/** What the model received, with the per-request id blanked. */
const received = (r: RecordedRequest): string => r.rawHead.toString('latin1').replace(/\r\nx-request-id: [0-9a-f-]{36}/, '\r\nx-request-id: -') + r.body.toString('latin1');

/** The deployments both describes route to: plain, and one with CORS configured. */
const MANIFESTS = {
  'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }),
  'web.yaml': sdep('web', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-cors': CORS }),
};
const TIMEOUTS = ['--client-header-timeout', '400ms', '--client-request-timeout', '800ms'];

/** The same gateway twice: with the lane (the default) and with `--http1-server node`. */
async function sideBySide(
  manifests: Record<string, string>,
  resolve: { lane: Record<string, number>; node: Record<string, number> },
  args: string[],
): Promise<{ lane: TestGateway; node: TestGateway }> {
  const lane = await startTestGateway({ manifests, resolve: resolve.lane, args });
  const node = await startTestGateway({ manifests, resolve: resolve.node, args: [...args, '--http1-server', 'node'] });
  return { lane, node };
}

describe("the lane and Node's server side by side", () => {
  let lane: TestGateway;
  let node: TestGateway;
  let model: RecordingUpstream;
  let closedPort: number;

  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'model', responder: answer });
    closedPort = await freePort();
    const manifests = { ...MANIFESTS, 'down.yaml': sdep('down', 'm', { predictors: [{ name: 'main' }] }) };
    const resolve = { 'plain-main.m:8000': model.port, 'web-main.m:8000': model.port, 'down-main.m:8000': closedPort };
    ({ lane, node } = await sideBySide(manifests, { lane: resolve, node: resolve }, TIMEOUTS));
  });
  afterAll(async () => {
    await lane?.stop();
    await node?.stop();
    await model?.close();
  });

  /**
   * Send `bytes` (and `later`, once the first answer is in) to both gateways on fresh connections,
   * reading `answers` answers; what each client and the model got (the model has every request
   * once its answer is back: it records a request before answering it).
   */
  async function both(bytes: string, opts: { answers?: number; later?: string } = {}): Promise<{ lane: string; node: string; laneModel: string[]; nodeModel: string[] }> {
    const o = { quietMs: 150, ...opts };
    const before = model.requests.length;
    const a = await raw(lane.port, Buffer.from(bytes, 'latin1'), o);
    const mid = model.requests.length;
    const b = await raw(node.port, Buffer.from(bytes, 'latin1'), o);
    return {
      lane: undated(a.text),
      node: undated(b.text),
      laneModel: model.requests.slice(before, mid).map(received),
      nodeModel: model.requests.slice(mid).map(received),
    };
  }

  const post = (path: string, c: string, body: string, extra = ''): string =>
    `POST ${path} HTTP/1.1\r\nHost: gw.example\r\nContent-Type: application/json\r\nX-Case: ${c}\r\n${extra}Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;

  it('the same answer bytes and the same upstream bytes, answer by answer (two requests per connection)', async () => {
    const cases: [string, string][] = [
      ['Content-Length answer', post(`/seldon/m/plain${PREDICT}`, 'cl', '{"data":{"ndarray":[[1,2]]}}')],
      ['chunked answer, re-chunked', post(`/seldon/m/plain${PREDICT}?q=1`, 'chunked', '{}')],
      ['204', `GET /seldon/m/plain/health/status HTTP/1.1\r\nHost: gw\r\nX-Case: 204\r\n\r\n`],
      ['odd reason phrase, repeated fields', post(`/seldon/m/plain${PREDICT}`, 'odd', '{}')],
      ['no route: 404', post(`/seldon/m/nope${PREDICT}`, 'x', '{}')],
      ['connect failure: 503', post(`/seldon/m/down${PREDICT}`, 'x', '{}')],
      ['CORS preflight answered by the gateway', `OPTIONS /seldon/m/web${PREDICT} HTTP/1.1\r\nHost: gw\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n\r\n`],
      ['CORS headers on a proxied answer', post(`/seldon/m/web${PREDICT}`, 'cors', '{}', 'Origin: https://app.example\r\n')],
      ['hop-by-hop fields named by Connection', post(`/seldon/m/plain${PREDICT}`, 'hop', '{}', 'Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Obs: caf\xe9\r\n')],
    ];
    for (const [what, request] of cases) {
      const r = await both(request + request, { answers: 2 });
      expect(r.lane, what).toBe(r.node);
      expect(answers(r.lane), `${what}: two answers`).toBe(2);
      expect(r.laneModel, `${what}: what the model got`).toEqual(r.nodeModel);
    }
    expect(await metric(lane.adminUrl, 'seldon_gateway_http1_handoffs_total{reason="request_shape"}')).toBe(0);
  });

  it('Connection: close is answered with it, and the connection closed after the answer', async () => {
    const r = await both(post(`/seldon/m/plain${PREDICT}`, 'close', '{}', 'Connection: close\r\n') + post(`/seldon/m/plain${PREDICT}`, 'after', '{}'));
    expect(r.lane).toBe(r.node);
    expect(r.lane).toContain('\r\nConnection: close\r\n');
    expect(answers(r.lane)).toBe(1);
    expect(r.laneModel.length).toBe(1);
  });

  it("mid-connection and pipelined: a chunked request stays on the lane (its body decoded as it streams); every answer in order, as Node's", async () => {
    const chunked = `POST /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nX-Case: te\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`;
    const handed = await metric(lane.adminUrl, 'seldon_gateway_http1_handoffs_total{reason="request_shape"}');
    // Pipelined: all in one write.
    const r = await both(post(`/seldon/m/plain${PREDICT}`, 'p1', '{"a":1}') + chunked + post(`/seldon/m/plain${PREDICT}`, 'p3', '{"c":3}'), { answers: 3 });
    expect(r.lane).toBe(r.node);
    expect([...r.lane.matchAll(/"case":"(\w+)","got":(\d+)/g)].map((m) => `${m[1]}:${m[2]}`)).toEqual(['p1:7', 'te:3', 'p3:7']);
    // Both serve a pipeline one request after the other (as nginx does): the same order at the model.
    expect(r.laneModel).toEqual(r.nodeModel);
    expect(await metric(lane.adminUrl, 'seldon_gateway_http1_handoffs_total{reason="request_shape"}')).toBe(handed);
    // One after the other on a kept-alive connection: the same.
    const s = net.connect(lane.port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const answers = (n: number): Promise<void> => waitFor(() => (text.match(/"case"/g)?.length ?? 0) >= n, 10_000);
    s.write(post(`/seldon/m/plain${PREDICT}`, 'k1', '{}'));
    await answers(1);
    s.write(chunked);
    await answers(2);
    s.write(post(`/seldon/m/plain${PREDICT}`, 'k3', '{}'));
    await answers(3);
    s.destroy();
    expect([...text.matchAll(/"case":"(\w+)"/g)].map((m) => m[1])).toEqual(['k1', 'te', 'k3']);
  });

  it("hostile requests after a served one get exactly Node's answer, and never reach the model", async () => {
    const hostile = [
      `POST /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n`,
      `POST /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc`,
      `POST /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{}`,
      `POST /seldon/m/plain${PREDICT} HTTP/1.1\nHost: gw\nContent-Length: 2\n\n{}`,
      `POST /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost : gw\r\nContent-Length: 2\r\n\r\n{}`,
      `GET /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`,
      `GET /seldon/m/plain${PREDICT} HTTP/1.1\r\n\r\n`,
      `TRACE /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\n\r\n`,
      `GET /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nX: a\x00b\r\n\r\n`,
      `GARBAGE\r\n\r\n`,
    ];
    for (const h of hostile) {
      // After the first answer: pipelined, Node's server would read the hostile request early and
      // close after the first answer instead of answering it (safe too, but not the same bytes).
      // Each is refused and closed: the exchange ends when the connection closes, not after a quiet spell.
      const r = await both(post(`/seldon/m/plain${PREDICT}`, 'first', '{}'), { later: h });
      expect(r.lane, JSON.stringify(h)).toBe(r.node);
      expect(r.lane, JSON.stringify(h)).toMatch(/HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 4\d\d /);
      expect(r.laneModel.length, JSON.stringify(h)).toBe(1);
      expect(r.laneModel).toEqual(r.nodeModel);
    }
  });

  it('a client that pipelines requests and reads no answer: the lane stops taking requests until it reads', async () => {
    const n = 400;
    const before = model.requests.length;
    const s = net.connect(lane.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.pause();
    s.write(`GET /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nX-Case: big\r\n\r\n`.repeat(n));
    // Until the lane has stopped taking them: some served, then none for a while (an absence, so a bounded look).
    const served = (): number => model.requests.length - before;
    await waitFor(() => served() > 0, 10_000);
    for (let last = -1, end = Date.now() + 10_000; served() !== last && Date.now() < end;) {
      last = served();
      await new Promise((r) => setTimeout(r, 300));
    }
    const whileNotReading = served();
    // Each answer is 64 KiB: the socket buffers take a few dozen, not 400 (25 MiB; Node's server,
    // as the gateway drives it, proxies all 400 and holds their answers).
    expect(whileNotReading).toBeGreaterThan(0);
    expect(whileNotReading).toBeLessThan(n / 2);
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    s.resume();
    await waitFor(() => served() === n && got > n * 64 * 1024, 20_000).catch(() => undefined);
    expect(served()).toBe(n);
    expect(got).toBeGreaterThan(n * 64 * 1024);
    s.destroy();
  });

  it('a request dribbled one byte at a time is read whole by the lane', async () => {
    const handed = await metric(lane.adminUrl, 'seldon_gateway_http1_handoffs_total{reason="request_shape"}');
    const bytes = post(`/seldon/m/plain${PREDICT}`, 'drip', '{"data":{"ndarray":[[1]]}}');
    const s = net.connect(lane.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    // One byte a write, each read by the lane before the next is written (a turn of the event
    // loop they share): the whole request well within --client-request-timeout, however busy the machine.
    s.setNoDelay(true);
    for (const ch of bytes) {
      s.write(ch);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => text.includes('"case"'), 10_000).catch(() => undefined);
    s.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*"case":"drip","got":26/);
    expect(await metric(lane.adminUrl, 'seldon_gateway_http1_handoffs_total{reason="request_shape"}')).toBe(handed);
  });

  it('a head or a body slower than its timeout gets the same 408 from both', async () => {
    const head = `POST /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\n`;
    const slowHead = await both(head);
    expect(slowHead.lane).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"reason":"REQUEST_TIMEOUT"/);
    expect(slowHead.lane).toBe(slowHead.node);
    const slowBody = await both(`${head}Content-Length: 10\r\n\r\n{"a"`);
    expect(slowBody.lane).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(slowBody.lane).toBe(slowBody.node);
    expect(slowBody.laneModel).toEqual([]);
  });
});

/** Chunked bodies llhttp refuses (each a whole body after `Transfer-Encoding: chunked`). */
const MALFORMED_CHUNKED = [
  'ffffffffffffffff1\r\nAA\r\n0\r\n\r\n',
  '0x2\r\nAA\r\n0\r\n\r\n',
  ' 2\r\nAA\r\n0\r\n\r\n',
  '-2\r\nAA\r\n0\r\n\r\n',
  '2 \r\nAA\r\n0\r\n\r\n',
  '2;a\nb\r\nAA\r\n0\r\n\r\n',
  '2\r\nA\nA\r\n0\r\n\r\n',
  '2\r\nAAX\r\n0\r\n\r\n',
  '2\nAA\r\n0\r\n\r\n',
  '2;\r\nAA\r\n0\r\n\r\n',
  `2;${'e'.repeat(20_000)}\r\nAA\r\n0\r\n\r\n`,
  '2\r\nAA\r\n0\r\nContent-Length: 5\r\n\r\n',
  '2\r\nAA\r\n0\r\nX-T : 1\r\n\r\n',
  'zz\r\n\r\n',
];

/** `body` as chunks of random sizes, with sizes in either case and leading zeros, extensions and trailers now and then. */
function chunked(r: () => number, body: string): string {
  const { pick, maybe } = draws(r);
  let out = '';
  for (let at = 0; at < body.length;) {
    const n = Math.min(body.length - at, 1 + Math.floor(r() * Math.max(1, body.length / 2)));
    let size = n.toString(16);
    if (maybe(0.3)) size = size.toUpperCase();
    if (maybe(0.2)) size = `00${size}`;
    out += `${size}${maybe(0.2) ? pick([';a=b', ';name="v;x"', ';x']) : ''}\r\n${body.slice(at, at + n)}\r\n`;
    at += n;
  }
  return `${out}0${maybe(0.1) ? ';last' : ''}\r\n${maybe(0.15) ? 'X-Trailer: t\r\n' : ''}\r\n`;
}

/**
 * A request assembled from parts a client, a fuzzer or a smuggler would send, with the seeded
 * random source `r`. Every body is as long as the framing it declares (when that framing means a
 * length at all), so no request waits for bytes that never come.
 */
function randomRequest(r: () => number, id: string): string {
  const { pick, maybe } = draws(r);
  const method = maybe(0.9) ? pick(['POST', 'POST', 'GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) : pick(['HEAD', 'TRACE', 'CONNECT', 'post', 'PO ST', 'GET\t', 'BREW']);
  const paths = [`/seldon/m/plain${PREDICT}`, `/seldon/m/web${PREDICT}`, `/seldon/m/nope${PREDICT}`, '/seldon/m/plain/health/status', '/ping', '/'];
  let target = pick(paths);
  if (maybe(0.3)) target += pick(['?q=1', '?a=1&b=%20x', '?x=\xe9', '#frag', '?', '?q=a|b']);
  if (maybe(0.08))
    target = pick([`http://gw.example${target}`, '*', `//seldon/m/plain${PREDICT}`, `/seldon/m/plain/../plain${PREDICT}`, `/seldon/m/pl ain${PREDICT}`, `/seldon/m/plain${PREDICT}"`, '']);
  const version = maybe(0.95) ? 'HTTP/1.1' : pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.10', 'http/1.1', 'HTTP/1', '']);
  const lines: string[] = [`X-Case: ${id}`];
  const hosts = maybe(0.92) ? 1 : pick([0, 2]);
  for (let i = 0; i < hosts; i++) lines.push(`Host: ${maybe(0.9) ? pick(['gw.example', 'gw.example:8080', '127.0.0.1', '[::1]:80']) : pick(['', 'a b', 'gw.example\t'])}`);
  if (maybe(0.5)) lines.push(`Content-Type: ${pick(['application/json', 'text/plain; charset=utf-8', ''])}`);
  const extras = [
    'X-Dup: a',
    'x-dup: b',
    'X-Tab:\tv\t',
    'X-Trail: v   ',
    'X-Obs: caf\xe9',
    'X-Empty:',
    'X_Under: 1',
    'X.Dot: 1',
    'Connection: close',
    'Connection: keep-alive',
    'Connection: keep-alive, X-Hop',
    'X-Hop: secret',
    'Connection: upgrade',
    'Connection: Close, TE',
    'Upgrade: websocket',
    'Expect: 100-continue',
    'TE: trailers',
    'Keep-Alive: timeout=5',
    'Proxy-Connection: keep-alive',
    'Origin: https://app.example',
    'Access-Control-Request-Method: POST',
    'Authorization: Bearer abc',
    'X-Forwarded-For: 10.0.0.1',
    'X-Forwarded-Proto: https',
    'X-Request-Id: client-chosen',
    'x-seldon-predictor: main',
    'Cookie: a=1',
    `X-Long: ${'v'.repeat(pick([100, 4000, 9000]))}`,
  ];
  for (let n = Math.floor(r() * 3); n > 0; n--) lines.push(pick(extras));
  // Framing: a length the body matches (around the lane's 64 KiB too), a chunked body (chunks,
  // sizes in any case with leading zeros, extensions, trailers), a malformed chunked body, or
  // framing fields a parser must refuse.
  const body = maybe(0.08) ? 'x'.repeat(pick([70_000, 65_536, 65_535])) : pick(['', '{}', '{}', '{"data":{"ndarray":[[1,2,3]]}}', '{"data":{"ndarray":[[1,2,3]]}}']);
  const framing = r();
  let tail = body;
  if (framing < 0.66) {
    if (body.length > 0 || maybe(0.5)) lines.push(`Content-Length: ${body.length}`);
  } else if (framing < 0.8) {
    lines.push(`Transfer-Encoding: ${pick(['chunked', 'chunked', 'Chunked', 'gzip, chunked', ' chunked'])}`);
    tail = chunked(r, body);
  } else if (framing < 0.88) {
    lines.push('Transfer-Encoding: chunked');
    tail = pick(MALFORMED_CHUNKED);
  } else if (framing < 0.93) {
    tail = '{}';
    lines.push(`Content-Length: ${pick(['02', '+2', '2, 2', ' 2 ', '2 2', '0x2', '1e0', '-2', '99999999999999999999', '2\t', '\t2'])}`);
  } else if (framing < 0.97) {
    tail = '{}';
    lines.push('Content-Length: 2', pick(['Content-Length: 2', 'Content-Length: 3', 'Transfer-Encoding: chunked', 'Transfer-Encoding: identity', 'Transfer_Encoding: chunked']));
  } else {
    tail = '';
  }
  for (let i = lines.length - 1; i > 0; i--) {
    const j = 1 + Math.floor(r() * i);
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
  }
  let head = `${method} ${target} ${version}`.replace(/ $/, '') + '\r\n' + lines.map((l) => `${l}\r\n`).join('');
  // Line-level damage, now and then: a bare LF, obs-fold, a space before the colon, a NUL, a bare CR.
  if (maybe(0.08)) {
    const at = head.indexOf('\r\n', head.indexOf('\r\n') + 2);
    if (at > 0) head = head.slice(0, at) + pick(['\n', '\r\n \tfolded\r\n', '\r\nX-Sp : 1\r\n', '\r\nX-Nul: a\x00b\r\n', '\r\nX-Cr: a\rb\r\n', '\r\n: novalue\r\n']) + head.slice(at + 2);
  }
  return `${head}\r\n${tail}`;
}

/**
 * Send `bytes` on a new connection (after `first` has been answered in full, when given), then a
 * sentinel request that closes the connection, and collect everything received until the gateway
 * closes it: the exchange ends on an event, never on a quiet spell.
 */
async function exchange(port: number, bytes: string, sentinel: string, first?: string): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.on('error', () => undefined);
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  // A close after a reset too (a refusal may cut the connection with bytes unread): the bytes before it are compared.
  const closed = new Promise((r) => s.once('close', r));
  if (first !== undefined) {
    const reader = new ByteReader(s);
    s.write(Buffer.from(first, 'latin1'));
    await readHttpResponse(reader, { timeoutMs: 5000 });
  }
  s.write(Buffer.from(bytes + sentinel, 'latin1'));
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
  s.destroy();
  return text;
}

describe("random requests, seeded: the lane answers each exactly as Node's server does, and as llhttp reads it", () => {
  let lane: TestGateway;
  let node: TestGateway;
  // One model per gateway: the two run each case at the same time.
  let laneModel: RecordingUpstream;
  let nodeModel: RecordingUpstream;

  beforeAll(async () => {
    laneModel = await startRecordingUpstream({ name: 'lane-model', responder: answer });
    nodeModel = await startRecordingUpstream({ name: 'node-model', responder: answer });
    const resolve = (port: number): Record<string, number> => ({ 'plain-main.m:8000': port, 'web-main.m:8000': port });
    ({ lane, node } = await sideBySide(MANIFESTS, { lane: resolve(laneModel.port), node: resolve(nodeModel.port) }, [...TIMEOUTS, '--max-body', '100kb']));
  });
  afterAll(async () => {
    await lane?.stop();
    await node?.stop();
    await laneModel?.close();
    await nodeModel?.close();
  });

  // SELDON_GATEWAY_FUZZ_SEED and _CASES run another sequence (its cases are named by seed and number).
  const { seed, cases: CASES } = fuzzSequence(600);
  /** Cases in flight at once, each on its own connections. */
  const BATCH = 10;

  it(`${CASES} requests (seed ${seed}): the same answer bytes, the same bytes at the model, and what llhttp reads`, async () => {
    const r = seededRandom(seed);
    const served: Record<string, number> = {};
    const handoffs = async (): Promise<number> => {
      let n = 0;
      for (const reason of ['request_shape', 'large_body', 'gateway_route']) n += await metric(lane.adminUrl, `seldon_gateway_http1_handoffs_total{reason="${reason}"}`);
      return n;
    };
    const handedBefore = await handoffs();
    // What a model received for a case, by its X-Case (its first header, never damaged).
    const at = (model: RecordingUpstream, id: string): RecordedRequest[] =>
      model.requests.filter((q) => headerValue(q.headers, 'x-case')?.startsWith(`${id} `) || headerValue(q.headers, 'x-case') === id);
    // A request without a Host gets the upstream's address, which is each model's own port.
    const seen = (model: RecordingUpstream, id: string): string[] => at(model, id).map((q) => received(q).replace(`\r\nhost: 127.0.0.1:${model.port}\r\n`, '\r\nhost: <the model>\r\n'));
    // Every third case follows a served request on the same connection, sent once that one is answered.
    const cases = Array.from({ length: CASES }, (_, i) => {
      const id = `f${seed}-${i}`;
      return {
        id,
        request: randomRequest(r, id),
        after: i % 3 === 2 ? `POST /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nX-Case: ${id}-first\r\nContent-Length: 2\r\n\r\n{}` : undefined,
        sentinel: `GET /seldon/m/plain${PREDICT} HTTP/1.1\r\nHost: gw\r\nX-Case: ${id}-end\r\nConnection: close\r\n\r\n`,
      };
    });
    for (let b = 0; b < CASES; b += BATCH) {
      const batch = cases.slice(b, b + BATCH);
      const texts = await Promise.all(batch.flatMap(({ request, after, sentinel }) => [lane, node].map((gw) => exchange(gw.port, request, sentinel, after))));
      // Each connection ended with its sentinel's answer (or a refusal): what the case got through reached the model before.
      batch.forEach(({ id, request, after }, k) => {
        const what = `case ${id}: ${JSON.stringify(request.length > 400 ? `${request.slice(0, 400)}…` : request)}`;
        const [l, n] = [undated(texts[2 * k]!), undated(texts[2 * k + 1]!)];
        expect(l, what).toBe(n);
        // The oracle: what Node's own parser reads of the case's bytes.
        const oracle = llhttp(Buffer.from(request, 'latin1'));
        expect(seen(laneModel, id), what).toEqual(seen(nodeModel, id));
        const got = at(laneModel, id);
        expect(got.length, what).toBeLessThanOrEqual(1);
        if (after !== undefined) expect(l, `${what}: the first request's answer`).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*"case":"[^"]*-first"/);
        const read = oracle.requests[0];
        // Final answers only (a 100 Continue is not one).
        const statuses = [...l.matchAll(/HTTP\/1\.1 ([2-5]\d\d) /g)].map((m) => Number(m[1]));
        const mine = statuses[after === undefined ? 0 : 1];
        if (oracle.error !== undefined || read?.complete !== true) {
          // Framing llhttp refuses: the client gets a refusal and the connection closes with it
          // (the sentinel is never served); nothing of the request reaches the model whole.
          expect(mine, `${what}: refused`).toBeGreaterThanOrEqual(400);
          expect(statuses.length, `${what}: nothing served after the refusal`).toBe(after === undefined ? 1 : 2);
          for (const q of got) expect(q.complete, `${what}: never whole at the model`).toBe(false);
        } else if (got.length === 1 && got[0]!.complete) {
          // What the model got is what llhttp read: the same body bytes.
          expect(got[0]!.body.toString('latin1'), what).toBe(read.body);
        }
        const family = mine === undefined ? 'none' : String(mine)[0]!;
        served[family] = (served[family] ?? 0) + 1;
      });
    }
    // Nothing reached a model that no case sent (the sentinels aside).
    const sent = (model: RecordingUpstream): number =>
      cases.reduce((sum, c) => sum + at(model, c.id).length + at(model, `${c.id}-end`).length + (c.after === undefined ? 0 : at(model, `${c.id}-first`).length), 0);
    expect(laneModel.requests.length).toBe(sent(laneModel));
    expect(nodeModel.requests.length).toBe(sent(nodeModel));
    // The sequence must exercise both sides: answers from the model and refusals, requests the
    // lane served and requests it left to Node's server.
    expect(served['2'] ?? 0, JSON.stringify(served)).toBeGreaterThan(CASES / 6);
    expect(served['4'] ?? 0, JSON.stringify(served)).toBeGreaterThan(CASES / 10);
    const handed = (await handoffs()) - handedBefore;
    expect(handed, "requests the lane handed to Node's server").toBeGreaterThan(CASES / 10);
    expect(CASES - handed, 'random requests the lane served').toBeGreaterThan(CASES / 4);
  }, 120_000);
});

/** A request head of the kinds the lane must judge exactly as llhttp: framing and connection fields, odd bytes anywhere. */
function randomHead(r: () => number): string {
  const { pick, maybe } = draws(r);
  const anyByte = (): string => (maybe(0.5) ? String.fromCharCode(Math.floor(r() * 256)) : pick([' ', '\t', 'a', 'Z', '0', '-', ',', ';', '"', '\x7f', '\x80', '\xff', '\x00', '\x0b', '\r', '\n']));
  const some = (n: number): string => Array.from({ length: n }, anyByte).join('');
  const names = [
    'Host',
    'Content-Length',
    'Transfer-Encoding',
    'Connection',
    'Proxy-Connection',
    'Upgrade',
    'Expect',
    'Keep-Alive',
    'TE',
    'X-A',
    'Content_Length',
    'Transfer_Encoding',
    'Content-Lengths',
    'Hosts',
  ];
  const values = ['5', '0', '05', ' 5', '5 ', '5\t', '\t5', 'close', 'keep-alive', 'upgrade', 'chunked', 'h', '100-continue', 'websocket', 'trailers', ''];
  const lines: string[] = [];
  if (maybe(0.9)) lines.push('Host: h');
  for (let n = Math.floor(r() * 5); n > 0; n--) {
    let name = maybe(0.85) ? pick(names) : some(1 + Math.floor(r() * 3));
    if (maybe(0.3)) name = maybe(0.5) ? name.toUpperCase() : name.toLowerCase();
    if (maybe(0.05)) name = some(1) + name;
    if (maybe(0.05)) name += some(1);
    let value = pick(values);
    if (maybe(0.25)) value = some(Math.floor(r() * 3)) + value;
    if (maybe(0.25)) value += some(Math.floor(r() * 3));
    if (maybe(0.1)) value += `,${pick(values)}`;
    lines.push(`${name}:${pick(['', ' ', ' ', '\t', '  '])}${value}`);
  }
  const target = maybe(0.7) ? '/p' : `/p${some(1 + Math.floor(r() * 3))}`;
  const method = maybe(0.9) ? pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) : pick(['get', 'HEAD', 'TRACE', 'QUERY', 'PO ST']);
  const version = maybe(0.95) ? 'HTTP/1.1' : pick(['HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0']);
  return `${method} ${target} ${version}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}

describe("the lane's head parser against llhttp", () => {
  const limits = { maxHeadBytes: 16384, maxHeaders: 100 };

  it('every head it takes, llhttp reads the same way: method, target, fields, body length, keep-alive, no upgrade (seeded random heads)', () => {
    const { seed } = fuzzSequence(0);
    const r = seededRandom(seed);
    let taken = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = randomHead(r);
      const head = parseRequestHead(Buffer.from(text, 'latin1'), 0, limits);
      if (typeof head === 'string') continue;
      taken++;
      const what = JSON.stringify(text.slice(0, head.size));
      // A chunked head (the lane decodes its body, wire/chunked-body.ts): an empty body.
      const oracle = llhttp(Buffer.from(text.slice(0, head.size) + (head.chunkedBody ? '0\r\n\r\n' : 'x'.repeat(head.contentLength)), 'latin1'));
      expect(oracle.error, what).toBeUndefined();
      const read = oracle.requests[0]!;
      expect([read.method, read.target, read.rawHeaders, read.body.length, read.complete, read.keepAlive, read.upgrade], what).toEqual([
        head.method,
        head.target,
        head.rawHeaders,
        head.contentLength,
        true,
        !head.close,
        false,
      ]);
    }
    // The sequence must give the lane heads to take, and heads to leave.
    expect(taken).toBeGreaterThan(2000);
    expect(taken).toBeLessThan(18_000);
  });

  it("fields llhttp versions read differently are left to Node's server; Proxy-Connection: close closes as llhttp says", () => {
    for (const field of ['Content-Length: 5\t', 'Content-Length: 5 \t', 'Connection: close\t', 'Proxy-Connection: close\t', 'Transfer_Encoding: chunked', 'Content_Length: 5']) {
      expect(parseRequestHead(Buffer.from(`POST /p HTTP/1.1\r\nHost: h\r\n${field}\r\n\r\n`, 'latin1'), 0, limits), JSON.stringify(field)).toBe(OTHER);
    }
    const head = parseRequestHead(Buffer.from('GET /p HTTP/1.1\r\nHost: h\r\nProxy-Connection: close\r\n\r\n', 'latin1'), 0, limits);
    expect(typeof head === 'object' && head.close).toBe(true);
    expect(llhttp(Buffer.from('GET /p HTTP/1.1\r\nHost: h\r\nProxy-Connection: close\r\n\r\n', 'latin1')).requests[0]!.keepAlive).toBe(false);
  });
});

/** A lane alone on a port of 127.0.0.1 (nothing handed off: those connections close), serving every request with `serve`. */
async function standaloneLane(keepAliveTimeoutMs: number, serve: LaneHandler): Promise<{ lane: Http1Lane; server: net.Server; port: number }> {
  const lane = new Http1Lane({
    maxHeadBytes: 16384,
    maxHeaders: 100,
    maxBodyBytes: 65536,
    bodyLimitBytes: 0,
    keepAliveTimeoutMs,
    headerTimeoutMs: 1000,
    requestTimeoutMs: 2000,
    route: () => serve,
    handOff: (socket) => socket.destroy(),
    timedOut: (socket) => socket.destroy(),
    bodyRefused: (socket) => socket.destroy(),
  });
  const server = net.createServer((s) => lane.connection(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { lane, server, port: (server.address() as AddressInfo).port };
}

describe('Http1Lane on its own: keep-alive timeout and shutdown', () => {
  it('an idle connection is closed after the keep-alive timeout; drain closes idle ones at once, busy ones after their answer', async () => {
    let held: LaneExchange | undefined;
    const { lane, server, port } = await standaloneLane(300, (req, res) => {
      if (req.url === '/hold') held = res;
      else res.writeHead(200, 'OK', ['content-length', '2']).end('ok');
    });
    const open = async (): Promise<{ s: net.Socket; text: () => string; closedAt: () => number }> => {
      const s = net.connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      let text = '';
      let closedAt = 0;
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.on('close', () => (closedAt = Date.now()));
      return { s, text: () => text, closedAt: () => closedAt };
    };
    const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
      const end = Date.now() + ms;
      while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    };

    const idle = await open();
    idle.s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => idle.text().endsWith('ok'));
    const answeredAt = Date.now();
    expect(idle.text()).toMatch(/^HTTP\/1\.1 200 OK\r\ncontent-length: 2\r\nDate: .+\r\nConnection: keep-alive\r\nKeep-Alive: timeout=0\r\n\r\nok$/);
    await until(() => idle.closedAt() > 0);
    expect(idle.closedAt() - answeredAt).toBeGreaterThanOrEqual(250);
    expect(idle.closedAt() - answeredAt).toBeLessThan(1500);

    const quiet = await open();
    const busy = await open();
    busy.s.write('GET /hold HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => held !== undefined);
    lane.drain();
    await until(() => quiet.closedAt() > 0, 500);
    expect(quiet.closedAt(), 'the idle connection closed at once').toBeGreaterThan(0);
    expect(busy.closedAt(), 'the busy one is still open').toBe(0);
    held!.writeHead(200, 'OK', ['content-length', '4']).end('done');
    await until(() => busy.closedAt() > 0, 1000);
    expect(busy.text()).toMatch(/^HTTP\/1\.1 200 OK\r\ncontent-length: 4\r\nDate: .+\r\nConnection: close\r\n\r\ndone$/);
    expect(lane.size).toBe(0);
    server.close();
  });
});

describe("Http1Lane on its own: an answer's framing never lies to a pipelining client", () => {
  it("a 204's or 304's body is dropped; a body over or short of its Content-Length is cut short with its connection, nothing after it answered", async () => {
    const { server, port } = await standaloneLane(5000, (req, res) => {
      if (req.url === '/204') res.writeHead(204, 'No Content', ['x-a', 'a']).end('a body');
      else if (req.url === '/304') res.writeHead(304, 'Not Modified', ['content-length', '55']).end('a body');
      else if (req.url === '/over') res.writeHead(200, 'OK', ['content-length', '2']).end('over');
      else if (req.url === '/short') res.writeHead(200, 'OK', ['content-length', '10']).end('short');
      else res.writeHead(200, 'OK', ['content-length', '2']).end('ok');
    });
    const pipelined = async (targets: string[]): Promise<string> => {
      const s = net.connect(port, '127.0.0.1');
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.once('connect', () => s.write(targets.map((t) => `GET ${t} HTTP/1.1\r\nHost: a\r\n\r\n`).join('')));
      await new Promise((r) => s.once('close', r));
      return undated(text);
    };
    const ok = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nDate: -\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nok';
    expect(await pipelined(['/204', '/304', '/ok', '/over', '/ok'])).toBe(
      'HTTP/1.1 204 No Content\r\nx-a: a\r\nDate: -\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n' +
        'HTTP/1.1 304 Not Modified\r\ncontent-length: 55\r\nDate: -\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n' +
        ok +
        // What was written goes out, then the cut: the client sees an answer short of its length, never a silent close.
        'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nDate: -\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n',
    );
    expect(await pipelined(['/ok', '/short', '/ok'])).toBe(ok + 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\nDate: -\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nshort');
    server.close();
  });
});
