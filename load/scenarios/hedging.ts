/**
 * Hedged requests beside haproxy and nginx (neither hedges) and the gateway without the
 * annotation, in one run: four model replicas on 127.0.0.2–127.0.0.5 answering in 8 ms, each
 * arrival with a 2% chance (seeded by request and replica) of 400 ms, behind each proxy in turn
 * (load/lib/replica-proxies.ts), open-loop REST load; each proxy's p50, p99 and p99.9 and the
 * arrivals at the models per request.
 *
 *   gateway hedged  `seldon.io/gateway-hedge: after: p95` (the other settings their defaults)
 *   gateway         the same build without the annotation
 *   haproxy, nginx  as load/lib/replica-proxies.ts configures them
 *
 * `npm run bench -- hedging [--rate 150] [--seconds 30] [--seed 1]`. The environment's
 * HEDGE_BENCH_POLICY replaces the annotation's value, HEDGE_BENCH_WORKERS the hedged gateway's workers
 * (2).
 *
 * `--vs-main <other dist/gateway/main.js>`: instead, the gateway's CPU per request at `--rate`
 * (1,000/s for this) without tail events, two gateways side by side under the same load at once
 * (`--rounds` times each pair), each one's CPU the scheduler's exact run time of its processes
 * (lib/proc.ts `treeRuntimeSeconds`; utime+stime are sampled at the tick and charge a process that
 * wakes on its timers whole ticks). The pairs: this build without the annotation beside the other
 * build (the target is within 1%); this build with it beside without (a hedged route whose hedges
 * almost never fire: the target is within 3%); this build hedged beside the other build hedged (a
 * change to hedging itself; meaningless when the other build has none). One after the other,
 * process CPU at this rate moves ±10–15% between rounds; side by side, both see the same machine.
 * `--hedged-only` measures the second pair alone. `--vs-main`'s replicas run in a process of their
 * own (lib/pods-child.ts), as model servers do: beside the load generator they answered late often
 * enough for a `p95` route to hedge 1-1.5% of requests.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, runMain, startAnnounced } from '../lib/children.js';
import { haproxyBinary } from '../lib/haproxy.js';
import { nginxBinary } from '../lib/nginx.js';
import { treeCounters, treeRuntimeSeconds } from '../lib/proc.js';
import { GATEWAY_ADMIN_PORT, IRIS_PATH, gatewayTarget, haproxyTarget, nginxTarget, type Target } from '../lib/replica-proxies.js';
import { sideBySide } from '../lib/measure.js';
import { abVerdict, f1, f2, log, median, quantile, table } from '../lib/report.js';
import { stickyPoint } from '../../routing/steering/shares.js';
import { LoopbackPods, POD_REQUEST_ID, REPLICA_IPS, openLoop, type Sent } from '../../test/fixtures/loopback-replicas.js';

const FAST_MS = 8;
const TAIL_MS = 400;
const HEDGED = { 'seldon.io/gateway-hedge': process.env.HEDGE_BENCH_POLICY ?? 'after: p95' };
const BODY = (): string => '{"data":{"ndarray":[[1]]}}';

/**
 * A replica's time for request `id`: 8 ms, or 400 with probability `tail`, drawn from (seed, id, replica) by the
 * gateway's own sticky hash (routing/steering/shares.ts, FNV-1a with murmur3's avalanche): the same request meets the same
 * replica's tail every run, and one replica's tail says nothing of another's (a hedge is not as slow as its first attempt).
 */
const latency =
  (seed: number, tail: number) =>
  (ip: string, id: string): number =>
    stickyPoint(`${seed} ${id} ${ip}`) < tail ? TAIL_MS : FAST_MS;

/** `rate` requests a second for `seconds` to `t`, each named `${prefix}-${i}` for the pods. */
const load = (t: { readonly port: number }, prefix: string, rate: number, seconds: number): Promise<Sent[]> =>
  openLoop(t.port, IRIS_PATH, rate, seconds, BODY, (i) => ({ [POD_REQUEST_ID]: `${prefix}-${i}` }));

type Make = (dir: string) => Promise<Target>;

async function tails(dir: string, pods: LoopbackPods, rate: number, seconds: number): Promise<void> {
  const port = pods.restPort;
  const targets: [string, Make][] = [
    ['gateway hedged', (d) => gatewayTarget(d, port, { name: 'gateway hedged', annotations: HEDGED, workers: Number(process.env.HEDGE_BENCH_WORKERS ?? 2) })],
    ['gateway', (d) => gatewayTarget(d, port)],
    ...(haproxyBinary() ? [['haproxy', (d: string) => haproxyTarget(d, port)] as [string, Make]] : []),
    ...(nginxBinary() ? [['nginx', (d: string) => nginxTarget(d, port)] as [string, Make]] : []),
  ];
  const rows: string[][] = [];
  for (const [name, make] of targets) {
    const d = join(dir, name.replace(' ', '-'));
    mkdirSync(d, { recursive: true });
    const t = await make(d);
    try {
      // The estimate's first samples and the budget's first tokens (the same for every proxy).
      await load(t, `${name}-warmup`, rate, 2);
      const sent = await load(t, name, rate, seconds);
      const failed = sent.filter((x) => x.status !== 200).length;
      if (name === 'gateway hedged') {
        // Its own account of the hedges: sent (won, lost) and held (by why), and the delay in force at the end.
        const text = await fetch(`http://127.0.0.1:${GATEWAY_ADMIN_PORT}/metrics`).then((r) => r.text());
        for (const l of text.split('\n')) if (l.startsWith('seldon_gateway_hedge')) log(`  ${l}`);
      }
      const ms = sent.map((x) => x.ms);
      const arrivals = pods.arrivals.filter((a) => a.id.startsWith(`${name}-`) && !a.id.startsWith(`${name}-warmup`)).length;
      const slow = sent.flatMap((x, i) => (x.ms >= TAIL_MS * 0.75 ? [((i / rate) | 0).toString()] : []));
      rows.push([
        name,
        String(sent.length),
        String(failed),
        f1(quantile(ms, 0.5)),
        f1(quantile(ms, 0.99)),
        f1(quantile(ms, 0.999)),
        f1(Math.max(...ms)),
        f2(arrivals / sent.length),
        `${slow.length} (${slow.slice(0, 12).join(' ')}${slow.length > 12 ? ' …' : ''})`,
      ]);
    } finally {
      await t.stop();
    }
  }
  log(`four replicas at ${FAST_MS} ms, 2% of arrivals at ${TAIL_MS} ms; ${rate} requests/s for ${seconds} s per proxy`);
  log(table(['proxy', 'requests', 'failed', 'p50 ms', 'p99 ms', 'p99.9 ms', 'slowest ms', 'model arrivals per request', 'still slow (at s)'], rows));
}

/** One side of a pair: its name and how its gateway starts on `port`. */
type Side = readonly [string, (dir: string, port: number) => Promise<Target>];

/** The replicas of `--vs-main`, in a process of their own (lib/pods-child.ts): their port, and the requests that reached them by id prefix. */
interface ChildPods {
  readonly restPort: number;
  arrivals(prefix: string): Promise<number>;
  stop(): Promise<void>;
}

async function startChildPods(): Promise<ChildPods> {
  const waiting = new Map<string, (n: number) => void>();
  const child = await startAnnounced('pods', [process.execPath, join(ROOT, 'node_modules/vite-node/vite-node.mjs'), join(ROOT, 'load/lib/pods-child.ts')], {
    env: { PODS_MS: String(FAST_MS) },
    port: (l) => (l.startsWith('READY ') ? Number(l.slice(6)) : undefined),
    onLine: (l) => {
      const [word, prefix, n] = l.split(' ');
      if (word === 'ARRIVALS') waiting.get(prefix!)?.(Number(n));
    },
  });
  return {
    restPort: child.port,
    arrivals: (prefix) =>
      new Promise<number>((resolve) => {
        waiting.set(prefix, (n) => {
          waiting.delete(prefix);
          resolve(n);
        });
        child.child.stdin!.write(`arrivals ${prefix}\n`);
      }),
    stop: () => child.stop(),
  };
}

/**
 * CPU µs per request without tail events, two gateways at a time (lib/measure.ts `sideBySide`): both take `rate`
 * requests/s over the same seconds, and each one's process tree CPU is read over that window. The machine's drift
 * (±10–15% between rounds at this rate: wake-ups, frequency, neighbours) falls on both alike, so each round's ratio
 * is read within the round. `rounds` rounds of each pair; each pair's ratio is its second side over its first.
 */
async function cpuAb(dir: string, pods: ChildPods, other: string, rate: number, seconds: number, rounds: number, hedgedOnly: boolean): Promise<void> {
  const gw = (name: string, o: { main?: string; annotations?: Record<string, string> }): Side => [name, (d, port) => gatewayTarget(d, pods.restPort, { ...o, port })];
  const plain = gw('new, no annotation', {});
  const hedged = gw('new, hedged', { annotations: HEDGED });
  const pairs: [string, Side, Side, number][] = [
    ['no annotation, new / other', gw('other, no annotation', { main: other }), plain, 1.01],
    ['hedged / no annotation, new', plain, hedged, 1.03],
    // Meaningful when the other build hedges too (another build's hedging).
    ['hedged, new / other', gw('other, hedged', { main: other, annotations: HEDGED }), hedged, 1.01],
  ];
  const rows: string[][] = [];
  for (const [title, a, b, target] of hedgedOnly ? pairs.slice(1, 2) : pairs) {
    // Extra attempts (hedges that went all the same: a model answer later than the delay), wake-ups (voluntary
    // context switches) and read/write syscalls, per request: where a difference in CPU goes.
    const extra: [number[], number[]] = [[], []];
    const wakes: [number[], number[]] = [[], []];
    const calls: [number[], number[]] = [[], []];
    const tag = (round: number, which: number): string => `cpu-${title.replace(/\W+/g, '-')}-${round}-${which}`;
    const r = await sideBySide({
      rounds,
      seconds,
      warmupS: 2,
      cpuSeconds: treeRuntimeSeconds,
      start: (which, round) => {
        const d = join(dir, tag(round, which));
        mkdirSync(d, { recursive: true });
        // Sides swap ports each round: a port's place in the harness's and kernel's tables is not one side's.
        return [a, b][which]![1](d, 18_400 + 10 * ((which + round) % 2));
      },
      load: async (t, which, secs, round, warm) => {
        const sent = await load(t, `${tag(round, which)}${warm ? '-warmup' : ''}`, warm ? Math.min(rate, 300) : rate, secs);
        const bad = sent.filter((x) => x.status !== 200).length;
        if (bad > 0) throw new Error(`${[a, b][which]![0]}: ${bad} requests failed`);
        return sent;
      },
      window: (sides, round) => {
        const counted0 = sides.map((t) => treeCounters(t.pid));
        return async (sent) => {
          for (const [i, t] of sides.entries()) {
            const [c, c0, n] = [treeCounters(t.pid), counted0[i]!, sent[i]!.length];
            extra[i]!.push(((await pods.arrivals(`${tag(round, i)}-`)) - (await pods.arrivals(`${tag(round, i)}-warmup`))) / n - 1);
            wakes[i]!.push((c.vcsw - c0.vcsw) / n);
            calls[i]!.push((c.syscr + c.syscw - c0.syscr - c0.syscw) / n);
          }
        };
      },
    });
    rows.push([
      title,
      ...[0, 1].map((i) => `${f1(median(r.us[i]!))} (${(100 * median(extra[i]!)).toFixed(2)}%; ${f2(median(wakes[i]!))} wake-ups, ${f2(median(calls[i]!))} r/w calls)`),
      r.ratios.map((x) => x.toFixed(3)).join(' '),
      median(r.ratios).toFixed(3),
      `≤ ${target.toFixed(2)}`,
      abVerdict(r.ratios).split(' (')[0]!.slice('verdict: '.length),
    ]);
  }
  log(`CPU per request, process tree, two gateways side by side at ${rate}/s each for ${seconds} s, no tail events, ${rounds} rounds per pair`);
  log(table(['pair', 'first: µs/req (extra attempts; per request), medians', 'second', 'ratio per round', 'median ratio', 'target', 'verdict'], rows));
}

runMain('hedge-bench', async () => {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'vs-main': { type: 'string' },
      'vs-label': { type: 'string' },
      'hedged-only': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'sgw-hedge-bench-'));
  const ab = values['vs-main'];
  if (ab !== undefined) {
    const pods = await startChildPods();
    try {
      await cpuAb(dir, pods, ab, Number(values.rate ?? 1000), Number(values.seconds ?? 10), Number(values.rounds), values['hedged-only']);
    } finally {
      await pods.stop();
    }
    return;
  }
  // Arrivals are kept for the tail table (they are what "per request" counts).
  const pods = new LoopbackPods(latency(Number(values.seed), 0.02), false, 64, true);
  for (const ip of REPLICA_IPS) await pods.start(ip);
  try {
    await tails(dir, pods, Number(values.rate ?? 150), Number(values.seconds ?? 30));
  } finally {
    await pods.close();
  }
});
