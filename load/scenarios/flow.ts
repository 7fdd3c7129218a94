/**
 * Flow-control benchmark (not a test): a model of fixed concurrency overloaded through the
 * gateway without flow control, with it, and through haproxy, side by side in one run.
 *
 *   model    load/lib/fixed-concurrency-model.ts: serves 4 requests at once, 50 ms each (capacity
 *            80/s); the rest wait unseen in a FIFO, and a client that left is still served
 *   plain    seldon-gateway with its default workers (one per core, as users run it), the deployment
 *            without `seldon.io/gateway-flow`
 *   flow     the same gateway, a deployment with `concurrency: 4, queue: 100, queueTimeout: 1s`
 *   haproxy  Debian's haproxy: `maxconn 4` on the one server, `timeout queue 1s`, priority classes
 *            from x-seldon-priority (load/lib/haproxy.ts)
 *
 * Every deployment has `seldon.io/rest-timeout: 3000` (Seldon's default route timeout) and haproxy
 * `timeout server 3s`. Load is open loop (load/lib/open-streams.ts): fixed arrival rates, latency
 * from each request's due time, bounded in count and time, loopback only. The model's queue is
 * flushed between runs, so no run inherits another's backlog.
 *
 * Scenarios (--scenario, comma-separated; default overload):
 *   overload    2x capacity: plain, flow, haproxy
 *   priorities  2x capacity as 20% critical, 50% standard, 30% sheddable: flow, haproxy; critical
 *               p99 against critical alone at a quarter of capacity
 *   tenants     tenant A at 3x capacity, B at a quarter (x-tenant, `tenant: header:x-tenant`): flow, haproxy
 *   adaptive    `concurrency: adaptive, queue: 4, queueTimeout: 100ms` at 2x capacity, the model
 *               slowing 3x half-way (its concurrency unknown to the gateway); the gateway's
 *               seldon_gateway_flow_limit followed every 250 ms
 *   flood       deployment A flooded at 3x capacity, B (its own model) at half its capacity: B's
 *               p99 against B alone: flow, haproxy
 *
 *   npm run bench -- flow [--scenario overload,priorities] [--duration 60] [--unloaded 10]
 *
 * --duration: seconds per loaded run (default 60); --unloaded: seconds of each unloaded reference run (default 10).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { predictionPath, sdep, writeManifests } from '../lib/bench-table.js';
import { atCleanup, nodeScript, runMain, sleep, startAnnounced, type Announced } from '../lib/children.js';
import { buildInfo, counter, GATEWAY_MAIN, metricsText, restUpstreams, startGateway, type Gateway } from '../lib/gateway.js';
import { haproxyBinary, startHaproxy } from '../lib/haproxy.js';
import { freePort } from '../lib/http.js';
import { numbers } from '../lib/options.js';
import { combined, okQuantile, okQuantileBetween, refusedQuantile, runStreams, steadyOkRate, type Stream, type StreamResult } from '../lib/open-streams.js';
import { f0, f1, log, table } from '../lib/report.js';

const HERE = join(dirname(fileURLToPath(import.meta.url)), '..', 'lib');
const CONCURRENCY = 4;
const SERVICE_MS = 50;
const CAPACITY = (CONCURRENCY * 1000) / SERVICE_MS;
const ROUTE_TIMEOUT_MS = 3000;
const NS = 'bench';
const SCENARIOS = ['overload', 'priorities', 'tenants', 'adaptive', 'flood'] as const;
type Scenario = (typeof SCENARIOS)[number];

const FIXED = 'concurrency: 4\nqueue: 100\nqueueTimeout: 1s';
/** Deployment → its flow annotation (undefined: none). */
const DEPLOYMENTS: Record<string, string | undefined> = {
  plain: undefined,
  flow: FIXED,
  tenants: `${FIXED}\ntenant: header:x-tenant`,
  adaptive: 'concurrency: adaptive\nqueue: 4\nqueueTimeout: 100ms',
  'flood-a': FIXED,
  'flood-b': FIXED,
};
const path = (deployment: string): string => predictionPath(deployment, NS);

const writeFlowManifests = (dir: string): string =>
  writeManifests(
    join(dir, 'sdeps.yaml'),
    Object.entries(DEPLOYMENTS).map(([name, flow]) => sdep(name, NS, { 'seldon.io/rest-timeout': String(ROUTE_TIMEOUT_MS), ...(flow ? { 'seldon.io/gateway-flow': flow } : {}) })),
  );

interface Model {
  readonly proc: Announced;
  readonly port: number;
  slow(factor: number): void;
  /** Drop what the last run left queued and wait until nothing is in service, at most 60 s. */
  drained(): Promise<void>;
  stats(): Promise<ModelStats>;
}

/** The model's own counters (lib/fixed-concurrency-model.ts): answers, what waits and what is in service, and its slots' idle gaps between an answer and the next request. */
interface ModelStats {
  readonly served: number;
  readonly queued: number;
  readonly active: number;
  readonly idleMs: number;
  readonly idleGaps: number;
}

async function startModel(label: string): Promise<Model> {
  const proc = await startAnnounced(label, [process.execPath, ...nodeScript(HERE, 'fixed-concurrency-model')], {
    env: { BENCH_CONCURRENCY: String(CONCURRENCY), BENCH_SERVICE_MS: String(SERVICE_MS) },
    port: (line) => (/^listening (\d+)$/.exec(line) ? Number(RegExp.$1) : undefined),
  });
  const stats = async (): Promise<ModelStats> => (await (await fetch(`http://127.0.0.1:${proc.port}/__stats`)).json()) as ModelStats;
  return {
    proc,
    port: proc.port,
    stats,
    slow: (factor) => void proc.child.stdin!.write(`slow ${factor}\n`),
    async drained() {
      proc.child.stdin!.write('flush\n');
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        const s = await stats();
        if (s.queued === 0 && s.active === 0) return;
        await sleep(200);
      }
      throw new Error(`${label}: still busy 60 s after the run`);
    },
  };
}

/** A row of the main table: one target's (or class's) answers over a run of `seconds`. */
function row(name: string, r: StreamResult, seconds: number, capacity = CAPACITY): string[] {
  const steady = steadyOkRate(r, steadyFrom(seconds));
  return [
    name,
    f0(r.asked / seconds),
    f1(r.ok / seconds),
    f1(steady),
    `${f0((steady / capacity) * 100)}%`,
    f0(okQuantile(r, 0.5)),
    f0(okQuantile(r, 0.99)),
    f0(r.late),
    f0(r.refused),
    r.refused ? f1(refusedQuantile(r, 0.99)) : '–',
    r.refused ? `${f0((r.refusedMs.filter((ms) => ms > AT_ONCE_MS).length / r.refused) * 100)}%` : '–',
    f0(r.failed),
    f0(r.lost),
  ];
}
/**
 * The steady state starts once the queue has filled (5 s, a quarter of a short run). Its rate, the
 * 200s answered per second from then to the run's end, is the model's goodput: the total 200s of
 * the requests sent during the run (the first 200/s column) also counts the queue drained after
 * the last one, which adds a deeper queue's length (haproxy's 1 s against flow control's 0.8 s).
 */
/** A refusal answered within this is at once (the bound on a refusal's p99); later ones waited first. */
const AT_ONCE_MS = 20;
const steadyFrom = (seconds: number): number => Math.min(5, Math.floor(seconds / 4));
const HEAD = [
  'target',
  'offered/s',
  '200/s (sent in run)',
  '200/s (steady)',
  '% of capacity (steady)',
  'p50 ms (200)',
  'p99 ms (200)',
  'answers > 2.5 s',
  '503',
  '503 p99 ms',
  `503 after > ${AT_ONCE_MS} ms`,
  'other (504…)',
  'no answer',
];

const flowLimit = async (admin: number, deployment: string): Promise<number | undefined> => counter(await metricsText(admin), 'seldon_gateway_flow_limit', { deployment }) || undefined;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string' }, unloaded: { type: 'string' }, scenario: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    log('npm run bench -- flow [--scenario overload,priorities,tenants,adaptive,flood] [--duration 60] [--unloaded 10]');
    return;
  }
  const { duration: seconds, unloaded: unloadedSeconds } = numbers(values, { duration: 60, unloaded: 10 });
  const scenarios = (values.scenario ?? 'overload').split(',') as Scenario[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`--scenario: "${s}" is not one of ${SCENARIOS.join(', ')}`);
  const durationMs = seconds * 1000;

  const dir = mkdtempSync(join(tmpdir(), 'sgw-flow-bench-'));
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const model = await startModel('model');
  const modelB = await startModel('model-b');
  const manifests = writeFlowManifests(dir);
  const { upstreams, routes } = restUpstreams(manifests);
  const floodB = new Set(routes.deployments.filter((d) => d.name === 'flood-b').flatMap((d) => d.routes.flatMap((r) => r.members.map((m) => m.upstream))));
  const gateway: Gateway = await startGateway('gateway', {
    log: join(dir, 'gateway.log'),
    manifests,
    upstreams: upstreams.filter((u) => !floodB.has(u)),
    backendPort: model.port,
    nodeArgs: [],
    workers: 'default',
    args: ['--access-log', 'off', ...[...floodB].flatMap((u) => ['--resolve', `${u}=127.0.0.1:${modelB.port}`])],
  });
  const flowState = routes.deployments.map((d) => `${d.name}: ${d.state}`).join(', ');
  const haproxyPort = await freePort();
  // haproxy where installed; its rows are left out otherwise.
  const haproxy = haproxyBinary() !== null;
  // Priority classes from x-seldon-priority (critical first, sheddable last): haproxy's own way to reorder its queue.
  if (haproxy)
    await startHaproxy(join(dir, 'haproxy'), haproxyPort, undefined, {
      defaults: `  timeout client 30s\n  timeout http-keep-alive 60s\n  timeout server ${ROUTE_TIMEOUT_MS}ms\n  timeout queue 1000ms`,
      frontend: `  http-request set-priority-class int(-10) if { req.hdr(x-seldon-priority) -m str critical }
  http-request set-priority-class int(10) if { req.hdr(x-seldon-priority) -m str sheddable }
  use_backend flood-b if { path_beg ${path('flood-b')} }
  default_backend model`,
      backends: `backend flood-b\n  server b 127.0.0.1:${modelB.port} maxconn ${CONCURRENCY}\nbackend model\n  server m 127.0.0.1:${model.port} maxconn ${CONCURRENCY}`,
    });
  const gw = `http://127.0.0.1:${gateway.port}`;
  const hp = haproxy ? `http://127.0.0.1:${haproxyPort}` : '';
  /** The gateway (named `name`) and haproxy where installed: the proxies a case compares. */
  const proxies = (name: string): [string, string][] => [[name, gw], ...(haproxy ? [['haproxy', hp] as [string, string]] : [])];
  /** A case's section: its title, its table, and what the table does not say. */
  const section = (title: string, rows: string[][], notes: string[]): void => log(`## ${title}\n\n${table(HEAD, rows)}\n\n${notes.map((v) => `- ${v}`).join('\n')}\n`);

  log(`# flow-bench: a model of concurrency ${CONCURRENCY} and ${SERVICE_MS} ms service time (capacity ${CAPACITY}/s), ${seconds} s per loaded run`);
  log(`gateway: ${buildInfo(GATEWAY_MAIN)}; deployments: ${flowState}`);
  log(`haproxy: maxconn ${CONCURRENCY}, timeout queue 1s, timeout server ${ROUTE_TIMEOUT_MS / 1000}s\n`);

  /** One run from drained models; `idle` is told the model's slots' idle gaps during it (their total ms and count). */
  const run = async (origin: string, streams: Stream[], ms = durationMs, idle?: (ms: number, gaps: number) => void): Promise<StreamResult[]> => {
    await model.drained();
    await modelB.drained();
    const before = idle && (await model.stats());
    const results = await runStreams(origin, streams, ms);
    if (idle && before) {
      const after = await model.stats();
      idle(after.idleMs - before.idleMs, after.idleGaps - before.idleGaps);
    }
    return results;
  };

  if (scenarios.includes('overload')) {
    const rows: string[][] = [];
    const gaps: string[] = [];
    for (const [name, origin, deployment] of [
      ['gateway, no annotation', gw, 'plain'],
      ['gateway, concurrency 4, queue 100, queueTimeout 1s', gw, 'flow'],
      ['haproxy, maxconn 4, timeout queue 1s', hp, 'flow'],
    ].filter((t): t is [string, string, string] => t[1] !== '')) {
      const [r] = await run(origin, [{ label: name, path: path(deployment), rate: 2 * CAPACITY }], durationMs, (ms, n) =>
        gaps.push(`${name}: ${n ? `${f1((ms / n) * 1000)} µs` : '–'} on average over ${n} gaps`),
      );
      rows.push(row(name, r!, seconds));
    }
    section(`overload: 2x capacity (${2 * CAPACITY}/s) for ${seconds} s`, rows, [
      "the model's slots idle between an answer and the proxy's next request (a slot the proxy keeps busy waits only for it):",
      ...gaps,
    ]);
  }

  if (scenarios.includes('priorities')) {
    const [alone] = await run(gw, [{ label: 'critical alone', path: path('flow'), rate: CAPACITY / 4, headers: { 'x-seldon-priority': 'critical' } }], unloadedSeconds * 1000);
    const classes = (deployment: string): Stream[] =>
      (
        [
          ['critical', 0.2],
          ['standard', 0.5],
          ['sheddable', 0.3],
        ] as const
      ).map(([c, share]) => ({ label: c, path: path(deployment), rate: 2 * CAPACITY * share, headers: { 'x-seldon-priority': c } }));
    const rows: string[][] = [];
    const verdicts: string[] = [];
    for (const [name, origin] of proxies('gateway (flow)')) {
      const results = await run(origin, classes('flow'));
      rows.push(row(`${name}: all`, combined('all', results), seconds));
      for (const r of results) rows.push(row(`${name}: ${r.label}`, r, seconds));
      const critical = results.find((r) => r.label === 'critical')!;
      verdicts.push(
        `${name}: critical refused ${critical.refused + critical.failed + critical.lost}; critical p99 ${f0(okQuantile(critical, 0.99))} ms vs ${f0(okQuantile(alone!, 0.99))} ms alone (${f1(okQuantile(critical, 0.99) / okQuantile(alone!, 0.99))}x)`,
      );
    }
    section(
      `priorities: 2x capacity as 20% critical, 50% standard, 30% sheddable, ${seconds} s; critical alone at ${CAPACITY / 4}/s for ${unloadedSeconds} s: p99 ${f0(okQuantile(alone!, 0.99))} ms`,
      rows,
      verdicts,
    );
  }

  if (scenarios.includes('tenants')) {
    const rows: string[][] = [];
    const shares: string[] = [];
    for (const [name, origin] of proxies('gateway (flow, tenant: header:x-tenant)')) {
      const results = await run(origin, [
        { label: 'A', path: path('tenants'), rate: 3 * CAPACITY, headers: { 'x-tenant': 'A' } },
        { label: 'B', path: path('tenants'), rate: CAPACITY / 4, headers: { 'x-tenant': 'B' } },
      ]);
      for (const r of results) rows.push(row(`${name}: tenant ${r.label}`, r, seconds));
      const b = results.find((r) => r.label === 'B')!;
      shares.push(`${name}: B got ${f1((b.ok / b.asked) * 100)}% of what it asked (${b.ok} of ${b.asked})`);
    }
    section(`tenants: A at 3x capacity (${3 * CAPACITY}/s), B at a quarter (${CAPACITY / 4}/s), ${seconds} s`, rows, shares);
  }

  if (scenarios.includes('adaptive')) {
    const [alone] = await run(gw, [{ label: 'unloaded', path: path('adaptive'), rate: CAPACITY / 2 }], unloadedSeconds * 1000);
    const limits: { t: number; limit: number | undefined }[] = [];
    const half = durationMs / 2;
    const t0 = Date.now();
    let following = true;
    const follow = (async () => {
      while (following) {
        limits.push({ t: Date.now() - t0, limit: await flowLimit(gateway.admin, 'adaptive') });
        await sleep(250);
      }
    })();
    const slowdown = setTimeout(() => model.slow(3), half);
    const [r] = await run(gw, [{ label: 'adaptive', path: path('adaptive'), rate: 2 * CAPACITY }]);
    clearTimeout(slowdown);
    following = false;
    await follow;
    model.slow(1);
    const perSecond = r!.okDonePerSecond;
    const halfS = Math.floor(seconds / 2);
    const before = perSecond.slice(Math.min(5, halfS), halfS);
    const after = perSecond.slice(halfS + 5);
    const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const limitAt = (t: number): number | undefined => [...limits].reverse().find((l) => l.t <= t)?.limit;
    const preSlow = limitAt(half);
    const down = limits.find((l) => l.t > half && l.limit !== undefined && preSlow !== undefined && l.limit < preSlow);
    const rows = [row('gateway (adaptive), whole run', r!, seconds), row(`unloaded (${CAPACITY / 2}/s, ${unloadedSeconds} s)`, alone!, unloadedSeconds)];
    section(`adaptive: concurrency adaptive, queue 4, queueTimeout 100ms; 2x capacity for ${seconds} s, the model 3x slower from ${halfS} s`, rows, [
      `before the slowdown (s 5..${halfS}): ${f1(mean(before))} 200/s = ${f0((mean(before) / CAPACITY) * 100)}% of capacity; p99 ${f0(okQuantileBetween(r!, Math.min(5, halfS), halfS, 0.99))} ms vs ${f0(okQuantile(alone!, 0.99))} ms unloaded (${f1(okQuantileBetween(r!, Math.min(5, halfS), halfS, 0.99) / okQuantile(alone!, 0.99))}x; the whole run's, the slow half included: ${f0(okQuantile(r!, 0.99))} ms)`,
      `after it (s ${halfS + 5}..${seconds}): ${f1(mean(after))} 200/s = ${f0((mean(after) / (CAPACITY / 3)) * 100)}% of the new capacity (${f1(CAPACITY / 3)}/s)`,
      `seldon_gateway_flow_limit: ${preSlow ?? '–'} before the slowdown, ${limitAt(half + 5000) ?? '–'} 5 s after, ${limitAt(durationMs) ?? '–'} at the end; first lower ${down ? `${f1((down.t - half) / 1000)} s after the slowdown` : 'never'}`,
    ]);
  }

  if (scenarios.includes('flood')) {
    const [alone] = await run(gw, [{ label: 'B alone', path: path('flood-b'), rate: CAPACITY / 2 }], unloadedSeconds * 1000);
    const rows: string[][] = [row(`gateway: B alone (${CAPACITY / 2}/s, ${unloadedSeconds} s)`, alone!, unloadedSeconds)];
    const ratios: string[] = [];
    for (const [name, origin] of proxies('gateway (flow on both)')) {
      const results = await run(origin, [
        { label: 'A (flood)', path: path('flood-a'), rate: 3 * CAPACITY },
        { label: 'B', path: path('flood-b'), rate: CAPACITY / 2 },
      ]);
      for (const r of results) rows.push(row(`${name}: ${r.label}`, r, seconds));
      const b = results.find((r) => r.label === 'B')!;
      ratios.push(
        `${name}: B's p99 ${f0(okQuantile(b, 0.99))} ms under A's flood vs ${f0(okQuantile(alone!, 0.99))} ms alone through the gateway (${f1(okQuantile(b, 0.99) / okQuantile(alone!, 0.99))}x)`,
      );
    }
    section(`flood: A flooded at 3x capacity (${3 * CAPACITY}/s), B on its own model at half capacity (${CAPACITY / 2}/s), ${seconds} s`, rows, ratios);
  }
}

runMain('flow-bench', main);
