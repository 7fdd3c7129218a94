/**
 * What a client or an upstream can send that once went wrong at the proxy, one test each, against a real gateway, raw sockets on 127.0.0.1 and recording
 * upstreams (test/fixtures/recording-upstream.ts). The worker-crash cases run against the real
 * CLI with one worker (`node dist/gateway/main.js serve`), where a crash is a worker exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectRaw,
  headerValue,
  headerValues,
  readHttpResponse,
  sha256,
  startRecordingUpstream,
  writeRequest,
  type Answer,
  type HeaderLine,
  type RawResponse,
  type RecordedRequest,
  type RecordingUpstream,
} from '../../fixtures/recording-upstream.js';
import { countWorkerExits } from '../../helpers/cli.js';
import { jsonOfSize } from '../../helpers/fidelity.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { fetchToken } from '../../helpers/oauth.js';
import { sleep, waitUntil } from '../../helpers/wait.js';
import { getText, metricSum, parseMetrics } from '../../helpers/observability.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const NS = 'f';
const PREDICT = '/api/v1.0/predictions';
const DATE = 'Mon, 01 Jan 2024 00:00:00 GMT';
const SMALL = Buffer.from('{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}');

/** One request on a fresh raw connection; the answer (null: none) and the connection. */
async function send(port: number, head: string, body: Buffer = Buffer.alloc(0), timeoutMs = 10_000): Promise<{ res: RawResponse | null; x: Awaited<ReturnType<typeof connectRaw>> }> {
  const x = await connectRaw(port);
  x.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  const res = await readHttpResponse(x.reader, { method: head.slice(0, head.indexOf(' ')), timeoutMs });
  return { res, x };
}

const post = (path: string, headers: string[], body: Buffer): string =>
  `POST ${path} HTTP/1.1\r\nHost: models.example.com\r\nContent-Type: application/json\r\n${headers.map((h) => `${h}\r\n`).join('')}Content-Length: ${body.length}\r\n\r\n`;

async function waitRequests(u: RecordingUpstream, id: string, n: number, ms: number): Promise<RecordedRequest[]> {
  const end = Date.now() + ms;
  while (u.byCase(id).length < n && Date.now() < end) await sleep(5);
  const got = u.byCase(id);
  await Promise.all(got.map((g) => Promise.race([g.bodyDone, sleep(3000)])));
  return got;
}

const ok = (name: string, extra: HeaderLine[] = []): Answer => ({
  statusLine: 'HTTP/1.1 200 OK',
  headers: [['Content-Type', 'application/json'], ['Date', DATE], ['X-Upstream', name], ...extra],
  body: JSON.stringify({ data: { ndarray: [[1]] }, meta: { tags: { upstream: name } } }),
});

describe('what clients and models send, through an in-process gateway', () => {
  const up: Record<string, RecordingUpstream> = {};
  let gw: TestGateway;
  let token = '';

  beforeAll(async () => {
    // Strict primaries behave like Seldon's Flask microservice: a short or non-JSON body is a 400.
    up.teeMain = await startRecordingUpstream({ name: 'tee-main', strict: true, responder: () => ok('tee-main') });
    up.teeCopy = await startRecordingUpstream({ name: 'tee-copy', strict: true, responder: () => ok('tee-copy') });
    up.plain = await startRecordingUpstream({ name: 'plain', responder: () => ok('plain') });
    up.early = await startRecordingUpstream({ name: 'early' });
    up.raw = await startRecordingUpstream({ name: 'raw' });
    up.big = await startRecordingUpstream({ name: 'big' });
    up.slow = await startRecordingUpstream({ name: 'slow', responder: () => ({ ...ok('slow'), delayMs: 300 }) });
    up.gated = await startRecordingUpstream({ name: 'gated', responder: () => ok('gated') });
    gw = await startTestGateway({
      manifests: {
        'tee.yaml': sdep('tee', NS, { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] }),
        'teer.yaml': sdep('teer', NS, { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] }, { 'seldon.io/ambassador-retries': '2' }),
        'plain.yaml': sdep('plain', NS, { predictors: [{ name: 'main' }] }),
        'early.yaml': sdep('early', NS, { predictors: [{ name: 'main' }] }),
        'raw.yaml': sdep('raw', NS, { predictors: [{ name: 'main' }] }),
        'big.yaml': sdep('big', NS, { predictors: [{ name: 'main' }] }),
        'bigr.yaml': sdep('bigr', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-retries': '3' }),
        'slow.yaml': sdep('slow', NS, { predictors: [{ name: 'main' }] }),
        'gated.yaml': sdep('gated', NS, { oauth_key: 'gk', oauth_secret: 'gs', predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-auth': 'oauth' }),
      },
      resolve: {
        [`tee-main.${NS}:8000`]: up.teeMain.port,
        [`tee-copy.${NS}:8000`]: up.teeCopy.port,
        [`teer-main.${NS}:8000`]: up.teeMain.port,
        [`teer-copy.${NS}:8000`]: up.teeCopy.port,
        [`plain-main.${NS}:8000`]: up.plain.port,
        [`early-main.${NS}:8000`]: up.early.port,
        [`raw-main.${NS}:8000`]: up.raw.port,
        [`big-main.${NS}:8000`]: up.big.port,
        [`bigr-main.${NS}:8000`]: up.big.port,
        [`slow-main.${NS}:8000`]: up.slow.port,
        [`gated-main.${NS}:8000`]: up.gated.port,
      },
      // Small limits so each body path of the tee is reached with small bodies.
      args: ['--shadow-max-body', '32KiB', '--retry-buffer', '8KiB'],
    });
    token = await fetchToken(gw.url, `gk${NS}`, 'gs');
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(Object.values(up).map((u) => u.close()));
  });

  describe('the shadow tee never empties the primary body', () => {
    /** Mirrors to the tee's shadow dropped for their body size, so far. */
    const droppedCopies = async (): Promise<number> =>
      metricSum(parseMetrics(await getText(`${gw.adminUrl}/metrics`)), 'seldon_gateway_shadow_requests_total', { deployment: 'tee', predictor: 'copy', result: 'dropped_body_size' });

    /** Send, then check: 200 from the primary, which got every byte, and the mirror's copy (if due). */
    async function shadowed(path: string, id: string, body: Buffer, framing: 'cl' | 'chunked', mirrored: boolean): Promise<void> {
      const droppedBefore = await droppedCopies();
      const x = await connectRaw(gw.port);
      try {
        await writeRequest(x, {
          target: path,
          headers: [
            ['Host', 'models.example.com'],
            ['Content-Type', 'application/json'],
            ['X-Case', id],
          ],
          body,
          framing,
          chunkSize: 1000,
        });
        const res = await readHttpResponse(x.reader, { method: 'POST', timeoutMs: 10_000 });
        expect(res, 'an answer').not.toBeNull();
        expect(`${res?.status} ${res?.body.toString().slice(0, 200)}`).toBe(`200 ${JSON.stringify({ data: { ndarray: [[1]] }, meta: { tags: { upstream: 'tee-main' } } })}`);
        const main = await waitRequests(up.teeMain!, id, 1, 2000);
        expect(main.length).toBe(1);
        expect({ complete: main[0]!.complete, bytes: main[0]!.body.length, sha256: main[0]!.sha256 }, 'what the primary got').toEqual({ complete: true, bytes: body.length, sha256: sha256(body) });
        if (mirrored) {
          const copy = await waitRequests(up.teeCopy!, id, 1, 3000);
          expect(copy.length, 'the shadow got a copy').toBe(1);
          expect({ bytes: copy[0]!.body.length, sha256: copy[0]!.sha256 }, 'what the shadow got').toEqual({ bytes: body.length, sha256: sha256(body) });
        } else {
          // Counted as dropped: decided, never sent.
          await waitUntil(async () => (await droppedCopies()) > droppedBefore);
          expect(up.teeCopy!.byCase(id).length, 'no copy over --shadow-max-body').toBe(0);
        }
      } finally {
        x.socket.destroy();
      }
    }

    it('streaming path, Content-Length: the primary gets the whole body (the quick start churn case)', async () => {
      await shadowed(`/seldon/${NS}/tee${PREDICT}`, 'tee-cl', SMALL, 'cl', true);
    });

    it('streaming path, chunked: the primary gets the whole body', async () => {
      await shadowed(`/seldon/${NS}/tee${PREDICT}`, 'tee-chunked', jsonOfSize(20_000), 'chunked', true);
    });

    it('over --shadow-max-body: 200 from the primary with the whole body, not 503 UND_ERR_REQ_CONTENT_LENGTH_MISMATCH; no mirror', async () => {
      await shadowed(`/seldon/${NS}/tee${PREDICT}`, 'tee-over-mirror', jsonOfSize(64 * 1024), 'cl', false);
    });

    it('buffered for retries (route with retries): the primary and the shadow get the whole body', async () => {
      await shadowed(`/seldon/${NS}/teer${PREDICT}`, 'teer-buffered', jsonOfSize(4000), 'cl', true);
    });

    it('over --retry-buffer on a route with retries and a shadow: the primary gets the whole body', async () => {
      const body = jsonOfSize(16 * 1024);
      const x = await connectRaw(gw.port);
      try {
        await writeRequest(x, {
          target: `/seldon/${NS}/teer${PREDICT}`,
          headers: [
            ['Host', 'h'],
            ['Content-Type', 'application/json'],
            ['X-Case', 'teer-over-retry'],
          ],
          body,
          framing: 'cl',
        });
        const res = await readHttpResponse(x.reader, { method: 'POST', timeoutMs: 10_000 });
        expect(res?.status, res?.body.toString()).toBe(200);
        const main = await waitRequests(up.teeMain!, 'teer-over-retry', 1, 2000);
        expect({ n: main.length, complete: main[0]?.complete, sha256: main[0]?.sha256 }).toEqual({ n: 1, complete: true, sha256: sha256(body) });
      } finally {
        x.socket.destroy();
      }
    });

    it('60 shadowed requests in a row on one keep-alive connection: 60 answers 200 from the primary', async () => {
      const x = await connectRaw(gw.port);
      const statuses: number[] = [];
      try {
        for (let i = 0; i < 60; i++) {
          await writeRequest(x, {
            target: `/seldon/${NS}/tee${PREDICT}`,
            headers: [
              ['Host', 'h'],
              ['Content-Type', 'application/json'],
              ['X-Case', `tee-run-${i}`],
            ],
            body: SMALL,
            framing: 'cl',
          });
          const res = await readHttpResponse(x.reader, { method: 'POST', timeoutMs: 5000 });
          statuses.push(res?.status ?? 0);
          if (res === null) break;
        }
      } finally {
        x.socket.destroy();
      }
      expect(statuses.filter((s) => s !== 200).length, `statuses: ${statuses.join(',')}`).toBe(0);
      expect(statuses.length).toBe(60);
    });
  });

  describe('keep-alive after an early answer to a large body', () => {
    for (const variant of ['upstream keeps reading', 'upstream closes'] as const) {
      it(`${variant}: the next request on the client connection is answered (or the connection closed) promptly, 3 of 3 runs`, async () => {
        up.early!.setResponder(
          () => ({
            early: true,
            drainAfterEarly: variant === 'upstream keeps reading',
            statusLine: 'HTTP/1.1 400 BAD REQUEST',
            headers: [
              ['Content-Type', 'application/json'],
              ['Date', DATE],
            ],
            body: JSON.stringify({ status: { code: -1, info: 'rejected before reading', reason: 'MICROSERVICE_BAD_DATA', status: 'FAILURE' } }),
            ...(variant === 'upstream closes' ? { close: true } : {}),
          }),
          true,
        );
        const body = jsonOfSize(2 * 1024 * 1024);
        const outcomes: string[] = [];
        for (let run = 0; run < 3; run++) {
          const x = await connectRaw(gw.port);
          try {
            x.socket.write(Buffer.from(post(`/seldon/${NS}/early${PREDICT}`, [`X-Case: early-${variant}-${run}`], body), 'latin1'));
            x.socket.write(body);
            x.socket.write(`GET /seldon/${NS}/plain/ping HTTP/1.1\r\nHost: h\r\nX-Case: early-next-${run}\r\n\r\n`);
            const first = await readHttpResponse(x.reader, { method: 'POST', timeoutMs: 5000 });
            const t0 = Date.now();
            const second = first === null ? null : await readHttpResponse(x.reader, { method: 'GET', timeoutMs: 3000 });
            const waited = Date.now() - t0;
            const closed = x.reader.ended;
            outcomes.push(`${first?.status ?? 'none'}/${second ? second.status : closed && waited < 3000 ? 'closed' : 'stalled'}`);
          } finally {
            x.socket.destroy();
          }
        }
        expect(
          outcomes.every((o) => o === '400/200' || o === '400/closed'),
          outcomes.join(' '),
        ).toBe(true);
      }, 90_000);
    }
  });

  it('a 304 with Content-Length reaches the client as it was answered, and the connection stays usable', async () => {
    up.raw!.setResponder(() => ({
      statusLine: 'HTTP/1.1 304 Not Modified',
      headers: [
        ['ETag', '"v1"'],
        ['Date', DATE],
        ['Content-Length', '1234'],
        ['Cache-Control', 'max-age=60'],
      ],
      framing: 'none',
    }));
    const x = await connectRaw(gw.port);
    try {
      x.socket.write(`GET /seldon/${NS}/raw/api/v1.0/metadata HTTP/1.1\r\nHost: h\r\nIf-None-Match: "v1"\r\n\r\n`);
      const res = await readHttpResponse(x.reader, { method: 'GET', timeoutMs: 5000 });
      expect(res?.statusLine).toBe('HTTP/1.1 304 Not Modified');
      // The gateway's own fields (its hop-by-hop ones, the upstream's time) aside, the model's as it answered.
      expect(res?.headers.filter(([k]) => !['connection', 'keep-alive', 'x-envoy-upstream-service-time'].includes(k.toLowerCase()))).toEqual([
        ['ETag', '"v1"'],
        ['Date', DATE],
        ['Content-Length', '1234'],
        ['Cache-Control', 'max-age=60'],
      ]);
      up.raw!.setResponder(() => ok('raw'));
      x.socket.write(`GET /seldon/${NS}/raw/again HTTP/1.1\r\nHost: h\r\n\r\n`);
      const again = await readHttpResponse(x.reader, { method: 'GET', timeoutMs: 3000 });
      expect(again?.status, 'the next request on the connection').toBe(200);
    } finally {
      x.socket.destroy();
      up.raw!.setResponder(undefined);
    }
  });

  it('Transfer-Encoding: gzip, chunked is refused with 501 and never forwarded', async () => {
    const before = up.plain!.requests.length;
    const gz = Buffer.from('1f8b0800000000000003abae0500', 'hex');
    const { res, x } = await send(
      gw.port,
      `POST /seldon/${NS}/plain${PREDICT} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${gz.length.toString(16)}\r\n`,
      Buffer.concat([gz, Buffer.from('\r\n0\r\n\r\n')]),
    );
    x.socket.destroy();
    expect(res?.status).toBe(501);
    // Then one that is forwarded: once it has been answered, anything forwarded before it has arrived too.
    const after = await send(gw.port, post(`/seldon/${NS}/plain${PREDICT}`, ['X-Case: after-gzip'], SMALL), SMALL);
    after.x.socket.destroy();
    expect(after.res?.status).toBe(200);
    expect(up.plain!.requests.length - before - 1, 'requests forwarded').toBe(0);
  });

  describe('more request header lines than the limit: 431, never truncated', () => {
    const lines = (n: number): string => 'a: 1\r\n'.repeat(n);
    it('1,100 header lines: 431', async () => {
      const before = up.plain!.requests.length;
      const { res, x } = await send(gw.port, `POST /seldon/${NS}/plain${PREDICT} HTTP/1.1\r\nHost: h\r\n${lines(1100)}Content-Length: 2\r\n\r\n`, Buffer.from('{}'));
      x.socket.destroy();
      expect(res?.status).toBe(431);
      expect(up.plain!.requests.length - before, 'requests forwarded').toBe(0);
    });
    it('2,100 header lines with a second Host beyond the cut: 431 (not routed by the first Host)', async () => {
      const before = up.plain!.requests.length;
      const { res, x } = await send(gw.port, `POST /seldon/${NS}/plain${PREDICT} HTTP/1.1\r\nHost: h\r\n${lines(2100)}Host: evil.example\r\nContent-Length: 2\r\n\r\n`, Buffer.from('{}'));
      x.socket.destroy();
      expect(res?.status).toBe(431);
      expect(up.plain!.requests.length - before, 'requests forwarded').toBe(0);
    });
    it('2,100 header lines with the Authorization beyond the cut: 431 (not 401 for a lost credential)', async () => {
      const before = up.gated!.requests.length;
      const { res, x } = await send(gw.port, `POST /seldon/${NS}/gated${PREDICT} HTTP/1.1\r\nHost: h\r\n${lines(2100)}Authorization: Bearer ${token}\r\nContent-Length: 2\r\n\r\n`, Buffer.from('{}'));
      x.socket.destroy();
      expect(res?.status).toBe(431);
      expect(up.gated!.requests.length - before, 'requests forwarded').toBe(0);
      // The same token with few headers is let through (the test's own control).
      const { res: control, x: x2 } = await send(gw.port, `POST /seldon/${NS}/gated${PREDICT} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ${token}\r\nContent-Length: 2\r\n\r\n`, Buffer.from('{}'));
      x2.socket.destroy();
      expect(control?.status).toBe(200);
    });
  });

  describe('large upstream response heads', () => {
    const bigAnswer = (req: RecordedRequest): Answer => ({
      ...ok('big', [['X-Big', 'b'.repeat(Number(headerValue(req.headers, 'x-head-bytes') ?? '0'))]]),
    });
    for (const [route, retries] of [
      ['big', 0],
      ['bigr', 3],
    ] as const) {
      it(`${route} (retries ${retries}): a 30 KiB header passes intact; a 70 KiB one is 502; the POST is executed once either way`, async () => {
        up.big!.setResponder(bigAnswer);
        try {
          for (const [bytes, status] of [
            [30 * 1024, 200],
            [70 * 1024, 502],
          ] as const) {
            const id = `big-${route}-${bytes}`;
            const { res, x } = await send(gw.port, post(`/seldon/${NS}/${route}${PREDICT}`, [`X-Case: ${id}`, `X-Head-Bytes: ${bytes}`], SMALL), SMALL);
            x.socket.destroy();
            expect(res?.status, `${bytes} B header: ${res?.body.toString().slice(0, 200)}`).toBe(status);
            if (status === 200) expect(headerValue(res?.headers ?? [], 'x-big')?.length).toBe(bytes);
            else expect(JSON.parse(res?.body.toString() ?? '{}')).toMatchObject({ status: { code: 502, status: 'FAILURE' } });
            // The client's answer is the last attempt's: any retry came before it.
            expect(up.big!.byCase(id).length, 'upstream executions').toBe(1);
          }
        } finally {
          up.big!.setResponder(undefined);
        }
      });
    }
  });

  it('headers named in a response Connection header do not reach the client', async () => {
    up.raw!.setResponder(() =>
      ok('raw', [
        ['Connection', 'X-Secret, x-other'],
        ['X-Secret', 's'],
        ['X-Other', 'o'],
        ['X-Kept', 'k'],
      ]),
    );
    try {
      const { res, x } = await send(gw.port, post(`/seldon/${NS}/raw${PREDICT}`, [], SMALL), SMALL);
      x.socket.destroy();
      expect(res?.status).toBe(200);
      expect(headerValues(res?.headers ?? [], 'x-kept')).toEqual(['k']);
      expect(headerValues(res?.headers ?? [], 'x-secret'), 'X-Secret').toEqual([]);
      expect(headerValues(res?.headers ?? [], 'x-other'), 'X-Other').toEqual([]);
    } finally {
      up.raw!.setResponder(undefined);
    }
  });

  it('an absolute-form request target is accepted and routed like origin-form', async () => {
    const id = 'absolute-form';
    const { res, x } = await send(
      gw.port,
      `POST http://models.example.com/seldon/${NS}/plain${PREDICT}?q=1 HTTP/1.1\r\nHost: models.example.com\r\nX-Case: ${id}\r\nContent-Type: application/json\r\nContent-Length: ${SMALL.length}\r\n\r\n`,
      SMALL,
    );
    x.socket.destroy();
    expect(res?.status, res?.body.toString()).toBe(200);
    const got = await waitRequests(up.plain!, id, 1, 2000);
    expect(got.length).toBe(1);
    expect(got[0]!.target).toBe(`${PREDICT}?q=1`);
    expect(headerValues(got[0]!.headers, 'x-envoy-original-path')).toEqual([`/seldon/${NS}/plain${PREDICT}?q=1`]);
    expect(got[0]!.sha256).toBe(sha256(SMALL));
  });

  it('Connection: close with trailing bytes after the request: the in-flight answer still arrives', async () => {
    const { res, x } = await send(
      gw.port,
      `POST /seldon/${NS}/slow${PREDICT} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${SMALL.length}\r\n\r\n`,
      Buffer.concat([SMALL, Buffer.from('GARBAGE AFTER THE REQUEST\r\n\r\n')]),
    );
    x.socket.destroy();
    expect(res?.statusLine).toBe('HTTP/1.1 200 OK');
    expect(headerValue(res?.headers ?? [], 'x-upstream')).toBe('slow');
  });
});

// ---------------------------------------------------------------------------------------------

describe('against the real CLI with one worker: no upstream answer or bad deployment crashes a worker', () => {
  const up: Record<string, RecordingUpstream> = {};
  let child: ChildProcess;
  let port = 0;
  let dir = '';
  let out = '';

  beforeAll(async () => {
    up.cafe = await startRecordingUpstream({
      name: 'cafe',
      responder: (req) => ({
        // The reason phrase's é as Latin-1 (0xE9) or UTF-8 (0xC3 0xA9): obs-text either way.
        statusLine: Buffer.concat([Buffer.from('HTTP/1.1 200 caf'), headerValue(req.headers, 'x-enc') === 'utf8' ? Buffer.from([0xc3, 0xa9]) : Buffer.from([0xe9])]),
        headers: [
          ['Content-Type', 'application/json'],
          ['Date', DATE],
        ],
        body: '{"cafe":true}',
      }),
    });
    up.stream = await startRecordingUpstream({
      name: 'stream',
      responder: () => ({
        headers: [
          ['Content-Type', 'application/octet-stream'],
          ['Date', DATE],
        ],
        body: Buffer.alloc(60 * 1024, 0x73),
        framing: 'chunked',
        chunkSize: 1024,
        dripMs: 50,
      }),
    });
    up.plain = await startRecordingUpstream({ name: 'plain', responder: () => ok('plain') });
    dir = mkdtempSync(join(tmpdir(), 'sgw-findings-'));
    const bad = (name: string, predictor: Record<string, unknown>): string => sdep(name, NS, { predictors: [predictor] });
    // A short route timeout: today the crash comes from the timeout's error answer, after writeHead threw.
    writeFileSync(join(dir, 'cafe.yaml'), sdep('cafe', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/rest-timeout': '1000' }));
    writeFileSync(join(dir, 'stream.yaml'), sdep('stream', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/rest-timeout': '20000' }));
    writeFileSync(join(dir, 'plain.yaml'), sdep('plain', NS, { predictors: [{ name: 'main' }] }));
    writeFileSync(join(dir, 'port70000.yaml'), bad('port70000', { name: 'main', annotations: { 'seldon.io/no-engine': 'true' }, graph: { name: 'm', endpoint: { httpPort: 70000 } } }));
    writeFileSync(join(dir, 'portneg.yaml'), bad('portneg', { name: 'main', annotations: { 'seldon.io/no-engine': 'true' }, graph: { name: 'm', endpoint: { httpPort: -1 } } }));
    writeFileSync(join(dir, 'spacename.yaml'), bad('spacename', { name: 'a b' }));
    writeFileSync(join(dir, 'explport.yaml'), bad('explport', { name: 'main', explainer: { type: 'AnchorTabular', endpoint: { service_port: 70000 } } }));
    port = await freePort();
    const admin = await freePort();
    child = spawn(
      process.execPath,
      [
        join(root, 'dist/gateway/main.js'),
        'serve',
        '--manifests',
        dir,
        '--port',
        String(port),
        '--admin-port',
        String(admin),
        '--host',
        '127.0.0.1',
        '--workers',
        '1',
        '--log-level',
        'info',
        '--resolve',
        `cafe-main.${NS}:8000=127.0.0.1:${up.cafe.port}`,
        '--resolve',
        `stream-main.${NS}:8000=127.0.0.1:${up.stream.port}`,
        '--resolve',
        `plain-main.${NS}:8000=127.0.0.1:${up.plain.port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 45_000;
    for (;;) {
      try {
        const r = await request(`http://127.0.0.1:${admin}/readyz`);
        await r.body.text();
        if (r.statusCode === 200) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`gateway did not become ready:\n${out}`);
      await sleep(100);
    }
  }, 90_000);
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await Promise.all(Object.values(up).map((u) => u.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const workerExits = (): number => countWorkerExits(out);

  /** Each test starts on a serving gateway (an earlier test may have made it replace a worker). */
  async function serving(): Promise<void> {
    const end = Date.now() + 10_000;
    for (;;) {
      try {
        const r = await request(`http://127.0.0.1:${port}/seldon/${NS}/plain${PREDICT}`, { method: 'POST', body: SMALL });
        await r.body.text();
        if (r.statusCode === 200) return;
      } catch {
        /* a worker is starting */
      }
      if (Date.now() > end) throw new Error('the gateway is not serving');
      await sleep(100);
    }
  }

  it('a non-ASCII reason phrase neither crashes the worker nor cuts a stream in flight on another route', async () => {
    await serving();
    const exitsBefore = workerExits();
    // A stream on another route, in flight for about 3 s.
    const streams = up.stream!.requests.length;
    const streaming = (async () => {
      const x = await connectRaw(port);
      try {
        x.socket.write(`GET /seldon/${NS}/stream/big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);
        return await readHttpResponse(x.reader, { method: 'GET', timeoutMs: 15_000 });
      } finally {
        x.socket.destroy();
      }
    })();
    // Under way: at its upstream.
    await waitUntil(async () => up.stream!.requests.length > streams);
    const answers = await Promise.all(
      ['latin1', 'utf8'].map(async (enc) => {
        // Waits past the route timeout (1 s).
        const { res, x } = await send(port, post(`/seldon/${NS}/cafe${PREDICT}`, [`X-Enc: ${enc}`], SMALL), SMALL, 2500);
        x.socket.destroy();
        return res;
      }),
    );
    // The stream lasts about 3 s, past the 1 s route timeout whose error answer used to crash the worker: an exit would be in the log by now.
    const stream = await streaming;
    expect({ status: stream?.status, complete: stream?.complete, bytes: stream?.body.length }, 'the stream on the other route').toEqual({ status: 200, complete: true, bytes: 60 * 1024 });
    for (const [i, res] of answers.entries()) {
      expect(res?.status, `cafe answer ${i}`).toBe(200);
      expect(res?.body.toString()).toBe('{"cafe":true}');
      // The reason phrase is passed as the upstream's bytes, or replaced by the standard one.
      const reason = res?.statusLineBytes.subarray('HTTP/1.1 200 '.length) ?? Buffer.alloc(0);
      expect([Buffer.from([0x63, 0x61, 0x66, 0xe9]).toString('hex'), Buffer.from('caf\u00e9').toString('hex'), Buffer.from('OK').toString('hex')]).toContain(reason.toString('hex'));
    }
    expect(child.exitCode, 'the gateway process').toBeNull();
    expect(
      workerExits() - exitsBefore,
      `worker exits:\n${out
        .split('\n')
        .filter((l) => /exit|error/i.test(l))
        .join('\n')
        .slice(0, 2000)}`,
    ).toBe(0);
  }, 90_000);

  for (const name of ['port70000', 'portneg', 'spacename', 'explport']) {
    it(`a deployment with an invalid upstream (${name}) gets a Seldon-style error, the worker lives, other routes answer`, async () => {
      await serving();
      const exitsBefore = workerExits();
      const path = name === 'explport' ? `/seldon/${NS}/${name}-explainer/main/api/v1.0/explain` : `/seldon/${NS}/${name}${PREDICT}`;
      const { res, x } = await send(port, post(path, [], SMALL), SMALL, 5000);
      x.socket.destroy();
      expect(res, 'an answer to the request').not.toBeNull();
      expect(res!.status).toBeGreaterThanOrEqual(400);
      const body = JSON.parse(res!.body.toString()) as { status?: { status?: string; reason?: string; code?: number } };
      expect(body.status?.status).toBe('FAILURE');
      expect(typeof body.status?.reason).toBe('string');
      const plain = await send(port, post(`/seldon/${NS}/plain${PREDICT}`, [], SMALL), SMALL, 5000);
      plain.x.socket.destroy();
      expect(plain.res?.status, 'an unrelated route').toBe(200);
      expect(child.exitCode, 'the gateway process').toBeNull();
      expect(
        workerExits() - exitsBefore,
        `worker exits:\n${out
          .split('\n')
          .filter((l) => /exit|error/i.test(l))
          .join('\n')
          .slice(0, 2000)}`,
      ).toBe(0);
    });
  }
});
