/**
 * observe/bound-series.ts against prom-client's own Counter and Histogram fed the same values: the
 * exposition text, the JSON a cluster worker sends, and the primary's aggregation of two workers
 * must be identical, byte for byte, so nothing a scraper, an alert rule or the dashboard reads moves.
 */
import fc from 'fast-check';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounter, BoundHistogram } from '../../../gateway/observe/bound-series.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const NAMES = ['namespace', 'deployment', 'predictor', 'protocol', 'kind'];

/** One observation: which series (label values) and the value. */
type Obs = { labels: string[]; seconds: number };

function both(observations: readonly Obs[]): { ours: Registry; theirs: Registry } {
  const ours = new Registry();
  const theirs = new Registry();
  const oc = new BoundCounter('t_requests_total', 'Requests.', [...NAMES, 'code'], ours);
  const oh = new BoundHistogram('t_latency_seconds', 'Latency.', NAMES, BUCKETS, ours);
  const tc = new Counter({ name: 't_requests_total', help: 'Requests.', labelNames: [...NAMES, 'code'], registers: [theirs] });
  const th = new Histogram({ name: 't_latency_seconds', help: 'Latency.', labelNames: NAMES, buckets: BUCKETS, registers: [theirs] });
  for (const { labels, seconds } of observations) {
    const code = seconds > 1 ? '504' : '200';
    oc.series(...labels, code).inc();
    tc.labels(...labels, code).inc();
    oh.series(...labels).observe(seconds);
    th.labels(...labels).observe(seconds);
  }
  return { ours, theirs };
}

const label = fc.constantFrom('a', 'b', 'team-1', 'with "quotes" and \\ and\nnewline');
const obs = fc.record({
  labels: fc.tuple(label, label, fc.constantFrom('main', 'canary'), fc.constantFrom('rest', 'grpc'), fc.constantFrom('primary', 'shadow')),
  // Bucket bounds exactly, values between them, above the last, and zero.
  seconds: fc.oneof(fc.constantFrom(0, ...BUCKETS, 31), fc.double({ min: 0, max: 60, noNaN: true })),
});

describe('bound series', () => {
  it('expose exactly what prom-client would for the same observations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(obs, { maxLength: 60 }), async (observations) => {
        const { ours, theirs } = both(observations);
        expect(await ours.metrics()).toBe(await theirs.metrics());
        expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
      }),
      { numRuns: 150 },
    );
  });

  it('aggregate across cluster workers exactly as prom-client does', async () => {
    const w1 = both([
      { labels: ['ns', 'd', 'main', 'rest', 'primary'], seconds: 0.003 },
      { labels: ['ns', 'd', 'canary', 'rest', 'primary'], seconds: 2 },
    ]);
    const w2 = both([{ labels: ['ns', 'd', 'main', 'rest', 'primary'], seconds: 0.04 }]);
    const ours = AggregatorRegistry.aggregate([await w1.ours.getMetricsAsJSON(), await w2.ours.getMetricsAsJSON()]);
    const theirs = AggregatorRegistry.aggregate([await w1.theirs.getMetricsAsJSON(), await w2.theirs.getMetricsAsJSON()]);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('t_latency_seconds_count{namespace="ns",deployment="d",predictor="main",protocol="rest",kind="primary"} 2');
    expect(text).toContain('t_requests_total{namespace="ns",deployment="d",predictor="canary",protocol="rest",kind="primary",code="504"} 1');
  });

  it('bind one series per label set, and show none until it has counted', async () => {
    const r = new Registry();
    const h = new BoundHistogram('h_seconds', 'H.', ['a'], [1], r);
    expect(h.series('x')).toBe(h.series('x'));
    expect(h.series('x')).not.toBe(h.series('y'));
    expect(await r.metrics()).toBe('# HELP h_seconds H.\n# TYPE h_seconds histogram\n');
    h.series('x').observe(0.5);
    h.series('x').observe(Number.NaN);
    expect(await r.metrics()).toBe(
      '# HELP h_seconds H.\n# TYPE h_seconds histogram\nh_seconds_bucket{le="1",a="x"} 1\nh_seconds_bucket{le="+Inf",a="x"} 1\nh_seconds_sum{a="x"} 0.5\nh_seconds_count{a="x"} 1\n',
    );
    expect(() => h.series('x', 'extra')).toThrow(/expected 1 label values/);
  });
});
