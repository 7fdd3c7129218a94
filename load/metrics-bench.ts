/**
 * What counting one request costs (not a test): prom-client's own Counter and Histogram children,
 * as the gateway used them until b202c83, against the series bound once per backend that it uses
 * now (gateway/observe/bound-series.ts), fed the same values in one process, interleaved rounds.
 * Each request is one `requests_total` increment and one `upstream_latency_seconds` observation.
 *
 *   npx vite-node load/metrics-bench.ts [--requests 1000000] [--rounds 5]
 *
 * Bounded: `--requests` per side per round (at most 10 million), `--rounds` (at most 20).
 */
import { parseArgs } from 'node:util';
import { Counter, Histogram, Registry } from 'prom-client';
import { BoundCounter, BoundHistogram } from '../gateway/observe/bound-series.js';

const { values: argv } = parseArgs({ options: { requests: { type: 'string' }, rounds: { type: 'string' } } });
const REQUESTS = Math.min(10_000_000, Math.max(1000, Number(argv.requests ?? 1_000_000)));
const ROUNDS = Math.min(20, Math.max(1, Number(argv.rounds ?? 5)));
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const NAMES = ['namespace', 'deployment', 'predictor', 'protocol', 'kind'];
const LABELS = ['seldon', 'iris', 'main', 'rest', 'primary'];

const theirs = new Registry();
const counter = new Counter({ name: 'r', help: 'r', labelNames: [...NAMES, 'code'], registers: [theirs] }).labels(...LABELS, '200');
const histogram = new Histogram({ name: 'l', help: 'l', labelNames: NAMES, buckets: BUCKETS, registers: [theirs] }).labels(...LABELS);
const ours = new Registry();
const boundCounter = new BoundCounter('r', 'r', [...NAMES, 'code'], ours).series(...LABELS, '200');
const boundHistogram = new BoundHistogram('l', 'l', NAMES, BUCKETS, ours).series(...LABELS);

function time(count: () => void, observe: (s: number) => void): number {
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    count();
    observe((i % 200) / 2000);
  }
  return ((performance.now() - t0) * 1000) / REQUESTS;
}

const promUs: number[] = [];
const boundUs: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  promUs.push(
    time(
      () => counter.inc(),
      (s) => histogram.observe(s),
    ),
  );
  boundUs.push(
    time(
      () => boundCounter.inc(),
      (s) => boundHistogram.observe(s),
    ),
  );
  console.log(`round ${round + 1}: prom-client children ${promUs.at(-1)!.toFixed(3)} µs/request, bound series ${boundUs.at(-1)!.toFixed(3)} µs/request`);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `median: prom-client ${median(promUs).toFixed(3)} µs, bound ${median(boundUs).toFixed(3)} µs per request (${(median(promUs) / median(boundUs)).toFixed(0)}x); both expose the same text (test/gateway/observe/bound-series.unit.test.ts)`,
);
if ((await ours.metrics()).length === 0 || (await theirs.metrics()).length === 0) throw new Error('nothing counted');
