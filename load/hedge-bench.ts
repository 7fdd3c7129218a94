/**
 * Hedged requests beside haproxy and nginx (neither hedges) and the gateway without the
 * annotation, in one run: four model replicas on 127.0.0.2–127.0.0.5 answering in 8 ms, each
 * arrival with a 2% chance (seeded by request and replica) of 400 ms, behind each proxy in turn
 * (load/replica-proxies.ts), open-loop REST load; each proxy's p50, p99 and p99.9 and the
 * arrivals at the models per request.
 *
 *   gateway hedged  `seldon.io/gateway-hedge: after: p95` (the other settings their defaults)
 *   gateway         the same build without the annotation
 *   haproxy, nginx  as load/replica-proxies.ts configures them
 *
 * `npx vite-node load/hedge-bench.ts [--rate 150] [--seconds 30] [--seed 1]`. The environment's
 * HEDGE_BENCH_POLICY replaces the annotation's value, HEDGE_BENCH_WORKERS the hedged gateway's workers
 * (2), and HEDGE_BENCH_SHOW_SLOW=1 lists each request that still met the tail with its arrivals.
 *
 * `--cpu-ab <other dist/gateway/main.js>`: instead, the gateway's CPU per request at `--rate`
 * (1,000/s for this) without tail events, rounds interleaved: this build without the annotation
 * against the other build (what the annotation's absence costs: the target is within 1%), and this
 * build with it (a hedged route whose hedges almost never fire: the target is within 3%). At this
 * rate process CPU moves ±10–15% between rounds: load/hedge-profile.ts reads the mechanism's cost
 * from the worker's profile instead.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMain } from './lib/children.js';
import { treeSeconds } from './lib/proc.js';
import { GATEWAY_ADMIN_PORT, IRIS_PATH, gatewayTarget, haproxyTarget, nginxTarget, type Target } from './replica-proxies.js';
import { f1, f2, log, median, quantile, table } from './lib/report.js';
import { LoopbackPods, POD_REQUEST_ID, REPLICA_IPS, openLoop, type Sent } from '../test/fixtures/loopback-replicas.js';

const FAST_MS = 8;
const TAIL_MS = 400;
const HEDGED = { 'seldon.io/gateway-hedge': process.env.HEDGE_BENCH_POLICY ?? 'after: p95' };
const BODY = (): string => '{"data":{"ndarray":[[1]]}}';

/** A replica's time for request `id`: 8 ms, or 400 with probability `tail`, drawn from (seed, id, replica). */
function latency(seed: number, tail: number): (ip: string, id: string) => number {
  return (ip, id) => {
    // FNV-1a over seed, id and address: the same request meets the same replica's tail every run. Then
    // murmur3's finalizer: FNV's last step moves the top bits by the last character only a little, and
    // addresses differ in their last character, so without it a request in one replica's tail was in
    // every replica's (its hedge as slow as its first attempt).
    let h = 0x811c9dc5 ^ seed;
    for (const s of [id, ip]) for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return (h >>> 0) / 2 ** 32 < tail ? TAIL_MS : FAST_MS;
  };
}

/** `rate` requests a second for `seconds` to `t`, each named `${prefix}-${i}` for the pods. */
const load = (t: Target, prefix: string, rate: number, seconds: number): Promise<Sent[]> => openLoop(t.port, IRIS_PATH, rate, seconds, BODY, (i) => ({ [POD_REQUEST_ID]: `${prefix}-${i}` }));

type Make = (dir: string) => Promise<Target>;

async function tails(dir: string, pods: LoopbackPods, rate: number, seconds: number, seed: number): Promise<void> {
  const port = pods.restPort;
  const targets: [string, Make][] = [
    ['gateway hedged', (d) => gatewayTarget(d, port, { name: 'gateway hedged', annotations: HEDGED, workers: Number(process.env.HEDGE_BENCH_WORKERS ?? 2) })],
    ['gateway', (d) => gatewayTarget(d, port)],
    ['haproxy', (d) => haproxyTarget(d, port)],
    ['nginx', (d) => nginxTarget(d, port)],
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
      // The requests that still met a tail, and when (seconds into the run): a delay that rose with the tail, or both attempts slow.
      if (process.env.HEDGE_BENCH_SHOW_SLOW) {
        // Each request that still met the tail: its arrivals, when, their drawn latency, and which were cut.
        const lat = latency(seed, 0.02);
        for (const [i, x] of sent.entries()) {
          if (x.ms < TAIL_MS * 0.75) continue;
          const id = `${name}-${i}`;
          const arr = pods.arrivals.filter((a) => a.id === id);
          log(`  slow ${id} ${x.ms.toFixed(0)} ms: ${arr.map((a) => `${a.ip}@${(a.at - arr[0]!.at).toFixed(0)}ms lat ${lat(a.ip, id)}${a.cancelled ? ' cut' : ''}`).join(', ')}`);
        }
      }
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

/** CPU µs per request, no tail events, `rounds` interleaved rounds of each build and setting. */
async function cpuAb(dir: string, pods: LoopbackPods, other: string, rate: number, seconds: number, rounds: number): Promise<void> {
  const cases: [string, Make][] = [
    ['new, no annotation', (d) => gatewayTarget(d, pods.restPort)],
    ['before, no annotation', (d) => gatewayTarget(d, pods.restPort, { main: other })],
    ['new, hedged', (d) => gatewayTarget(d, pods.restPort, { annotations: HEDGED })],
  ];
  const us: Record<string, number[]> = Object.fromEntries(cases.map(([n]) => [n, []]));
  const extra: Record<string, number[]> = Object.fromEntries(cases.map(([n]) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    // Each round starts with the next case: a case always run last (a warmer machine, a fuller page cache) would carry that in its number.
    for (const [name, make] of cases.map((_c, i) => cases[(i + round) % cases.length]!)) {
      const d = join(dir, `cpu-${round}-${name.replace(/\W+/g, '-')}`);
      mkdirSync(d, { recursive: true });
      const t = await make(d);
      try {
        await load(t, `cpu-${round}-${name}-warmup`, Math.min(rate, 300), 2);
        const cpu0 = treeSeconds(t.pid);
        const sent = await load(t, `cpu-${round}-${name}`, rate, seconds);
        const cpu = treeSeconds(t.pid) - cpu0;
        const bad = sent.filter((x) => x.status !== 200).length;
        if (bad > 0) throw new Error(`${name}: ${bad} requests failed`);
        us[name]!.push((cpu * 1e6) / sent.length);
        // Hedges that went all the same (a model answer later than the delay: the machine's own jitter), per request.
        const prefix = `cpu-${round}-${name}-`;
        const arrivals = pods.arrivals.filter((a) => a.id.startsWith(prefix) && !a.id.startsWith(`${prefix}warmup`)).length;
        extra[name]!.push(arrivals / sent.length - 1);
      } finally {
        await t.stop();
      }
    }
  }
  log(`CPU per request at ${rate}/s for ${seconds} s, no tail events, ${rounds} rounds interleaved`);
  log(
    table(
      ['build', ...Array.from({ length: rounds }, (_x, i) => `round ${i + 1} µs/req`), 'median', 'extra attempts per request (median)'],
      Object.entries(us).map(([n, xs]) => [n, ...xs.map(f1), f1(median(xs)), `${(100 * median(extra[n]!)).toFixed(2)}%`]),
    ),
  );
  // The median of each round's ratio: the machine's drift between rounds (±10% at this rate) cancels within one.
  const r = (a: string, b: string): string => {
    const per = us[a]!.map((x, i) => x / us[b]![i]!);
    return `${median(per).toFixed(3)} (rounds: ${per.map((x) => x.toFixed(3)).join(', ')})`;
  };
  log(`no annotation, new / before: ${r('new, no annotation', 'before, no annotation')} (target: at most 1.01)`);
  log(`hedged / no annotation, new: ${r('new, hedged', 'new, no annotation')} (target: at most 1.03)`);
}

runMain('hedge-bench', async () => {
  const { values } = parseArgs({
    options: { rate: { type: 'string' }, seconds: { type: 'string' }, seed: { type: 'string', default: '1' }, 'cpu-ab': { type: 'string' }, rounds: { type: 'string', default: '3' } },
  });
  const dir = mkdtempSync(join(tmpdir(), 'sgw-hedge-bench-'));
  const ab = values['cpu-ab'];
  // Arrivals are kept for the tail table only (they are what "per request" counts).
  const pods = new LoopbackPods(ab === undefined ? latency(Number(values.seed), 0.02) : () => FAST_MS, false, 64, true);
  for (const ip of REPLICA_IPS) await pods.start(ip);
  try {
    if (ab !== undefined) await cpuAb(dir, pods, ab, Number(values.rate ?? 1000), Number(values.seconds ?? 10), Number(values.rounds));
    else await tails(dir, pods, Number(values.rate ?? 150), Number(values.seconds ?? 30), Number(values.seed));
  } finally {
    await pods.close();
  }
});
