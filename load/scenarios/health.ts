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
 * `--vs-main <other dist/gateway/main.js>`: instead, the gateway's CPU per request with all four
 * healthy (the endpoint-health bookkeeping on every attempt), this build beside the other under the
 * same 1,000 requests/s for 10 s (lib/measure.ts `sideBySide`), `--rounds` fresh pairs.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMain } from '../lib/children.js';
import { haproxyBinary } from '../lib/haproxy.js';
import { nginxBinary } from '../lib/nginx.js';
import { GATEWAY_MAIN } from '../lib/gateway.js';
import { sideBySide } from '../lib/measure.js';
import { IRIS_PATH, gatewayTarget, haproxyTarget, nginxTarget, type Target } from '../lib/replica-proxies.js';
import { abVerdict, f1, f2, log, median, table } from '../lib/report.js';
import { openLoop, restReplicas, share, type Replicas, type Sent } from '../../test/fixtures/loopback-replicas.js';

/** `rate` requests per second for `seconds`, open loop, to `port`. */
const load = (port: number, rate: number, seconds: number): Promise<Sent[]> => openLoop(port, IRIS_PATH, rate, seconds, () => '{"data":{"ndarray":[[1]]}}');

/** The gateway over the replicas, with the route timeout the cases need (1 s). */
const gateway = (dir: string, r: Replicas, main?: string, port?: number): Promise<Target> =>
  gatewayTarget(dir, r.port, { annotations: { 'seldon.io/rest-timeout': '1000' }, ...(main !== undefined ? { main } : {}), ...(port !== undefined ? { port } : {}) });
const haproxy = (dir: string, r: Replicas): Promise<Target> => haproxyTarget(dir, r.port);
const nginx = (dir: string, r: Replicas): Promise<Target> => nginxTarget(dir, r.port);

const mean = (xs: readonly Sent[]): number => xs.reduce((a, x) => a + x.ms, 0) / Math.max(1, xs.length);

/** CPU µs per request of this build (second) beside the other (first), all replicas healthy. */
async function cpuAb(dir: string, other: string, label: string, rounds: number): Promise<void> {
  const r = await restReplicas(['ok', 'ok', 'ok', 'ok']);
  try {
    const ab = await sideBySide({
      rounds,
      seconds: 10,
      warmupS: 2,
      start: (which, round) => {
        const d = join(dir, `${which}-${round}`);
        mkdirSync(d, { recursive: true });
        return gateway(d, r, which === 0 ? other : GATEWAY_MAIN, 18_400 + 10 * which);
      },
      load: async (t, which, seconds, _round, warm) => {
        const sent = await load(t.port, warm ? 300 : 1000, seconds);
        const bad = sent.filter((x) => x.status !== 200).length;
        if (bad > 0) throw new Error(`${which === 0 ? label : 'this build'}: ${bad} requests failed`);
        return sent;
      },
    });
    const row = (name: string, xs: number[]): string[] => [name, xs.map(f1).join(' '), f1(median(xs))];
    log(table(['build', 'µs/req by round', 'median'], [row(label, ab.us[0]), row('this build', ab.us[1])]));
    log(`this build / ${label}, CPU per request by round: ${ab.ratios.map(f2).join(' ')}`);
    log(abVerdict(ab.ratios));
  } finally {
    await r.close();
  }
}

runMain('health-bench', async () => {
  const { values } = parseArgs({
    options: { 'seconds-scale': { type: 'string', default: '1' }, 'vs-main': { type: 'string' }, 'vs-label': { type: 'string', default: 'the other build' }, rounds: { type: 'string', default: '3' } },
  });
  const k = Number(values['seconds-scale']);
  const dir = mkdtempSync(join(tmpdir(), 'sgw-health-bench-'));
  if (values['vs-main'] !== undefined) return cpuAb(dir, values['vs-main'], values['vs-label'], Number(values.rounds));
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
