/**
 * Shadows under a stall, as Envoy bounds them (docs/routing.md#shadows): while the shadow model's
 * process is stopped (SIGSTOP) its copies wait, within the shadow upstream's circuit breaker and
 * the copy's timeout, and all arrive once it continues (SIGCONT); beyond the breaker they are
 * dropped and counted; the primary never waits for a copy. The shadow is a real separate process
 * (fixtures/reporting-model.ts) that reports every request it received, bytes included.
 */
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { grpcClients, grpcFrame, encodeSeldonMessage, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { spawnReportingModel, type ReceivedRequest, type ReportingModel } from '../../fixtures/reporting-model.js';
import { answeredBy, md, pool, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';

const N = 200;
const IN_FLIGHT = 16;
/** The shortest stall of the shadow. */
const PAUSE_MS = 300;
/** The primary model's time per answer (100 answers at 16 in flight then take 175 ms or more). */
const MODEL_MS = 25;
const PREDICT = '/api/v1.0/predictions';
/** The route timeout of the `brief` shadow. */
const BRIEF_TIMEOUT_MS = 500;

/** Linux's process state letter (T: stopped by a signal). */
const procState = (pid: number): string => /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';

/**
 * Stop the model process, run `during` (which must end while the process is still stopped: if it
 * waited for the model it would not end, and fails after `limitMs`), then continue the process.
 */
async function whileStopped<T>(pid: number, during: () => Promise<T>, limitMs = 20_000): Promise<{ value: T; stoppedMs: number }> {
  process.kill(pid, 'SIGSTOP');
  try {
    await waitFor(() => procState(pid) === 'T', 2000);
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not done within ${limitMs} ms while the shadow was stopped: the primary waited for its copies`)), limitMs);
    });
    try {
      const value = await Promise.race([during(), limit]);
      return { value, stoppedMs: performance.now() - t0 };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

/** Latencies (sorted) of `n` calls made `concurrency` at a time. */
async function timedCalls(n: number, concurrency: number, call: (i: number) => Promise<void>): Promise<number[]> {
  const ms = await pool(n, concurrency, async (i) => {
    const t0 = performance.now();
    await call(i);
    return performance.now() - t0;
  });
  return ms.sort((a, b) => a - b);
}

describe('shadow delivery while the shadow model is stopped', () => {
  let model: ReportingModel;
  let restMain: HttpBackend;
  let grpcMain: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;

  /** seldon_gateway_shadow_requests_total for one shadow, protocol and result. */
  const shadowCount = async (deployment: string, predictor: string, protocol: string, result: string): Promise<number> => {
    const text = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_shadow_requests_total');
    const labels = [`deployment="${deployment}"`, `predictor="${predictor}"`, `protocol="${protocol}"`, `result="${result}"`];
    const line = text.split('\n').find((l) => l.startsWith('seldon_gateway_shadow_requests_total{') && labels.every((x) => l.includes(x)));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const outcomes = async (deployment: string, predictor: string, protocol: string): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const r of ['mirrored', 'failed', 'dropped_in_flight', 'dropped_breaker', 'dropped_body_size']) out[r] = await shadowCount(deployment, predictor, protocol, r);
    return out;
  };
  /** Wait until every copy of `n` has an outcome (sent and answered, failed, or dropped), then say which. */
  const settled = async (deployment: string, predictor: string, protocol: string, n: number): Promise<Record<string, number>> => {
    const total = async (): Promise<number> => Object.values(await outcomes(deployment, predictor, protocol)).reduce((a, b) => a + b, 0);
    await expect.poll(total, { timeout: 15_000 }).toBeGreaterThanOrEqual(n);
    return outcomes(deployment, predictor, protocol);
  };
  /** The copies the model process reported for one run (`tag` is in every body of the run). */
  const copies = (protocol: 'rest' | 'grpc', tag: string): ReceivedRequest[] => model.received.filter((r) => r.protocol === protocol && r.body.includes(tag));

  beforeAll(async () => {
    model = await spawnReportingModel();
    restMain = await startHttpBackend({ name: 'main' });
    grpcMain = await startGrpcBackend({ name: 'main' });
    const shadowOf = (name: string, annotations: Record<string, string>): string =>
      sdep(`${name}-audit`, 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-service-name': name, 'seldon.io/ambassador-shadow': 'true', ...annotations });
    gw = await startTestGateway({
      manifests: {
        'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }),
        // The default bounds: Envoy's breaker (1024/1024/1024) and the 3 s route timeout.
        'mirrored.yaml': sdep('mirrored', 'models', { predictors: [{ name: 'main' }, { name: 'audit', shadow: true }] }),
        // A shadow (the legacy second SDep, so only it has these limits) that takes 2 copies on connections or streams and 3 waiting.
        'tight.yaml': sdep('tight', 'models', { predictors: [{ name: 'main' }] }),
        'tight-audit.yaml': shadowOf('tight', {
          'seldon.io/ambassador-circuit-breakers-max-connections': '2',
          'seldon.io/ambassador-circuit-breakers-max-pending-requests': '3',
          'seldon.io/rest-timeout': '20000',
          'seldon.io/grpc-timeout': '20000',
        }),
        // One connection, two copies waiting for it, and a short route timeout.
        'brief.yaml': sdep('brief', 'models', { predictors: [{ name: 'main' }] }),
        'brief-audit.yaml': shadowOf('brief', {
          'seldon.io/ambassador-circuit-breakers-max-connections': '1',
          'seldon.io/ambassador-circuit-breakers-max-pending-requests': '2',
          'seldon.io/rest-timeout': String(BRIEF_TIMEOUT_MS),
        }),
      },
      resolve: {
        'plain-main.models:8000': restMain.port,
        'plain-main.models:5001': grpcMain.port,
        'mirrored-main.models:8000': restMain.port,
        'mirrored-main.models:5001': grpcMain.port,
        'mirrored-audit.models:8000': model.httpPort,
        'mirrored-audit.models:5001': model.grpcPort,
        'tight-main.models:8000': restMain.port,
        'tight-main.models:5001': grpcMain.port,
        'tight-audit-main.models:8000': model.httpPort,
        'tight-audit-main.models:5001': model.grpcPort,
        'brief-main.models:8000': restMain.port,
        'brief-audit-main.models:8000': model.httpPort,
      },
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await model?.kill();
    await restMain?.close();
    await grpcMain?.close();
  });

  /** How a test calls the primary through the gateway, and what the shadow must receive for that call. */
  interface Protocol {
    readonly name: 'rest' | 'grpc';
    call(deployment: string, tag: string, i: number, sleepMs: number): Promise<void>;
    /** The bytes of call `i`'s body as the client sent them. */
    sent(tag: string, i: number, sleepMs: number): Buffer;
    /** The path the shadow gets: the primary's, rewritten. */
    path(sleepMs: number): string;
  }
  const restBody = (tag: string, i: number): string => `{"data":{"names":["i"],"ndarray":[[${i}]]},"meta":{"tags":{"run":"${tag}-${i}."}}}`;
  const grpcData = (tag: string, i: number, sleepMs: number): string => `sleep:${sleepMs};${tag}-${i}.`;
  const protocols: Protocol[] = [
    {
      name: 'rest',
      async call(deployment, tag, i, sleepMs) {
        const r = await request(`${gw.url}/seldon/models/${deployment}${PREDICT}?sleep=${sleepMs}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: restBody(tag, i) });
        await r.body.text();
        expect(r.statusCode).toBe(200);
        expect(r.headers['x-backend']).toBe('main');
      },
      sent: (tag, i) => Buffer.from(restBody(tag, i)),
      path: (sleepMs) => `${PREDICT}?sleep=${sleepMs}`,
    },
    {
      name: 'grpc',
      async call(deployment, tag, i, sleepMs) {
        const o = await predict(clients, { strData: grpcData(tag, i, sleepMs) }, md({ seldon: deployment, namespace: 'models' }));
        expect(o.ok).toBe(true);
        expect(answeredBy(o)).toBe('main');
      },
      // What the grpc-js client sends: one uncompressed length-prefixed SeldonMessage.
      sent: (tag, i, sleepMs) => grpcFrame(encodeSeldonMessage({ strData: grpcData(tag, i, sleepMs) })),
      path: () => '/seldon.protos.Seldon/Predict',
    },
  ];

  for (const p of protocols) {
    describe(p.name === 'rest' ? 'REST' : 'gRPC', () => {
      it(`200 calls at 16 in flight, the shadow stopped for the first half of them (${PAUSE_MS} ms or more): all 200 copies arrive byte for byte, none dropped; the primary never waits`, async () => {
        const tag = `${p.name}-stall`;
        await pool(N / 4, IN_FLIGHT, (i) => p.call('plain', `${p.name}-warm`, i, MODEL_MS));
        const baseline = await timedCalls(N, IN_FLIGHT, (i) => p.call('plain', `${p.name}-base`, i, MODEL_MS));
        // The shadow stops; it continues once half the primaries have answered (so more than 64
        // copies wait for it) and the pause has lasted PAUSE_MS. Were primaries to wait for their
        // copies, none would answer while it is stopped.
        let answered = 0;
        let stoppedAt = 0;
        let shadowed: Promise<number[]> | undefined;
        const { value: answeredWhileStopped, stoppedMs } = await whileStopped(model.pid, async () => {
          stoppedAt = performance.now();
          shadowed = timedCalls(N, IN_FLIGHT, async (i) => {
            await p.call('mirrored', tag, i, MODEL_MS);
            answered++;
          });
          shadowed.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
          await waitFor(() => answered >= N / 2 && performance.now() - stoppedAt >= PAUSE_MS, 15_000).catch(() => {
            throw new Error(`${answered} of ${N} primaries answered while the shadow was stopped: they waited for their copies`);
          });
          expect(copies(p.name, tag)).toHaveLength(0); // all still waiting
          return answered;
        });
        expect(answeredWhileStopped).toBeGreaterThanOrEqual(N / 2);
        expect(stoppedMs).toBeGreaterThanOrEqual(PAUSE_MS);
        const latencies = await shadowed!;
        expect(latencies).toHaveLength(N);
        // Latency as without a shadow. Loose bounds: client, gateway and primary share this process's
        // event loop (the copies' work included) and the machine is shared; a primary held by the
        // stall would take PAUSE_MS or more.
        expect(percentile(latencies, 0.5)).toBeLessThan(3 * percentile(baseline, 0.5) + 50);
        expect(percentile(latencies, 0.99)).toBeLessThan(3 * percentile(baseline, 0.99) + 100);

        expect(await settled('mirrored', 'audit', p.name, N)).toEqual({ mirrored: N, failed: 0, dropped_in_flight: 0, dropped_breaker: 0, dropped_body_size: 0 });
        // Each line leaves the model before its answer, but the two pipes are read in no set order.
        await waitFor(() => copies(p.name, tag).length >= N);
        const got = copies(p.name, tag);
        expect(got).toHaveLength(N);
        const seen = new Set<number>();
        for (const c of got) {
          const i = Number(new RegExp(`${tag}-(\\d+)\\.`).exec(c.body.toString('latin1'))?.[1]);
          seen.add(i);
          expect(c.body.equals(p.sent(tag, i, MODEL_MS)), `copy ${i}`).toBe(true);
          expect(c.host).toBe(`127.0.0.1-shadow:${gw.port}`);
          expect(c.path).toBe(p.path(MODEL_MS));
        }
        expect(seen.size).toBe(N);
      });

      it('beyond the shadow breaker copies are dropped and counted, not queued: max_connections 2 and max_pending_requests 3 take 5 of 20 while the shadow is stopped, and those 5 arrive', async () => {
        const tag = `${p.name}-tight`;
        await whileStopped(model.pid, async () => {
          await pool(20, IN_FLIGHT, (i) => p.call('tight', tag, i, 0));
          // 2 copies sent, 3 waiting for a connection or stream, 15 refused by the breaker: none settled yet.
          expect(await outcomes('tight-audit', 'main', p.name)).toEqual({ mirrored: 0, failed: 0, dropped_in_flight: 0, dropped_breaker: 15, dropped_body_size: 0 });
        });
        expect(await settled('tight-audit', 'main', p.name, 20)).toEqual({ mirrored: 5, failed: 0, dropped_in_flight: 0, dropped_breaker: 15, dropped_body_size: 0 });
        await waitFor(() => copies(p.name, tag).length >= 5);
        expect(copies(p.name, tag)).toHaveLength(5);
      });
    });
  }

  it('REST: a copy waiting for a connection runs to its route timeout from admission, not from when it is sent', async () => {
    await whileStopped(model.pid, async () => {
      const t0 = performance.now();
      await pool(3, 3, (i) => protocols[0]!.call('brief', 'rest-brief', i, 0));
      // One copy on the connection, two queued behind it; each ends at its own timeout. Were the
      // wait not counted, the queued ones would follow one timeout after another (1,500 ms in all).
      await expect.poll(() => shadowCount('brief-audit', 'main', 'rest', 'failed'), { timeout: 10_000, interval: 20 }).toBe(3);
      expect(performance.now() - t0).toBeLessThan(3 * BRIEF_TIMEOUT_MS - 100);
      expect(await outcomes('brief-audit', 'main', 'rest')).toEqual({ mirrored: 0, failed: 3, dropped_in_flight: 0, dropped_breaker: 0, dropped_body_size: 0 });
    });
  });
});

describe('--shadow-max-in-flight', () => {
  it('is unset by default (the shadow breaker bounds copies, as in Envoy); a number is an extra cap; 0 is none', () => {
    expect(parseConfig('serve', [], {}).shadow.maxInFlight).toBeUndefined();
    expect(parseConfig('serve', ['--shadow-max-in-flight', '64'], {}).shadow.maxInFlight).toBe(64);
    expect(parseConfig('serve', [], { SELDON_GATEWAY_SHADOW_MAX_IN_FLIGHT: '8' }).shadow.maxInFlight).toBe(8);
    expect(parseConfig('serve', ['--shadow-max-in-flight', '0'], {}).shadow.maxInFlight).toBeUndefined();
  });
});
