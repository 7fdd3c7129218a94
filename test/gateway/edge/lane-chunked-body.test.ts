/**
 * Chunked request bodies on the HTTP/1.1 lane (its decoder gateway/wire/chunked-body.ts) against
 * Node's own server: the same seeded bytes, valid and malformed chunked bodies (test/helpers/chunked-bodies.ts)
 * split at random points across the client's writes, go to the gateway with the lane and to the
 * gateway with `--http1-server node`. Each client must get the same answer bytes, each model the
 * same decoded body, whole or aborted alike; and llhttp, Node's parser, says which bodies are whole.
 * Both serve a chunked request at its head and judge its body as it comes.
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { llhttp } from '../../../fuzz/llhttp.js';
import { seededRandom } from '../../../routing/table/pick.js';
import { fuzzSequence } from '../../helpers/random.js';
import { randomChunkedBody, randomSplit } from '../../helpers/chunked-bodies.js';

const PATH = '/seldon/m/plain/api/v1.0/predictions';
/**
 * The route kinds a chunked request goes to: a model's (served at its head, the body streamed to it),
 * one with no deployment (404 at once, before any body byte is judged) and a redirect Mapping (an
 * answer of the gateway's own, at once).
 */
const ROUTES = { model: PATH, missing: '/seldon/m/nowhere/api/v1.0/predictions', redirect: '/seldon/m/redirect/x' } as const;
const REDIRECT = `---
apiVersion: getambassador.io/v2
kind: Mapping
name: redirect
prefix: /seldon/m/redirect/
service: elsewhere.example.com
host_redirect: true`;
const HANDOFFS = 'seldon_gateway_http1_handoffs_total{reason="request_shape"}';

/** The model's answer names the case and what it got. */
function answer(req: RecordedRequest): { headers: [string, string][]; body: string } {
  return {
    headers: [['Content-Type', 'application/json']],
    body: JSON.stringify({ case: headerValue(req.headers, 'x-case') ?? '', bytes: req.body.length, sha: req.sha256 }),
  };
}

const undated = (text: string): string => text.replace(/\r\nDate: [^\r]*/g, '\r\nDate: -').replace(/\r\nx-envoy-upstream-service-time: [0-9]+/g, '\r\nx-envoy-upstream-service-time: -');

/** Write `pieces` one after the other (each its own write, a turn of the event loop apart), then read until the gateway closes. */
async function exchange(port: number, pieces: Buffer[]): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.setNoDelay(true);
  s.on('error', () => undefined);
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  // A close after a reset too (a refusal may cut the connection with bytes unread): the bytes before it are compared.
  const closed = new Promise((r) => s.once('close', r));
  for (const p of pieces) {
    s.write(p);
    await new Promise((r) => setImmediate(r));
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
  s.destroy();
  return text;
}

describe("chunked bodies: the lane and Node's server side by side, on the same seeded bytes", () => {
  let lane: TestGateway;
  let node: TestGateway;
  let laneModel: RecordingUpstream;
  let nodeModel: RecordingUpstream;

  beforeAll(async () => {
    laneModel = await startRecordingUpstream({ name: 'lane-model', responder: answer });
    nodeModel = await startRecordingUpstream({ name: 'node-model', responder: answer });
    const manifests = {
      'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }),
      'redirect.yaml': sdep('redirect', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': REDIRECT }),
    };
    const args = ['--client-header-timeout', '400ms', '--client-request-timeout', '800ms'];
    lane = await startTestGateway({ manifests, resolve: { 'plain-main.m:8000': laneModel.port }, args });
    node = await startTestGateway({ manifests, resolve: { 'plain-main.m:8000': nodeModel.port }, args: [...args, '--http1-server', 'node'] });
  });
  afterAll(async () => {
    await lane?.stop();
    await node?.stop();
    await laneModel?.close();
    await nodeModel?.close();
  });

  /**
   * The serve order, chosen to be Node's: a chunked request is served at its head and its body judged
   * as it comes. A route that answers at once (404, a redirect) has answered before a malformed body is
   * seen: that answer stands, nothing more is answered, and the connection closes (nginx, which
   * discards such a body, closes it the same way). On a model's route the malformed body is answered
   * on the request's own exchange (400, 413 for an extension flood), the model's request aborted.
   * Each probe goes in one write and split just after the head; the GET pipelined behind a refusal is
   * never served (nor behind a redirect, whose answer ends its connection on both servers).
   */
  const PROBES: [string, string, { model: number[]; missing: number[]; redirect: number[] }][] = [
    ['well formed, with a trailer', '3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n', { model: [200, 200], missing: [404, 404], redirect: [301] }],
    ['a chunk size over 64 bits', '10000000000000003\r\nabc\r\n0\r\n\r\n', { model: [400], missing: [404], redirect: [301] }],
    ['a chunk size with 0x', '0x3\r\nabc\r\n0\r\n\r\n', { model: [400], missing: [404], redirect: [301] }],
    ['a bare LF after the size', '3\nabc\r\n0\r\n\r\n', { model: [400], missing: [404], redirect: [301] }],
    ['a bare LF after the data', '3\r\nabc\n0\r\n\r\n', { model: [400], missing: [404], redirect: [301] }],
    ['data longer than its size (a request smuggled inside)', `3\r\nabcGET ${PATH} HTTP/1.1\r\nHost: gw\r\n\r\n\r\n0\r\n\r\n`, { model: [400], missing: [404], redirect: [301] }],
    ['a chunk extension flood (20 KB)', `3;${'e'.repeat(20_000)}\r\nabc\r\n0\r\n\r\n`, { model: [413], missing: [404], redirect: [301] }],
    ['many small extensions (names and values over 16 KiB in all)', `3${';ab=cd'.repeat(5000)}\r\nabc\r\n0\r\n\r\n`, { model: [413], missing: [404], redirect: [301] }],
    ['Content-Length in the trailer', '3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n', { model: [400], missing: [404], redirect: [301] }],
    ['Transfer-Encoding in the trailer', '3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n', { model: [400], missing: [404], redirect: [301] }],
    // Connection: close in the trailer: Node's server answers as the head said (keep-alive), then
    // reads nothing more (llhttp: data after `Connection: close`), so the GET behind it is not served.
    ['Connection: close in the trailer', '3\r\nabc\r\n0\r\nConnection: close\r\n\r\n', { model: [200], missing: [404], redirect: [301] }],
  ];

  it.each(PROBES)('%s: the same answers from both, at each route kind, whether the body comes with the head or after it', async (_what, body, expected) => {
    for (const kind of ['model', 'missing', 'redirect'] as const) {
      for (const split of [false, true]) {
        const id = `probe-${kind}-${split}-${_what.length}-${body.length}`;
        const head = `POST ${ROUTES[kind]} HTTP/1.1\r\nHost: gw\r\nX-Case: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n`;
        const next = `GET ${ROUTES[kind === 'redirect' ? 'missing' : kind]} HTTP/1.1\r\nHost: gw\r\nX-Case: ${id}-next\r\nConnection: close\r\n\r\n`;
        const pieces = (split ? [head, body + next] : [head + body + next]).map((t) => Buffer.from(t, 'latin1'));
        const [l, n] = (await Promise.all([lane, node].map(async (gw) => undated(await exchange(gw.port, pieces))))) as [string, string];
        const what = `${_what} to the ${kind} route${split ? ', the body after the head' : ''}`;
        expect(l, what).toBe(n);
        expect(
          [...l.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])),
          what,
        ).toEqual(expected[kind]);
        // The model never gets a refused body whole, nor the request behind a refusal.
        const whole = laneModel.requests.filter((q) => headerValue(q.headers, 'x-case')?.startsWith(id) === true && q.complete);
        expect(whole.length, what).toBe(kind === 'model' ? expected.model.filter((s) => s === 200).length : 0);
      }
    }
  });

  const { seed, cases: CASES } = fuzzSequence(200);
  const BATCH = 10;

  it(`${CASES} chunked requests (seed ${seed}): the same answer bytes, the same body at the model, whole exactly when llhttp reads it whole`, async () => {
    const r = seededRandom(seed);
    const handed = await metric(lane.adminUrl, HANDOFFS);
    const tally: Record<string, number> = {};
    const cases = Array.from({ length: CASES }, (_, i) => {
      const id = `c${seed}-${i}`;
      const { body, quirks } = randomChunkedBody(r);
      const kind = (['model', 'model', 'missing', 'redirect'] as const)[Math.floor(r() * 4)]!;
      quirks.push(kind);
      const request = `POST ${ROUTES[kind]} HTTP/1.1\r\nHost: gw\r\nX-Case: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
      const bytes = Buffer.from(`${request}GET ${PATH} HTTP/1.1\r\nHost: gw\r\nX-Case: ${id}-end\r\nConnection: close\r\n\r\n`, 'latin1');
      return { id, request, quirks, pieces: randomSplit(r, bytes) };
    });
    for (let b = 0; b < CASES; b += BATCH) {
      const batch = cases.slice(b, b + BATCH);
      const texts = await Promise.all(batch.flatMap(({ pieces }) => [lane, node].map((gw) => exchange(gw.port, pieces))));
      batch.forEach(({ id, request, quirks }, k) => {
        const what = `case ${id} (${quirks.join(', ') || 'plain'}): ${JSON.stringify(request.length > 300 ? `${request.slice(0, 300)}…` : request)}`;
        const [l, n] = [undated(texts[2 * k]!), undated(texts[2 * k + 1]!)];
        expect.soft(l, what).toBe(n);
        const at = (model: RecordingUpstream): RecordedRequest[] => model.requests.filter((q) => headerValue(q.headers, 'x-case') === id);
        const [mine, theirs] = [at(laneModel), at(nodeModel)];
        const oracle = llhttp(Buffer.from(request, 'latin1'));
        const whole = oracle.requests[0]?.complete === true;
        // (A model may have read a little more or less of an aborted body: the reads differ.)
        expect(
          mine.map((q) => (q.complete ? [q.body.toString('latin1'), true, q.chunked] : [false, q.chunked])),
          what,
        ).toEqual(theirs.map((q) => (q.complete ? [q.body.toString('latin1'), true, q.chunked] : [false, q.chunked])));
        // Whole at the model exactly when llhttp reads it whole, with llhttp's bytes.
        for (const q of mine) {
          if (q.complete) expect(q.body.toString('latin1'), what).toBe(oracle.requests[0]!.body);
          else expect(whole, what).toBe(false);
        }
        const status = /^HTTP\/1\.1 (\d{3})/.exec(l)?.[1] ?? 'none';
        tally[status] = (tally[status] ?? 0) + 1;
      });
    }
    // Every chunked request stayed on the lane; the sequence had bodies served and refused.
    expect(await metric(lane.adminUrl, HANDOFFS)).toBe(handed);
    expect(tally['200'] ?? 0, JSON.stringify(tally)).toBeGreaterThan(CASES / 4);
    expect(CASES - (tally['200'] ?? 0), JSON.stringify(tally)).toBeGreaterThan(CASES / 30);
    // The routes that answer at once answered (before the body was judged, on both servers alike).
    expect(tally['404'] ?? 0, JSON.stringify(tally)).toBeGreaterThan(CASES / 10);
    expect(tally['301'] ?? 0, JSON.stringify(tally)).toBeGreaterThan(CASES / 10);
  }, 300_000);
});
