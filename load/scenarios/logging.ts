/**
 * What payload and decision logging costs the gateway (docs/payload-logging.md#cost), as CPU per
 * request (the gateway's process tree, utime+stime from /proc: primary and worker, so a shipper's
 * work counts), in one run. Every comparison is two gateways side by side under the same open-loop
 * load in the same windows (load/scenarios/jwt.ts's `--pair`): what the shared host does to one window
 * it does to both. Each round starts a fresh pair (a process keeps a bias of its own, measured at
 * up to 20% between two processes of one build on this machine), pinned together to one core
 * (--server-cpu) with this runner and its model on the other (--load-cpu), and swaps which side
 * starts first. Each round gives a ratio; the median of the rounds is reported.
 *
 * Steady state, not start-up: each pair serves both routes for `--warmup` seconds (default 20)
 * before a round is measured. A fresh worker's V8 young generation grows with what its requests
 * keep alive, committing new pages (a page fault each) for its first ten seconds or so under this
 * load; measured from one second in, that start-up cost a logged route 1.32x against 1.08x from
 * twenty seconds in (load/README.md, payload logging). Each side has its own Redis database, so
 * a side's shipper delivers its own events only (one stream key would let the baseline's shipper
 * take part of the case's work).
 *
 *   aa          this build against itself, both the route without an annotation: the noise floor
 *   before      another build (--before <its dist/gateway/main.js>, without --log-sinks, which it
 *               does not know) against this build with --log-sinks, both with --redis-url, the route
 *               without an annotation: what the feature costs a route that does not use it (target: within 1%)
 *   build       another build against this one, neither with --log-sinks: the code alone
 *   flag        this build without --log-sinks against itself with it: the sinks configured alone
 *   decisions   this build, `log: decisions` to a redis-stream sink, every request, against the route
 *               without an annotation on a gateway set up the same (target: at most 10% more)
 *   decisions-build  another build against this one, both with --log-sinks, both on the decisions
 *               route: a change's A/B on a logged route
 *   payload     this build, `log: all` (request, response, decision) at `sample: 0.1` to a
 *               cloudevents sink through Redis (the stream, then the primary's shipper POSTs to a
 *               receiver in this process), against the route without an annotation (target: at most 5%)
 *
 * Requests and answers are 1 KiB of JSON each, on every route. The model is a node:http server in
 * this process; Redis a redis-server of its own.
 *
 *   npm run bench -- loggingbefore /tmp/sgw-before/dist/gateway/main.js [--cases aa,before,decisions,payload] [--rate 500] [--seconds 8] [--rounds 8] [--warmup 20] [--load-cpu 0] [--server-cpu 1] [--args='<more gateway flags>']
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pinSelf, runMain } from '../lib/children.js';
import { GATEWAY_MAIN, startGateway, type Gateway } from '../lib/gateway.js';
import { CLK_TCK, procTicks, treeSeconds } from '../lib/proc.js';
import { log, median, table } from '../lib/report.js';
import { openLoop } from '../../test/fixtures/loopback-replicas.js';
import { startEventReceiver } from '../../test/helpers/event-receiver.js';
import { startRedis } from '../../test/helpers/redis.js';

const CASES = ['aa', 'before', 'build', 'flag', 'decisions', 'payload', 'decisions-build'] as const;
type Case = (typeof CASES)[number];
/** The route each side of a case serves: [baseline, case]. */
const ROUTES: Record<Case, [string, string]> = {
  aa: ['plain', 'plain'],
  before: ['plain', 'plain'],
  build: ['plain', 'plain'],
  flag: ['plain', 'plain'],
  decisions: ['plain', 'decisions'],
  payload: ['plain', 'payload'],
  'decisions-build': ['decisions', 'decisions'],
};
const TARGET: Record<Case, string> = {
  aa: '1.000x (noise)',
  before: '≤ 1.01x',
  build: '(part of before)',
  flag: '(part of before)',
  decisions: '≤ 1.10x',
  payload: '≤ 1.05x',
  'decisions-build': '(A/B of builds)',
};

const sdep = (name: string, annotations: Record<string, string>): string =>
  JSON.stringify({ apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name, namespace: 'models', annotations }, spec: { predictors: [{ name: 'main' }] } });

/** 1 KiB of JSON: a SeldonMessage whose ndarray fills it. */
function kib(seed: number): string {
  const head = '{"data":{"ndarray":[[';
  let s = head;
  for (let i = 0; s.length < 1000; i++) s += `${i === 0 ? '' : ','}${((seed + i) % 1000) / 1000}`;
  return `${s}]]}}`.padEnd(1024, ' ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: CASES.join(',') },
      before: { type: 'string' },
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '20' },
      'load-cpu': { type: 'string', default: '0' },
      'server-cpu': { type: 'string', default: '1' },
      /** More gateway flags, on both sides of every case (e.g. --max-semi-space-size 8). */
      args: { type: 'string', default: '' },
    },
  });
  const cases = values.cases.split(',') as Case[];
  for (const c of cases) if (!CASES.includes(c)) throw new Error(`--cases: ${c} is not one of ${CASES.join(', ')}`);
  if ((cases.includes('before') || cases.includes('build') || cases.includes('decisions-build')) && values.before === undefined)
    throw new Error('--before <dist/gateway/main.js of another build> is needed for the cases before, build and decisions-build');
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const warmup = Number(values.warmup);
  const serverCpu = Number(values['server-cpu']);
  const extra = values.args.split(/\s+/).filter(Boolean);
  pinSelf(Number(values['load-cpu']));
  const dir = mkdtempSync(join(tmpdir(), 'log-bench-'));
  const answer = kib(7);
  const model = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
  });
  model.listen(0, '127.0.0.1');
  await new Promise((r) => model.once('listening', r));
  const redis = await startRedis();
  const receiver = await startEventReceiver();
  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'plain.yaml'), sdep('plain', {}));
  writeFileSync(join(manifests, 'decisions.yaml'), sdep('decisions', { 'seldon.io/gateway-log': 'sinks: [stream]\nlog: decisions' }));
  writeFileSync(join(manifests, 'payload.yaml'), sdep('payload', { 'seldon.io/gateway-log': 'sinks: [logger]\nlog: all\nsample: 0.1' }));
  const sinks = join(dir, 'sinks.yaml');
  writeFileSync(sinks, `- name: stream\n  type: redis-stream\n  stream: bench-decisions\n  maxLen: 100000\n- name: logger\n  type: cloudevents\n  url: ${receiver.url}\n`);
  const started: Awaited<ReturnType<typeof startGateway>>[] = [];
  /** Each side its own Redis database: a side's shipper delivers its own events, never the other's (one stream key otherwise). */
  const launch = async (name: string, main: string, logging: boolean, db: number): ReturnType<typeof startGateway> => {
    const g = await startGateway(name, {
      log: join(dir, `${name}.log`),
      manifests,
      upstreams: ['plain-main.models:8000', 'decisions-main.models:8000', 'payload-main.models:8000'],
      backendPort: (model.address() as AddressInfo).port,
      nodeArgs: [],
      // Both sides use one redis-server (each its own database); only --log-sinks differs.
      args: ['--access-log', 'off', '--redis-url', `${redis.url}/${db}`, ...(logging ? ['--log-sinks', sinks] : []), ...extra],
      main,
      cpu: serverCpu,
    });
    started.push(g);
    return g;
  };
  const body = (i: number): string => kib(i);
  const path = (route: string): string => `/seldon/models/${route}/api/v1.0/predictions`;
  const rows: string[][] = [];
  for (const c of cases) {
    const [baseRoute, caseRoute] = ROUTES[c];
    const ratios: number[] = [];
    const us: [number[], number[]] = [[], []];
    /** The primaries' part (a cloudevents sink's shipper runs there): what the case's primary used beyond the baseline's, per request. */
    const primaryUs: number[] = [];
    let failed = 0;
    for (let round = 1; round <= rounds; round++) {
      // A fresh pair each round, started in turn: a process's own bias is drawn anew.
      const first = round % 2 === 1;
      type Side = [name: string, main: string, logging: boolean];
      const old = c === 'before' || c === 'build' || c === 'decisions-build';
      const baseSide: Side = [old ? `before-${round}` : `${c}-a-${round}`, old ? values.before! : GATEWAY_MAIN, c === 'decisions-build' || (!old && c !== 'flag')];
      const triedSide: Side = [old ? `this-${round}` : `${c}-b-${round}`, GATEWAY_MAIN, c !== 'build'];
      let base: Gateway;
      let tried: Gateway;
      if (first) {
        base = await launch(...baseSide, 1);
        tried = await launch(...triedSide, 2);
      } else {
        tried = await launch(...triedSide, 2);
        base = await launch(...baseSide, 1);
      }
      // Warm both, both routes.
      await Promise.all([base, tried].map((g) => Promise.all([openLoop(g.port, path(baseRoute), rate, warmup, body), openLoop(g.port, path(caseRoute), rate, warmup, body)])));
      const primary = (g: Gateway): number => procTicks(g.server.child.pid!, false) / CLK_TCK;
      const cpu0 = [treeSeconds(base.server.child.pid!), treeSeconds(tried.server.child.pid!)];
      const primary0 = [primary(base), primary(tried)];
      const [a, b] = await Promise.all([openLoop(base.port, path(baseRoute), rate, seconds, body), openLoop(tried.port, path(caseRoute), rate, seconds, body)]);
      const baseUs = ((treeSeconds(base.server.child.pid!) - cpu0[0]!) * 1e6) / a.length;
      const triedUs = ((treeSeconds(tried.server.child.pid!) - cpu0[1]!) * 1e6) / b.length;
      failed += [...a, ...b].filter((x) => x.status !== 200).length;
      primaryUs.push(((primary(tried) - primary0[1]!) * 1e6) / b.length - ((primary(base) - primary0[0]!) * 1e6) / a.length);
      us[0].push(baseUs);
      us[1].push(triedUs);
      ratios.push(triedUs / baseUs);
      log(`${c} round ${round}: baseline ${baseUs.toFixed(1)} µs, case ${triedUs.toFixed(1)} µs CPU/request: ${ratios.at(-1)!.toFixed(3)}x`);
      for (const g of [base, tried]) {
        g.server.child.kill('SIGTERM');
        await g.server.exited;
      }
      started.length = 0;
    }
    const sorted = [...ratios].sort((x, y) => x - y);
    rows.push([
      c,
      median(us[0]).toFixed(1),
      median(us[1]).toFixed(1),
      `${median(ratios).toFixed(3)}x`,
      `${sorted[0]!.toFixed(3)}x – ${sorted.at(-1)!.toFixed(3)}x`,
      median(primaryUs).toFixed(1),
      TARGET[c],
      String(failed),
    ]);
  }
  log(table(['case', 'baseline µs/req', 'case µs/req', 'median ratio', 'rounds range', 'of it primary µs/req', 'target', 'not 200'], rows));
  log(
    `${rate} requests/s to each of two gateways for ${seconds} s per round, ${rounds} rounds, side by side on core ${serverCpu} after ${warmup} s of warm-up; 1 KiB requests and answers; --workers 1, --access-log off; load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  for (const g of started) g.server.child.kill('SIGTERM');
  model.close();
  await receiver.close();
  await redis.stop();
}

runMain('log-bench', main);
