/**
 * The runtime metrics (gateway/observe/runtime-metrics.ts) on the real CLI with two workers:
 * `seldon_gateway_event_loop_delay_seconds` and `seldon_gateway_gc_pause_seconds`, one series per
 * process (`worker` = the cluster worker id, or `primary`) after the primary sums the workers.
 *
 * The stall is a real one, made the way production makes them: a manifest of a few thousand
 * SeldonDeployments arrives, and every process compiles it in one synchronous stretch (and
 * collects the garbage that leaves). No timing is asserted: only that the probes counted are
 * consistent (cumulative buckets, +Inf = count, no more probes than the interval allows) and that
 * the stall and the collections show up in each worker's own series.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_LOOP_DELAY_METRIC, GC_PAUSE_METRIC, PRIMARY_PROBE_INTERVAL_MS, PROBE_INTERVAL_MS } from '../../../gateway/observe/runtime-metrics.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { sleep } from '../../helpers/wait.js';
import { expositionProblems, getText, metricSum, parseMetrics, post, predict, startObservedGateway, type PromSample } from '../../helpers/observability.js';

const DELAY_BOUNDS = ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '+Inf'];
const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'];

/** One histogram series (a name and its labels except `le`) as exposed: its buckets, sum and count. */
interface Series {
  readonly buckets: { le: string; count: number }[];
  readonly sum: number;
  readonly count: number;
}

function series(samples: readonly PromSample[], name: string, labels: Record<string, string>): Series | undefined {
  const match = (s: PromSample): boolean => Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).filter((k) => k !== 'le').length === Object.keys(labels).length;
  const buckets = samples.filter((s) => s.name === `${name}_bucket` && match(s)).map((s) => ({ le: s.labels.le!, count: s.value }));
  const count = samples.find((s) => s.name === `${name}_count` && match(s));
  const sum = samples.find((s) => s.name === `${name}_sum` && match(s));
  if (!count || !sum) return undefined;
  return { buckets, sum: sum.value, count: count.value };
}

/** What every histogram series must satisfy: cumulative buckets, +Inf = count, a non-negative sum. */
function expectConsistent(s: Series, what: string): void {
  const counts = s.buckets.map((b) => b.count);
  expect(counts, `${what}: cumulative buckets`).toEqual([...counts].sort((a, b) => a - b));
  expect(s.buckets.at(-1), what).toEqual({ le: '+Inf', count: s.count });
  expect(s.sum, what).toBeGreaterThanOrEqual(0);
}

/** Probes later than `le` seconds. */
const over = (s: Series, le: string): number => s.count - s.buckets.find((b) => b.le === le)!.count;

/** `n` SeldonDeployments with a canary and a shadow each, as one multi-document file. */
function manyDeployments(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++)
    docs.push(
      sdep(`bulk-${i}`, `ns-${i % 20}`, {
        predictors: [
          { name: 'main', traffic: 80, graph: { name: 'model', implementation: 'SKLEARN_SERVER', modelUri: `gs://bulk/${i}` } },
          { name: 'canary', traffic: 20, graph: { name: 'model', implementation: 'SKLEARN_SERVER', modelUri: `gs://bulk/${i}-c` } },
          { name: 'mirror', shadow: true, graph: { name: 'model', implementation: 'SKLEARN_SERVER', modelUri: `gs://bulk/${i}-s` } },
        ],
      }),
    );
  return docs.join('\n---\n');
}

describe('event-loop delay and GC pauses, per process (the CLI, 2 workers)', () => {
  let backend: HttpBackend;
  let gw: CliGateway;
  let dir: string;
  let adminUrl: string;
  const scrape = async (): Promise<{ text: string; samples: PromSample[] }> => {
    const text = await getText(`${adminUrl}/metrics`);
    return { text, samples: parseMetrics(text) };
  };

  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'main' });
    dir = mkdtempSync(join(tmpdir(), 'sgw-runtime-'));
    writeFileSync(join(dir, 'a.yaml'), sdep('a', 'm', { predictors: [{ name: 'main' }] }));
    // A 1 MB young generation: the workers' scavenges are certain (with the default 64 MB, a worker
    // may take in the whole bulk change below without one).
    gw = await startCli(['--manifests', dir, '--workers', '2', '--max-semi-space-size', '1', '--log-level', 'warn', '--resolve', `a-main.m:8000=127.0.0.1:${backend.port}`]);
    adminUrl = `http://127.0.0.1:${gw.admin}`;
  });
  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('one event-loop histogram per process, buckets 1 ms to 1 s, consistent, counting no faster than the probe interval (the primary ten times slower)', async () => {
    const t0 = performance.now();
    const first = await scrape();
    // Scrape again once every process has taken new samples (the primary's come every PRIMARY_PROBE_INTERVAL_MS).
    const count = (samples: PromSample[], worker: string): number => series(samples, EVENT_LOOP_DELAY_METRIC, { worker })?.count ?? 0;
    let second = await scrape();
    for (const end = Date.now() + 30_000; Date.now() < end && !['1', '2', 'primary'].every((w) => count(second.samples, w) > count(first.samples, w) + 1);) {
      await sleep(PROBE_INTERVAL_MS);
      second = await scrape();
    }
    const elapsedMs = performance.now() - t0;

    expect(expositionProblems(second.text)).toEqual([]);
    expect(second.text).toContain(`# TYPE ${EVENT_LOOP_DELAY_METRIC} histogram`);
    const workers = [...new Set(second.samples.filter((s) => s.name === `${EVENT_LOOP_DELAY_METRIC}_count`).map((s) => s.labels.worker))].sort();
    expect(workers).toEqual(['1', '2', 'primary']);
    for (const worker of workers) {
      const a = series(first.samples, EVENT_LOOP_DELAY_METRIC, { worker: worker! })!;
      const b = series(second.samples, EVENT_LOOP_DELAY_METRIC, { worker: worker! })!;
      expect(
        b.buckets.map((x) => x.le),
        worker,
      ).toEqual(DELAY_BOUNDS);
      expectConsistent(a, `worker ${worker}, first scrape`);
      expectConsistent(b, `worker ${worker}, second scrape`);
      // The probe keeps running, and fires at most once per interval (a timer never fires early
      // by more than the loop clock's 1 ms granularity).
      expect(b.count, worker).toBeGreaterThan(a.count);
      const interval = worker === 'primary' ? PRIMARY_PROBE_INTERVAL_MS : PROBE_INTERVAL_MS;
      expect(b.count - a.count, worker).toBeLessThanOrEqual(Math.ceil(elapsedMs / (interval - 1)) + 1);
      expect(b.sum, worker).toBeGreaterThanOrEqual(a.sum);
    }
  });

  it("workers run with the young generation set, V8's memory reducer off (it would shrink it back after a lull) and old-generation marking started by its growth (not by the young generation's size); the primary keeps its own flags", () => {
    const primary = gw.child.pid!;
    const children = readdirSync(`/proc/${primary}/task`).flatMap((t) => readFileSync(`/proc/${primary}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
    const argv = (pid: string | number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const workers = children.map(argv);
    expect(workers).toHaveLength(2);
    for (const w of workers) {
      expect(w).toContain('--max-semi-space-size=1');
      expect(w).toContain('--no-memory-reducer');
      expect(w).toContain('--incremental-marking-soft-trigger=50');
    }
    expect(argv(primary)).not.toContain('--no-memory-reducer');
    expect(argv(primary).some((a) => a.startsWith('--incremental-marking-soft-trigger'))).toBe(false);
  });

  it('traffic and a big table change: every worker shows the stall it lived through, and its own GC pauses', async () => {
    for (let i = 0; i < 50; i++) expect((await post(`http://127.0.0.1:${gw.port}/seldon/m/a${predict}`)).status).toBe(200);
    // Probes later than 10 ms, by process; undefined when a scrape lacks the process (the primary
    // gathers each worker's metrics within a bound, and a worker busy compiling may miss it).
    const delayed = (samples: readonly PromSample[], worker: string): number | undefined => {
      const s = series(samples, EVENT_LOOP_DELAY_METRIC, { worker });
      return s && over(s, '0.01');
    };
    let before = (await scrape()).samples;
    for (const end = Date.now() + 30_000; ['1', '2', 'primary'].some((w) => delayed(before, w) === undefined) && Date.now() < end;) {
      await sleep(100);
      before = (await scrape()).samples;
    }

    // Thousands of deployments at once: each process compiles them in one synchronous stretch.
    writeFileSync(join(dir, 'bulk.yaml'), manyDeployments(3000));
    let after: PromSample[] = before;
    const deadline = Date.now() + 60_000;
    for (;;) {
      after = (await scrape()).samples;
      const applied = metricSum(after, 'seldon_gateway_deployments', { state: 'accepted' }) >= 3001;
      if (applied && ['1', '2'].every((w) => (delayed(after, w) ?? -1) > delayed(before, w)!)) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const worker of ['1', '2', 'primary']) {
      // Probes later than 10 ms: the compile held this process's loop.
      expect(delayed(after, worker), `worker ${worker}: probes delayed > 10 ms`).toBeGreaterThan(delayed(before, worker) ?? Infinity);
      expectConsistent(series(after, EVENT_LOOP_DELAY_METRIC, { worker })!, `worker ${worker}`);
    }
    // GC: each worker has its own series, by kind; thousands of objects through a 1 MB young generation mean scavenges.
    const gcSeries = after.filter((s) => s.name === `${GC_PAUSE_METRIC}_count`);
    for (const s of gcSeries) expect(GC_KINDS, JSON.stringify(s.labels)).toContain(s.labels.kind);
    for (const worker of ['1', '2']) {
      const minor = series(after, GC_PAUSE_METRIC, { worker, kind: 'minor' });
      expect(minor, `worker ${worker}: minor GC series`).toBeDefined();
      expect(minor!.count).toBeGreaterThan(0);
      expect(minor!.sum).toBeGreaterThan(0);
      expectConsistent(minor!, `worker ${worker} minor GC`);
      for (const kind of GC_KINDS) {
        const s = series(after, GC_PAUSE_METRIC, { worker, kind });
        if (s) expectConsistent(s, `worker ${worker} ${kind} GC`);
      }
    }
    // The primary sums what the processes gathered, never across the worker label: each keeps its own series.
    expect(new Set(gcSeries.map((s) => s.labels.worker))).toEqual(new Set(['1', '2', 'primary']));
  }, 90_000);
});

describe('one process (in-process gateway)', () => {
  it('labels its series worker="primary"', async () => {
    const gw = await startObservedGateway({ manifests: {} });
    try {
      // Once it has taken a sample.
      let samples = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
      for (const end = Date.now() + 10_000; Date.now() < end && !samples.some((s) => s.name === `${EVENT_LOOP_DELAY_METRIC}_count` && s.value > 0);) {
        await sleep(20);
        samples = parseMetrics(await getText(`${gw.adminUrl}/metrics`));
      }
      const workers = new Set(samples.filter((s) => s.name === `${EVENT_LOOP_DELAY_METRIC}_count`).map((s) => s.labels.worker));
      expect(workers).toEqual(new Set(['primary']));
      expectConsistent(series(samples, EVENT_LOOP_DELAY_METRIC, { worker: 'primary' })!, 'primary');
    } finally {
      await gw.stop();
    }
  });
});
