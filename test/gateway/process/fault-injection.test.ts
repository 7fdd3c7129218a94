/**
 * Fault injection through the real CLI: one gateway with 2 workers and a
 * small descriptor limit (`ulimit -n`) serves a healthy deployment `good` to a steady client
 * loop on keep-alive connections opened beforehand, while, in turn,
 *   1. bad SeldonDeployments are written into the watched directory (ports out of range, names
 *      that cannot be a Service host, a header regex too costly to match, a 5,000-level nested
 *      file, 10,000 predictors): each is
 *      rejected in the admin /routes with its reason, and requests to it get a Seldon-style error;
 *   2. the `hostile` deployment's upstream answers badly (a Latin-1 reason phrase, a 70 KiB
 *      header, a reset mid-body, a 304 with Content-Length, a garbage status line);
 *   3. the public port is sent raw connections until the gateway drops some and both workers
 *      stop accepting (descriptor exhaustion): new connections are refused, /readyz goes 503,
 *      and once the connections close, 200 again and new connections are served.
 * Throughout, the loop to `good` must not fail once, no worker may exit, and the gateway exits 0
 * on SIGTERM at the end.
 *
 * The loop's connections (and the gateway's upstream connections to `good`) exist before the
 * trouble starts: while a process is out of descriptors it can neither accept a client nor
 * connect to an upstream. So the loop keeps them busy, and `good` keeps idle connections for 60 s
 * (Node's default of 5 s would have the gateway's pool drop them and need new ones).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import {
  connectRaw,
  headerValue,
  readHttpResponse,
  startRecordingUpstream,
  writeRequest,
  type Answer,
  type HeaderLine,
  type RawExchange,
  type RawResponse,
  type RecordingUpstream,
} from '../../fixtures/recording-upstream.js';
import { countWorkerExits, poll, readyz, startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { sleep } from '../../helpers/wait.js';

const NS = 'fi';
const WORKERS = 2;
/** Descriptors per gateway process: a few hundred connections exhaust both workers. */
const LIMIT = 160;
/** At most this many raw connections to reach exhaustion (usually about 450 do; those a worker
 * drops before it notices it is out do not count against the others). */
const MAX_OPENED = 3 * LIMIT * WORKERS;
const PREDICT = '/api/v1.0/predictions';
const BODY = Buffer.from('{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}');
const DATE = 'Mon, 01 Jan 2024 00:00:00 GMT';

const predictPath = (deployment: string): string => `/seldon/${NS}/${deployment}${PREDICT}`;
const requestHeaders = (extra: HeaderLine[] = []): HeaderLine[] => [['Host', 'models.example.com'], ['Content-Type', 'application/json'], ...extra];

/** A raw connection, or the reason it could not be opened within `ms` (one that comes later is closed). */
async function connectWithin(port: number, ms: number): Promise<RawExchange | string> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const attempt = connectRaw(port).then((x) => {
    if (late) x.socket.destroy();
    return x;
  });
  try {
    return await Promise.race([
      attempt,
      new Promise<string>((resolve) => {
        timer = setTimeout(() => {
          late = true;
          resolve(`no connection within ${ms} ms`);
        }, ms);
      }),
    ]);
  } catch (err) {
    return `connect: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  } finally {
    clearTimeout(timer);
    attempt.catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// The steady client: `concurrency` keep-alive connections, each sending one prediction after
// another. Any answer but a complete 200 from `good`, any error, timeout or closed connection is
// a failure, recorded with the phase it happened in.

interface SteadyOptions {
  concurrency: number;
  /** Bounds: whichever comes first ends the loop. */
  maxRequests: number;
  maxMs: number;
  timeoutMs: number;
  pauseMs: number;
  /** The backend name a good answer carries in meta.tags.backend. */
  backend: string;
}

class SteadyLoop {
  phase = 'warm-up';
  readonly failures: string[] = [];
  /** Good answers per phase. */
  readonly ok = new Map<string, number>();
  attempts = 0;
  maxLatencyMs = 0;
  endedBy: 'stop' | 'count' | 'time' | undefined;
  private stopping = false;
  private readonly conns: (RawExchange | undefined)[] = [];
  private runs: Promise<void>[] = [];
  private deadline = 0;

  constructor(
    private readonly port: number,
    private readonly path: string,
    private readonly o: SteadyOptions,
  ) {}

  /** Open the connections and send one request on each: they exist before the trouble starts. */
  async warm(): Promise<void> {
    this.deadline = Date.now() + this.o.maxMs;
    await Promise.all(Array.from({ length: this.o.concurrency }, (_, i) => this.exchange(i)));
  }

  start(): void {
    this.runs = Array.from({ length: this.o.concurrency }, (_, i) => this.run(i));
  }

  /** Resolves when the loop ends by its own bounds. */
  async finished(): Promise<void> {
    await Promise.all(this.runs);
  }

  /** Stop (the requests in flight finish) and close the connections. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.runs);
    this.endedBy ??= 'stop';
    for (const x of this.conns) x?.socket.destroy();
  }

  /** Resolves once `n` good answers came in the current phase (or `ms` passed: false). */
  async okInPhase(n: number, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while ((this.ok.get(this.phase) ?? 0) < n) {
      if (Date.now() > end || this.endedBy !== undefined) return false;
      await sleep(20);
    }
    return true;
  }

  private async run(i: number): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      if (this.attempts >= this.o.maxRequests) {
        this.endedBy ??= 'count';
        return;
      }
      if (Date.now() > this.deadline) {
        this.endedBy ??= 'time';
        return;
      }
      await this.exchange(i);
      await sleep(this.o.pauseMs); // the loop's pace: a client's think time between requests
    }
  }

  private fail(i: number, why: string): void {
    this.failures.push(`[${this.phase}] connection ${i}: ${why}`);
    this.conns[i]?.socket.destroy();
    this.conns[i] = undefined;
  }

  /** One request on connection i (opened first if it is not open). */
  private async exchange(i: number): Promise<void> {
    this.attempts++;
    let x = this.conns[i];
    if (x === undefined || x.socket.destroyed || x.reader.ended) {
      if (x !== undefined) this.fail(i, 'the gateway closed the connection between requests');
      const c = await connectWithin(this.port, this.o.timeoutMs);
      if (typeof c === 'string') {
        this.fail(i, c);
        await sleep(100); // a client's back-off before it reconnects
        return;
      }
      // Head and body go out as two writes: without this, Nagle holds the body for the ACK.
      c.socket.setNoDelay(true);
      this.conns[i] = x = c;
    }
    const started = performance.now();
    let res: RawResponse | null;
    try {
      await writeRequest(x, { target: this.path, headers: requestHeaders(), body: BODY });
      res = await readHttpResponse(x.reader, { timeoutMs: this.o.timeoutMs });
    } catch (err) {
      this.fail(i, `error: ${String(err)}`);
      return;
    }
    const ms = performance.now() - started;
    this.maxLatencyMs = Math.max(this.maxLatencyMs, ms);
    if (res === null) return this.fail(i, `no answer within ${this.o.timeoutMs} ms (${x.reader.error?.message ?? (x.reader.ended ? 'connection ended' : 'timeout')})`);
    if (res.status !== 200 || !res.complete) return this.fail(i, `${res.statusLine} (complete: ${res.complete}) ${res.body.toString().slice(0, 200)}`);
    let backend: unknown;
    try {
      backend = (JSON.parse(res.body.toString()) as { meta?: { tags?: { backend?: unknown } } }).meta?.tags?.backend;
    } catch {
      backend = undefined;
    }
    if (backend !== this.o.backend) return this.fail(i, `an answer not from ${this.o.backend}: ${res.body.toString().slice(0, 200)}`);
    if (headerValue(res.headers, 'connection')?.toLowerCase() === 'close') return this.fail(i, 'answered with Connection: close');
    this.ok.set(this.phase, (this.ok.get(this.phase) ?? 0) + 1);
  }
}

// ---------------------------------------------------------------------------------------------

interface RoutesJson {
  deployments: { namespace: string; name: string; state: string; reasons: string[] }[];
  sourceProblems: Record<string, string>;
}

async function routes(admin: number): Promise<RoutesJson> {
  const r = await request(`http://127.0.0.1:${admin}/routes`, { headersTimeout: 5000, bodyTimeout: 5000 });
  return (await r.body.json()) as RoutesJson;
}

/** The sum of a metric's samples (those whose labels include `labels`) in the admin /metrics, summed over the workers. */
async function metric(admin: number, name: string, labels = ''): Promise<number> {
  const r = await request(`http://127.0.0.1:${admin}/metrics`, { headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await r.body.text();
  if (!text.includes(`# HELP ${name} `)) throw new Error(`no metric ${name} in /metrics`);
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
  }
  return sum;
}

/** One request on a fresh connection (closed afterwards): the answer, or null. */
async function once(port: number, path: string, extra: HeaderLine[] = [], timeoutMs = 5000): Promise<RawResponse | null> {
  const x = await connectRaw(port);
  try {
    await writeRequest(x, { target: path, headers: requestHeaders([...extra, ['Connection', 'close']]), body: BODY });
    return await readHttpResponse(x.reader, { timeoutMs });
  } finally {
    x.socket.destroy();
  }
}

/** A Seldon-style error body: `{"status":{"status":"FAILURE","reason":…,"info":…}}`, or a description of what it is instead. */
function seldonError(res: RawResponse | null): { status: number; reason: string; info: string } | string {
  if (res === null) return 'no answer';
  try {
    const s = (JSON.parse(res.body.toString()) as { status?: { status?: unknown; reason?: unknown; info?: unknown } }).status;
    if (s?.status === 'FAILURE' && typeof s.reason === 'string' && typeof s.info === 'string') return { status: res.status, reason: s.reason, info: s.info };
  } catch {
    /* below */
  }
  return `${res.statusLine}: ${res.body.toString().slice(0, 200)}`;
}

/** Each bad answer shape of the hostile upstream, by the request's `x-case`. */
const HOSTILE: Record<string, Answer> = {
  latin1: {
    statusLine: Buffer.from('HTTP/1.1 200 caf\xe9', 'latin1'),
    headers: [
      ['Content-Type', 'application/json'],
      ['Date', DATE],
    ],
    body: '{"cafe":true}',
  },
  'huge-header': {
    headers: [
      ['Content-Type', 'application/json'],
      ['X-Huge', 'h'.repeat(70 * 1024)],
    ],
    body: '{}',
  },
  'reset-mid-body': {
    headers: [
      ['Content-Type', 'application/json'],
      ['Content-Length', '4096'],
    ],
    body: '{"data":{"ndarray":[[1',
    framing: 'none',
    resetAfter: true,
  },
  '304-with-length': {
    statusLine: 'HTTP/1.1 304 Not Modified',
    headers: [
      ['ETag', '"v1"'],
      ['Date', DATE],
      ['Content-Length', '1234'],
    ],
    framing: 'none',
  },
  garbage: { raw: Buffer.from('\x00\x01GARBAGE/9.9 ??? nonsense\r\nfoo\r\n\r\n', 'latin1') },
};

describe('fault injection: traffic to an unrelated deployment survives bad deployments, bad answers and descriptor exhaustion', () => {
  let good: HttpBackend;
  let hostile: RecordingUpstream;
  let gw: CliGateway;
  let dir = '';
  let staging = '';
  let loop: SteadyLoop;

  /** Put a manifest into the watched directory at once (written beside it, then renamed). */
  const place = (file: string, text: string): void => {
    writeFileSync(join(staging, file), text);
    renameSync(join(staging, file), join(dir, file));
  };

  beforeAll(async () => {
    good = await startHttpBackend({ name: 'good' });
    // Idle keep-alive connections stay 60 s (the gateway's pool follows the Keep-Alive hint).
    good.server.keepAliveTimeout = 60_000;
    hostile = await startRecordingUpstream({
      name: 'hostile',
      responder: (req) => HOSTILE[headerValue(req.headers, 'x-case') ?? ''] ?? { body: '{"hostile":"default"}' },
    });
    dir = mkdtempSync(join(tmpdir(), 'sgw-fault-'));
    staging = mkdtempSync(join(tmpdir(), 'sgw-fault-staging-'));
    place('good.yaml', sdep('good', NS, { predictors: [{ name: 'main' }] }));
    place('hostile.yaml', sdep('hostile', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/rest-timeout': '2000' }));
    gw = await startCli(
      [
        '--manifests',
        dir,
        '--workers',
        String(WORKERS),
        '--log-level',
        'info',
        '--resolve',
        `good-main.${NS}:8000=127.0.0.1:${good.port}`,
        '--resolve',
        `hostile-main.${NS}:8000=127.0.0.1:${hostile.port}`,
      ],
      { ulimit: LIMIT },
    );
    loop = new SteadyLoop(gw.port, predictPath('good'), { concurrency: 2, maxRequests: 20_000, maxMs: 45_000, timeoutMs: 3000, pauseMs: 5, backend: 'good' });
    await loop.warm();
    loop.start();
    expect(await loop.okInPhase(20, 5000), `the loop before any trouble: ${loop.failures.join('\n')}`).toBe(true);
  }, 90_000);

  afterAll(async () => {
    await loop?.stop();
    gw?.child.kill('SIGKILL');
    await Promise.all([good?.close(), hostile?.close()]);
    for (const d of [dir, staging]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('the loop counts what is not a good answer as a failure (a 404, a wrong backend, no connection)', async () => {
    const probe = async (port: number, path: string): Promise<SteadyLoop> => {
      const l = new SteadyLoop(port, path, { concurrency: 1, maxRequests: 3, maxMs: 10_000, timeoutMs: 1000, pauseMs: 0, backend: 'good' });
      await l.warm();
      l.start();
      await l.finished();
      await l.stop();
      return l;
    };
    const missing = await probe(gw.port, predictPath('absent'));
    expect(missing.failures.length, missing.failures.join('\n')).toBe(3);
    expect(missing.failures[0]).toContain('404');
    const other = await probe(gw.port, predictPath('hostile'));
    expect(other.failures.length, other.failures.join('\n')).toBe(3);
    expect(other.failures[0]).toContain('not from good');
    const nobody = await probe(await freePort(), predictPath('good'));
    expect(nobody.failures.length, nobody.failures.join('\n')).toBe(3);
    expect(nobody.failures[0]).toContain('ECONNREFUSED');
    expect([missing, other, nobody].map((l) => l.endedBy)).toEqual(['count', 'count', 'count']);
  });

  it('(1) bad SeldonDeployments are rejected with their reasons and answered with Seldon-style errors', async () => {
    loop.phase = 'bad deployments';
    const noEngine = (port: number): Record<string, unknown> => ({ name: 'main', annotations: { 'seldon.io/no-engine': 'true' }, graph: { name: 'm', endpoint: { httpPort: port } } });
    const deep = `{"apiVersion":"machinelearning.seldon.io/v1","kind":"SeldonDeployment","metadata":{"name":"deep","namespace":"${NS}"},"spec":{"predictors":[{"name":"main","x":${'['.repeat(5000)}${']'.repeat(5000)}}]}}`;
    const cases: { name: string; file: string; text: string; path: string; why: RegExp }[] = [
      { name: 'port70000', file: 'port70000.yaml', text: sdep('port70000', NS, { predictors: [noEngine(70000)] }), path: predictPath('port70000'), why: /^rejected: .*httpPort 70000 is not a port/ },
      { name: 'portneg', file: 'portneg.yaml', text: sdep('portneg', NS, { predictors: [noEngine(-1)] }), path: predictPath('portneg'), why: /^rejected: .*httpPort -1 is not a port/ },
      { name: 'spacename', file: 'spacename.yaml', text: sdep('spacename', NS, { predictors: [{ name: 'a b' }] }), path: predictPath('spacename'), why: /^rejected: .*"a b"/ },
      { name: 'slashname', file: 'slashname.yaml', text: sdep('slashname', NS, { predictors: [{ name: 'a/b' }] }), path: predictPath('slashname'), why: /^rejected: .*"a\/b"/ },
      {
        name: 'explport',
        file: 'explport.yaml',
        text: sdep('explport', NS, { predictors: [{ name: 'main', explainer: { type: 'AnchorTabular', endpoint: { service_port: 70000 } } }] }),
        path: `/seldon/${NS}/explport-explainer/main/api/v1.0/explain`,
        why: /^rejected: .*service_port 70000 is not a port/,
      },
      // A header regex whose matching any client could make cost 385 ms a request (16 KB value).
      {
        name: 'regexbomb',
        file: 'regexbomb.yaml',
        text: sdep('regexbomb', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-regex-header': 'x-h: (?:a|aa){0,999}b' }),
        path: predictPath('regexbomb'),
        why: /^rejected: .*too complex: its RE2 program size is 4998, over 200/,
      },
      // Not a deployment at all: the file is reported as a source problem.
      { name: 'deep', file: 'deep.json', text: deep, path: predictPath('deep'), why: /^source problem: .*nested deeper than/ },
      {
        name: 'many',
        file: 'many.yaml',
        text: sdep('many', NS, { predictors: Array.from({ length: 10_000 }, (_, i) => ({ name: `p${i}`, traffic: i === 0 ? 100 : 0 })) }),
        path: predictPath('many'),
        why: /^rejected: .*10000 predictors/,
      },
    ];
    for (const c of cases) {
      place(c.file, c.text);
      // Each file is applied (the ones before it did not stop the source): rejected, or a source problem.
      const why = await poll(
        `${c.name} in /routes`,
        async () => {
          const t = await routes(gw.admin);
          const d = t.deployments.find((x) => x.namespace === NS && x.name === c.name);
          if (d) return `${d.state}: ${d.reasons.join('; ')}`;
          const problem = Object.entries(t.sourceProblems).find(([where]) => where.endsWith(c.file));
          return problem ? `source problem: ${problem[1]}` : 'absent';
        },
        (v) => v !== 'absent',
        5000,
      );
      expect(why, c.name).toMatch(c.why);
      const err = seldonError(await once(gw.port, c.path));
      expect(typeof err === 'string' ? err : 'a Seldon-style error', `${c.name}: the answer`).toBe('a Seldon-style error');
      if (typeof err !== 'string') expect(err.status, `${c.name}: ${err.reason} ${err.info}`).toBeGreaterThanOrEqual(400);
    }
    // `good` is still routed, and served all along.
    const t = await routes(gw.admin);
    expect(t.deployments.find((d) => d.name === 'good')?.state).toBe('accepted');
    expect(await loop.okInPhase(20, 3000), loop.failures.join('\n')).toBe(true);
  }, 90_000);

  it('(2) bad answers from the hostile upstream are answered and nothing else is touched', async () => {
    loop.phase = 'bad answers';
    const outcome = (res: RawResponse | null): string => {
      if (res === null) return 'no answer (closed)';
      if (!res.complete) return `${res.status} cut short`;
      const e = seldonError(res);
      return typeof e === 'string' ? `${res.status}` : `${e.status} ${e.reason}`;
    };
    const seen: Record<string, string[]> = {};
    for (let round = 0; round < 3; round++) {
      for (const id of Object.keys(HOSTILE)) {
        const res = await once(gw.port, predictPath('hostile'), [['X-Case', id]]);
        (seen[id] ??= []).push(outcome(res));
        if (id === 'latin1') expect(res?.body.toString()).toBe('{"cafe":true}');
      }
    }
    for (const id of Object.keys(HOSTILE)) expect(hostile.byCase(id).length, `requests of ${id} that reached the hostile upstream`).toBeGreaterThanOrEqual(1);
    expect(seen['latin1']).toEqual(['200', '200', '200']);
    expect(seen['304-with-length']).toEqual(['304', '304', '304']);
    for (const id of ['huge-header', 'garbage']) for (const o of seen[id]!) expect(o, id).toMatch(/^5\d\d [A-Z_]+$/);
    // Cut after the head went out (the client sees a short body), or a 5xx before it did.
    for (const o of seen['reset-mid-body']!) expect(o).toMatch(/^(200 cut short|no answer \(closed\)|5\d\d [A-Z_]+)$/);
    expect(await loop.okInPhase(20, 3000), loop.failures.join('\n')).toBe(true);
  }, 90_000);

  it('(3) descriptor exhaustion: new connections are refused, /readyz 503, then both recover by themselves', async () => {
    loop.phase = 'descriptor exhaustion';
    const held: net.Socket[] = [];
    let released = false;
    const outcomes = { connected: 0, refused: 0, otherError: 0, timedOut: 0, cutByGateway: 0 };
    const open = (): Promise<void> =>
      new Promise((resolve) => {
        const s = net.connect(gw.port, '127.0.0.1');
        held.push(s);
        let settled = false;
        const settle = (outcome: 'connected' | 'refused' | 'otherError' | 'timedOut'): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          outcomes[outcome]++;
          resolve();
        };
        // No handshake within 500 ms: the kernel no longer completes connections (accept queue full).
        const timer = setTimeout(() => settle('timedOut'), 500);
        s.on('error', (e: NodeJS.ErrnoException) => settle(e.code === 'ECONNREFUSED' ? 'refused' : 'otherError'));
        s.once('connect', () => {
          settle('connected');
          // Closed (or reset) by the gateway's side before we let go: libuv's answer to EMFILE.
          s.once('close', () => {
            if (!released) outcomes.cutByGateway++;
          });
        });
      });
    const notTaken = (): number => outcomes.refused + outcomes.otherError + outcomes.timedOut + outcomes.cutByGateway;
    try {
      // Connections until some are no longer taken and both workers have stopped accepting
      // (each notices within its check interval); at most MAX_OPENED connections and 15 s.
      let paused = 0;
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        if (held.length < MAX_OPENED) await Promise.all(Array.from({ length: 20 }, open));
        else await sleep(100); // at the cap: poll the metric below
        if (notTaken() > 0 && (paused = await metric(gw.admin, 'seldon_gateway_accept_paused')) === WORKERS) break;
        await sleep(20);
      }
      expect(notTaken(), `connections refused or cut after ${held.length}: ${JSON.stringify(outcomes)}`).toBeGreaterThan(0);
      expect(paused, `workers not accepting after ${held.length} connections: ${JSON.stringify(outcomes)}`).toBe(WORKERS);
      // A new client is not served (the kernel refuses it: no worker listens).
      const newcomer = await connectWithin(gw.port, 500);
      let newcomerOutcome = typeof newcomer === 'string' ? newcomer : 'connected';
      if (typeof newcomer !== 'string') {
        await writeRequest(newcomer, { target: predictPath('good'), headers: requestHeaders(), body: BODY });
        newcomerOutcome = (await readHttpResponse(newcomer.reader, { timeoutMs: 1000 }))?.statusLine ?? 'no answer';
        newcomer.socket.destroy();
      }
      expect(newcomerOutcome, 'a new connection while out of descriptors').not.toMatch(/ 200 /);
      await poll(
        '/readyz while out of descriptors',
        () => readyz(gw.admin),
        (r) => r.status === 503,
        5000,
      );
      const down = await readyz(gw.admin);
      expect(down.body).toContain('out of file descriptors (EMFILE)');
      // Traffic to `good` goes on over the connections it already had.
      loop.phase = 'exhausted';
      expect(await loop.okInPhase(30, 5000), `the loop while out of descriptors: ${loop.failures.join('\n')}`).toBe(true);
      await sleep(1000); // the case: it stays so, a second (several descriptor checks) later
      expect((await readyz(gw.admin)).status, 'still out of descriptors').toBe(503);
      expect(await metric(gw.admin, 'seldon_gateway_accept_paused'), 'workers still not accepting').toBe(WORKERS);
    } finally {
      released = true;
      for (const s of held) s.destroy();
    }
    loop.phase = 'recovered';
    await poll(
      '/readyz after the connections closed',
      () => readyz(gw.admin),
      (r) => r.status === 200,
      10_000,
    );
    const fresh: (number | string)[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await once(gw.port, predictPath('good'));
      fresh.push(res?.status ?? 'no answer');
    }
    expect(fresh, 'new connections after recovery').toEqual(Array(10).fill(200));
    expect(await metric(gw.admin, 'seldon_gateway_accept_errors_total', 'reason="EMFILE"'), 'accept errors counted').toBeGreaterThan(0);
    expect(gw.output()).toContain('out of file descriptors: not accepting connections');
    expect(gw.output()).toContain('file descriptors free again: accepting connections');
    expect(await loop.okInPhase(20, 3000), loop.failures.join('\n')).toBe(true);
  }, 90_000);

  it('throughout: zero failures to `good`, zero worker exits; the gateway lives and exits 0 on SIGTERM', async () => {
    await loop.stop();
    const phases = ['warm-up', 'bad deployments', 'bad answers', 'descriptor exhaustion', 'exhausted', 'recovered'];
    const okByPhase = Object.fromEntries(phases.map((p) => [p, loop.ok.get(p) ?? 0]));
    const summary = `good answers by phase: ${JSON.stringify(okByPhase)}, slowest ${Math.round(loop.maxLatencyMs)} ms`;
    expect(loop.failures, `failures of the loop to good (${summary})`).toEqual([]);
    expect(loop.endedBy, 'the loop ran until the end (not cut by its own bounds)').toBe('stop');
    for (const p of phases) expect(okByPhase[p], `good answers while ${p}`).toBeGreaterThan(0);
    const out = gw.output();
    const lines = out.split('\n').filter((l) => /exit|uncaught|no handler caught|fatal/i.test(l));
    expect(countWorkerExits(out), `worker exits:\n${lines.join('\n').slice(0, 3000)}`).toBe(0);
    // Every worker the primary ever started said so once: none was replaced.
    const started = out
      .split('\n')
      .filter((l) => l.includes('"worker listening"'))
      .map((l) => (JSON.parse(l) as { worker?: number }).worker);
    expect(started, 'workers started').toHaveLength(WORKERS);
    expect(new Set(started).size).toBe(WORKERS);
    // Nothing reached the last resorts: no error escaped every handler, no request failed inside the gateway.
    expect(await metric(gw.admin, 'seldon_gateway_process_errors_total'), `errors no handler caught:\n${lines.join('\n').slice(0, 3000)}`).toBe(0);
    expect(await metric(gw.admin, 'seldon_gateway_internal_errors_total'), 'requests failed by an error inside the gateway').toBe(0);
    expect({ exitCode: gw.child.exitCode, signal: gw.child.signalCode }, 'the gateway process').toEqual({ exitCode: null, signal: null });
    expect(await gw.stop(), 'exit code on SIGTERM').toBe(0);
  }, 90_000);
});
