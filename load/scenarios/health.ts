/**
 * Endpoint health beside haproxy and nginx, in one run: four model replicas on 127.0.0.2–127.0.0.5
 * at one port, one of them sick, hanging or slow, behind each proxy in turn (load/lib/replica-proxies.ts:
 * the gateway's route timeout 1 s, `seldon.io/rest-timeout`), open-loop load; what the clients got
 * and where the requests went.
 *
 * Cases: all healthy (the latency baseline), one replica answering 500 at once (150/s for 20 s),
 * one that accepts and never answers (100/s for 10 s), one 10x slower (200 ms against 20 ms, 100/s
 * for 10 s). `npm run bench -- health [--seconds-scale 0.5]`.
 *
 * `--cpu-ab <other dist/gateway/main.js>`: instead, the gateway's CPU per request with all four
 * healthy (the endpoint-health bookkeeping on every attempt), this build against another, 1,000
 * requests/s for 10 s, rounds interleaved.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMain } from '../lib/children.js';
import { haproxyBinary } from '../lib/haproxy.js';
import { nginxBinary } from '../lib/nginx.js';
import { GATEWAY_MAIN } from '../lib/gateway.js';
import { treeSeconds } from '../lib/proc.js';
import { IRIS_PATH, gatewayTarget, haproxyTarget, nginxTarget, type Target } from '../lib/replica-proxies.js';
import { f1, log, median, table } from '../lib/report.js';
import { openLoop, restReplicas, share, type Replicas, type Sent } from '../../test/fixtures/loopback-replicas.js';

/** `rate` requests per second for `seconds`, open loop, to `port`. */
const load = (port: number, rate: number, seconds: number): Promise<Sent[]> => openLoop(port, IRIS_PATH, rate, seconds, () => '{"data":{"ndarray":[[1]]}}');

/** The gateway over the replicas, with the route timeout the cases need (1 s). */
const gateway = (dir: string, r: Replicas, main?: string): Promise<Target> =>
  gatewayTarget(dir, r.port, { annotations: { 'seldon.io/rest-timeout': '1000' }, ...(main !== undefined ? { main } : {}) });
const haproxy = (dir: string, r: Replicas): Promise<Target> => haproxyTarget(dir, r.port);
const nginx = (dir: string, r: Replicas): Promise<Target> => nginxTarget(dir, r.port);

const mean = (xs: readonly Sent[]): number => xs.reduce((a, x) => a + x.ms, 0) / Math.max(1, xs.length);

/** CPU µs per request of each build, all replicas healthy, `rounds` interleaved rounds. */
async function cpuAb(dir: string, other: string, rounds: number): Promise<void> {
  const r = await restReplicas(['ok', 'ok', 'ok', 'ok']);
  const us: Record<string, number[]> = { new: [], before: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [name, main] of [
        ['new', GATEWAY_MAIN],
        ['before', other],
      ] as const) {
        mkdirSync(join(dir, `${name}-${round}`), { recursive: true });
        const g = await gateway(join(dir, `${name}-${round}`), r, main);
        try {
          await load(g.port, 300, 2); // warm-up
          const cpu0 = treeSeconds(g.pid);
          const sent = await load(g.port, 1000, 10);
          const cpu = treeSeconds(g.pid) - cpu0;
          const bad = sent.filter((x) => x.status !== 200).length;
          if (bad > 0) throw new Error(`${name}: ${bad} requests failed`);
          us[name]!.push((cpu * 1e6) / sent.length);
        } finally {
          await g.stop();
        }
      }
    }
  } finally {
    await r.close();
  }
  log(
    table(
      ['build', ...Array.from({ length: rounds }, (_x, i) => `round ${i + 1} µs/req`), 'median'],
      Object.entries(us).map(([n, xs]) => [n, ...xs.map(f1), f1(median(xs))]),
    ),
  );
  log(`new / before: ${(median(us.new!) / median(us.before!)).toFixed(3)}`);
}

runMain('health-bench', async () => {
  const { values } = parseArgs({ options: { 'seconds-scale': { type: 'string', default: '1' }, 'cpu-ab': { type: 'string' }, rounds: { type: 'string', default: '3' } } });
  const k = Number(values['seconds-scale']);
  const dir = mkdtempSync(join(tmpdir(), 'sgw-health-bench-'));
  if (values['cpu-ab'] !== undefined) return cpuAb(dir, values['cpu-ab'], Number(values.rounds));
  const rows: string[][] = [];
  // haproxy and nginx where installed.
  for (const make of [gateway, ...(haproxyBinary() ? [haproxy] : []), ...(nginxBinary() ? [nginx] : [])]) {
    const r = await restReplicas(['ok', 'ok', 'ok', 'ok']);
    mkdirSync(join(dir, make.name), { recursive: true });
    const t = await make(join(dir, make.name), r);
    try {
      const healthy = await load(t.port, 100, 8 * k);
      r.modes[0] = 'fail';
      const sickStart = performance.now();
      const sick = await load(t.port, 150, 20 * k);
      r.modes[0] = 'hang';
      // A fresh start for the hanging case: the sick replica's ejection or mark-down must not carry over.
      await t.stop();
      const t2 = await make(join(dir, make.name), r);
      const hang = await load(t2.port, 100, 10 * k);
      await t2.stop();
      r.modes[0] = 'slow';
      const t3 = await make(join(dir, make.name), r);
      const slowStart = performance.now();
      const slow = await load(t3.port, 100, 10 * k);
      await t3.stop();
      const failed = (xs: Sent[]): string => `${xs.filter((x) => x.status !== 200).length} of ${xs.length}`;
      rows.push([
        t.name,
        failed(sick),
        `${f1(100 * share(r, 0, sickStart + 2000))}%`,
        failed(hang),
        `${f1(Math.max(...hang.map((x) => x.ms)))}`,
        `${f1(100 * share(r, 0, slowStart))}%`,
        `${(mean(slow) / mean(healthy)).toFixed(2)}x`,
      ]);
    } finally {
      await r.close();
    }
  }
  log(table(['proxy', 'sick: failed', 'sick: its share after 2 s', 'hanging: failed', 'hanging: slowest ms', 'slow: its share', 'slow: mean latency vs healthy'], rows));
});
