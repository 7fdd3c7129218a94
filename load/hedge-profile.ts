/**
 * What a hedged route's mechanism costs the worker, read from V8 profiles rather than from process
 * CPU (which at 1,000 requests/s open-loop moves ±10-15% between rounds of the same build, too much
 * to see a few percent): a gateway with one worker under `node --cpu-prof`, four replicas answering
 * in 8 ms (no tail), `--rate` requests/s for `--seconds`, once per entry of `--cases` in that order
 * (interleave them). Per case: the worker's busy main-thread time per request over the load window,
 * and the self time of hedging's own functions and of Node's timers in it (`mechanism`).
 *
 *   npx vite-node load/hedge-profile.ts [--cases plain,p95,200ms,p95,plain] [--rate 1000] [--seconds 15]
 *
 * A case is `plain` (no annotation) or an `after` value (`p95`: the estimate and its timers;
 * `200ms`: the timers almost never fire; `12ms`: about when an 8 ms model's hedge would go), with
 * a budget after a slash (`12ms/0.1%`: its timers come due as often, but almost no hedge goes).
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMain } from './lib/children.js';
import { summarise } from './lib/cpuprofile.js';
import { f1, f2, log, median, table } from './lib/report.js';
import { IRIS_PATH, gatewayTarget } from './replica-proxies.js';
import { LoopbackPods, POD_REQUEST_ID, REPLICA_IPS, openLoop } from '../test/fixtures/loopback-replicas.js';

/** Hedging's own code and Node's timers (which the hedges' timer lists drive). */
const MECHANISM = /hedge|timeout-lists|latency-buckets|node:internal\/timers|node:timers/i;
const BODY = (): string => '{"data":{"ndarray":[[1]]}}';

runMain('hedge-profile', async () => {
  const { values } = parseArgs({
    options: { cases: { type: 'string', default: 'plain,p95,200ms,p95,plain,200ms' }, rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '15' } },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const dir = mkdtempSync(join(tmpdir(), 'sgw-hedge-profile-'));
  const pods = new LoopbackPods(() => 8, false, 64, true);
  for (const ip of REPLICA_IPS) await pods.start(ip);
  const rows: string[][] = [];
  const busy: Record<string, number[]> = {};
  try {
    for (const [k, name] of values.cases.split(',').entries()) {
      const d = join(dir, `${k}-${name.replace(/\W+/g, '-')}`);
      mkdirSync(d, { recursive: true });
      const [after, budget] = name.split('/');
      const annotations = name === 'plain' ? undefined : { 'seldon.io/gateway-hedge': budget === undefined ? `after: ${after}` : `{"after": "${after}", "budget": "${budget}"}` };
      // The gateway and its worker (which starts with the gateway's flags) each write a profile when they exit.
      const nodeArgs = ['--cpu-prof', '--cpu-prof-interval', '100', `--cpu-prof-dir=${d}`];
      const t = await gatewayTarget(d, pods.restPort, { annotations, workers: 1, nodeArgs });
      let t1 = 0;
      let t0 = 0;
      let sent = 0;
      try {
        await openLoop(t.port, IRIS_PATH, Math.min(rate, 300), 2, BODY, (i) => ({ [POD_REQUEST_ID]: `${k}-warmup-${i}` }));
        t0 = Date.now();
        const answers = await openLoop(t.port, IRIS_PATH, rate, seconds, BODY, (i) => ({ [POD_REQUEST_ID]: `${k}-${i}` }));
        t1 = Date.now();
        const bad = answers.filter((x) => x.status !== 200).length;
        if (bad > 0) throw new Error(`${name}: ${bad} requests failed`);
        sent = answers.length;
      } finally {
        await t.stop();
      }
      const t2 = Date.now();
      const extra = pods.arrivals.filter((a) => a.id.startsWith(`${k}-`) && !a.id.startsWith(`${k}-warmup`)).length / sent - 1;
      // The load window only (not start-up, warm-up or shutdown); the worker is the busier of the two profiles.
      const window = { fromEndUs: (t2 - t0) * 1000, toEndUs: (t2 - t1) * 1000 + 200_000 };
      const profiles = readdirSync(d).filter((f) => f.endsWith('.cpuprofile'));
      const w = profiles.map((f) => summarise(JSON.parse(readFileSync(join(d, f), 'utf8')), window)).sort((a, b) => b.busyMs - a.busyMs)[0];
      if (w === undefined) throw new Error(`${name}: no profile written in ${d}`);
      const mech = w.functions.filter((f) => MECHANISM.test(f.key));
      const mechMs = mech.reduce((s, f) => s + f.ms, 0);
      (busy[name] ??= []).push((w.busyMs * 1000) / sent);
      rows.push([
        name,
        f1((w.busyMs * 1000) / sent),
        f2((mechMs * 1000) / sent),
        `${((100 * mechMs) / w.busyMs).toFixed(1)}%`,
        `${(100 * extra).toFixed(2)}%`,
        mech
          .slice(0, 5)
          .map((f) => `${f.key.split(' ')[0]} ${f.ms.toFixed(0)}`)
          .join(', '),
      ]);
    }
  } finally {
    await pods.close();
  }
  log(`one worker, ${rate} requests/s for ${seconds} s per case, replicas at 8 ms, node --cpu-prof at 100 µs`);
  log(table(['case', 'worker busy µs/req', 'mechanism µs/req', 'of busy', 'extra attempts', 'mechanism, top (ms)'], rows));
  log(
    `median worker busy µs/req: ${Object.entries(busy)
      .map(([n, xs]) => `${n} ${f1(median(xs))}`)
      .join(', ')}`,
  );
});
