/**
 * Series follow what exists: the series of a deployment or predictor gone from the table stay for
 * the grace, then leave the exposition; a subject back within the grace keeps them; a straggler
 * counted after the removal is counted into a live series and reaped in its turn. Real metrics over
 * real tables, an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import { SeriesReaper, liveSubjects, type LiveSubjects } from '../../../gateway/observe/series-reaper.js';
import { LogMetrics } from '../../../gateway/payload-log/metrics.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type RouteTable } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

const GRACE = 60_000;

function deployment(name: string, predictors: string[]): SeldonDeployment {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: 'ns' },
    spec: { predictors: predictors.map((p, i) => ({ name: p, traffic: i === 0 ? 100 : 0 })) },
  } as SeldonDeployment;
}

function backendsOf(table: RouteTable): Backend[] {
  return table.groups.flatMap((g) => g.members.map((m) => m.backend));
}

function setup(initial: SeldonDeployment[], sinks?: () => ReadonlySet<string>) {
  const metrics = new GatewayMetrics({ processMetrics: false });
  let table = buildTable(initial, DEFAULT_COMPILE_OPTIONS);
  let now = 1_000_000;
  const reaped: number[] = [];
  const reaper = new SeriesReaper({
    registry: metrics.registry,
    live: (): LiveSubjects => ({ ...liveSubjects(table), sinks: sinks?.() }),
    graceMs: GRACE,
    now: () => now,
    reaped: (n) => {
      reaped.push(n);
      metrics.seriesRemoved();
    },
  });
  return {
    metrics,
    reaper,
    reaped,
    get table() {
      return table;
    },
    set table(t: RouteTable) {
      table = t;
    },
    advance: (ms: number) => (now += ms),
    /** The exposition's lines naming `text`. */
    async lines(text: string): Promise<string[]> {
      return (await metrics.registry.metrics()).split('\n').filter((l) => !l.startsWith('#') && l.includes(text));
    },
  };
}

/** Count a request of every backend of `table`, a retry, a shadow and a protocol translation of each. */
function traffic(metrics: GatewayMetrics, backends: Backend[]): void {
  for (const b of backends) {
    const protocol = b.id.includes('#') ? 'grpc' : 'rest';
    metrics.request(b, protocol, 'primary', 200, 0.002, performance.now());
    metrics.retry(b, protocol);
    metrics.shadow(b, protocol, 'mirrored');
    metrics.translations.count(b, 'seldon', 'v2', 'ok');
  }
}

describe('series reaper', () => {
  it("keeps a gone deployment's series for the grace, then removes every one of them; the live deployment's stay", async () => {
    const s = setup([deployment('stay', ['main']), deployment('gone', ['main', 'canary'])]);
    const before = backendsOf(s.table);
    traffic(s.metrics, before);
    expect((await s.lines('deployment="gone"')).length).toBeGreaterThan(20);
    expect(await s.lines('seldon_gateway_protocol_translations_total{namespace="ns",deployment="gone"')).toHaveLength(1);
    const stayLines = await s.lines('deployment="stay"');

    s.table = buildTable([deployment('stay', ['main'])], DEFAULT_COMPILE_OPTIONS);
    expect(await s.reaper.sweep()).toBe(0); // gone now: its grace starts
    s.advance(GRACE - 1);
    expect(await s.reaper.sweep()).toBe(0);
    expect((await s.lines('deployment="gone"')).length).toBeGreaterThan(20);
    s.advance(1);
    expect(await s.reaper.sweep()).toBeGreaterThan(0);
    expect(await s.lines('deployment="gone"')).toEqual([]);
    expect(await s.lines('deployment="stay"')).toEqual(stayLines);
    // Nothing left to watch: a later sweep removes nothing and keeps no entry.
    expect(await s.reaper.sweep()).toBe(0);
  });

  it('a deployment back within the grace keeps its series and their counts', async () => {
    const s = setup([deployment('flap', ['main'])]);
    traffic(s.metrics, backendsOf(s.table));
    const lines = await s.lines('deployment="flap"');
    s.table = buildTable([], DEFAULT_COMPILE_OPTIONS);
    await s.reaper.sweep();
    s.advance(GRACE / 2);
    s.table = buildTable([deployment('flap', ['main'])], DEFAULT_COMPILE_OPTIONS);
    await s.reaper.sweep();
    s.advance(GRACE);
    expect(await s.reaper.sweep()).toBe(0);
    expect(await s.lines('deployment="flap"')).toEqual(lines);
  });

  it("a renamed predictor's series go; the deployment's own series (retries) stay", async () => {
    const s = setup([deployment('d', ['v1'])]);
    traffic(s.metrics, backendsOf(s.table));
    s.table = buildTable([deployment('d', ['v2'])], DEFAULT_COMPILE_OPTIONS);
    traffic(s.metrics, backendsOf(s.table));
    await s.reaper.sweep();
    s.advance(GRACE);
    await s.reaper.sweep();
    expect(await s.lines('predictor="v1"')).toEqual([]);
    expect((await s.lines('predictor="v2"')).length).toBeGreaterThan(0);
    expect(await s.lines('seldon_gateway_retries_total{namespace="ns",deployment="d"')).toHaveLength(1);
  });

  it('a straggler counted after the removal counts into a new series, itself removed after another grace', async () => {
    const s = setup([deployment('late', ['main'])]);
    const old = backendsOf(s.table);
    traffic(s.metrics, old);
    s.table = buildTable([], DEFAULT_COMPILE_OPTIONS);
    await s.reaper.sweep();
    s.advance(GRACE);
    await s.reaper.sweep();
    expect(await s.lines('deployment="late"')).toEqual([]);
    // A request that matched on the old table ends now, with the old Backend: counted, visible.
    s.metrics.request(old[0]!, 'rest', 'primary', 200, 0.001, performance.now());
    expect(await s.lines('seldon_gateway_requests_total{namespace="ns",deployment="late"')).toEqual([expect.stringMatching(/ 1$/)]);
    await s.reaper.sweep();
    s.advance(GRACE);
    await s.reaper.sweep();
    expect(await s.lines('deployment="late"')).toEqual([]);
  });

  it("a log sink gone from --log-sinks: its counters' series stay for the grace (its last drops read), then go; a kept sink's stay", async () => {
    let sinks = new Set(['audit', 'old']);
    const s = setup([], () => sinks);
    const log = LogMetrics.of(s.metrics.registry);
    for (const sink of ['audit', 'old']) {
      log.count(sink, 'request', 'delivered', 3);
      log.dropped(sink, 'decision', 'shutdown');
      log.claimed.inc({ sink });
    }
    log.holds('old', () => 10);
    const kept = await s.lines('sink="audit"');
    sinks = new Set(['audit']);
    // The sink set lets go of the gauges at once (payload-log/sinks.ts); the counters are the reaper's.
    log.forget('old');
    expect(await s.lines('seldon_gateway_log_buffer_bytes{sink="old"}')).toEqual([]);
    expect(await s.reaper.sweep()).toBe(0);
    s.advance(GRACE - 1);
    expect(await s.reaper.sweep()).toBe(0);
    expect(await s.lines('seldon_gateway_log_drops_total{sink="old",reason="shutdown"} 1')).toHaveLength(1);
    s.advance(1);
    expect(await s.reaper.sweep()).toBe(4);
    expect(await s.lines('sink="old"')).toEqual([]);
    expect(await s.lines('sink="audit"')).toEqual(kept);
  });

  it('without sink names (a process that knows none), series with a sink label are not touched', async () => {
    const s = setup([]);
    LogMetrics.of(s.metrics.registry).count('any', 'request', 'delivered');
    await s.reaper.sweep();
    s.advance(GRACE * 10);
    expect(await s.reaper.sweep()).toBe(0);
    expect(await s.lines('sink="any"')).toHaveLength(1);
  });

  it('series of requests no route matched (empty labels) are never removed', async () => {
    const s = setup([]);
    s.metrics.unroutedRequest('rest', 'no_route', 404, performance.now());
    await s.reaper.sweep();
    s.advance(GRACE * 10);
    expect(await s.reaper.sweep()).toBe(0);
    expect((await s.lines('deployment=""')).length).toBeGreaterThan(0);
  });
});
