/**
 * What a feature costs per request: the CPU of the gateway's process tree (utime+stime from /proc: primary and
 * worker, so an exporter's or a shipper's work counts) per request, two gateways side by side under the same
 * open-loop load in the same windows (lib/measure.ts `sideBySide`), one serving the case and the other its
 * baseline, each round a fresh pair pinned together to one core (--server-cpu), this runner and its model on the
 * other (--load-cpu). Each round gives a ratio; the table gives the medians, the rounds' range, the verdict of the
 * rounds (lib/report.ts `abVerdict`) and the case's target. Requests and answers are 1 KiB of JSON, over HTTP/1.1
 * keep-alive (`--h2`: HTTP/2 without TLS, 4 sessions).
 *
 *   tracing and the access log (npm run bench -- observability), against the gateway with neither:
 *     off           --trace-sample 0.01, no --otlp-endpoint: tracing is never built (target: nothing measurable)
 *     t0, t1, t100  --otlp-endpoint to an OTLP sink in this process, sampling 0, 1% (target ≤ 1.03x) and 100%
 *     json, text    the access log on (JSON or text lines, to a file) (target ≤ 1.10x)
 *   JWT checks (npm run bench -- jwt; the identity provider is test/fixtures/identity-provider.ts):
 *     token         the client sends an Authorization header, forwarded as it is, against none
 *     cached        seldon.io/gateway-jwt, every request the same RS256 token (verified once, then the cache), the
 *                   claim `sub` as a header, against `token`
 *     cached-forward  the same token, the policy editing nothing (`forward: true`): the check alone, against `token`
 *     fresh-rs256, fresh-es256  a new token per request (a signature check each, tokens made before the window)
 *   payload and decision logging (npm run bench -- logging; a redis-server of its own, each side its own database):
 *     aa            the route without an annotation on both sides: the noise floor
 *     flag          --log-sinks set, no route logging, against the gateway without it
 *     decisions     `log: decisions` to a redis-stream sink, every request (target ≤ 1.10x)
 *     payload       `log: all` at `sample: 0.1` to a cloudevents sink through Redis (target ≤ 1.05x)
 *
 * With --vs-main (another build's dist/gateway/main.js) each case is served by both builds, the other one on the
 * baseline side: a change's A/B on that case's route and settings.
 *
 *   npm run bench -- jwt|observability|logging [--cases a,b] [--rate 500] [--seconds 8] [--rounds 5] [--warmup 10] [--h2]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { predictionPath, sdep, writeManifests } from '../lib/bench-table.js';
import { atCleanup, pinSelf, runMain } from '../lib/children.js';
import { GATEWAY_MAIN, startGateway } from '../lib/gateway.js';
import { startModel } from '../lib/http.js';
import { sideBySide, type Side } from '../lib/measure.js';
import { CLK_TCK, procTicks } from '../lib/proc.js';
import { abVerdict, f1, log, median, quantile, table } from '../lib/report.js';
import { signingKey, startIdentityProvider } from '../../test/fixtures/identity-provider.js';
import { openLoop, openLoopH2, type Sent } from '../../test/fixtures/loopback-replicas.js';
import { startEventReceiver } from '../../test/helpers/event-receiver.js';
import { startRedis } from '../../test/helpers/redis.js';

/** What one side serves: its route, its gateway flags (`{sink}`, `{redis}`, `{sinks}` filled in), the Authorization it is sent. */
interface SideSpec {
  readonly route: string;
  readonly args?: readonly string[];
  readonly auth?: 'token' | 'RS256' | 'ES256';
}
interface Case {
  readonly base: SideSpec;
  readonly side: SideSpec;
  readonly target: string;
}
const PLAIN: SideSpec = { route: 'plain' };
const TOKEN: SideSpec = { route: 'plain', auth: 'token' };
const OTLP = ['--otlp-endpoint', '{sink}', '--trace-sample'];
const LOGS = ['--redis-url', '{redis}', '--log-sinks', '{sinks}'];
const CASES: Record<string, Case> = {
  off: { base: PLAIN, side: { route: 'plain', args: ['--trace-sample', '0.01'] }, target: '≤ 1.01x' },
  t0: { base: PLAIN, side: { route: 'plain', args: [...OTLP, '0'] }, target: '' },
  t1: { base: PLAIN, side: { route: 'plain', args: [...OTLP, '0.01'] }, target: '≤ 1.03x' },
  t100: { base: PLAIN, side: { route: 'plain', args: [...OTLP, '1'] }, target: '' },
  json: { base: PLAIN, side: { route: 'plain', args: ['--access-log', 'on'] }, target: '≤ 1.10x' },
  text: { base: PLAIN, side: { route: 'plain', args: ['--access-log', 'on', '--access-log-format', 'text'] }, target: '≤ 1.10x' },
  token: { base: PLAIN, side: TOKEN, target: '' },
  cached: { base: TOKEN, side: { route: 'jwt', auth: 'token' }, target: '' },
  'cached-forward': { base: TOKEN, side: { route: 'jwtfwd', auth: 'token' }, target: '' },
  'fresh-rs256': { base: TOKEN, side: { route: 'jwt', auth: 'RS256' }, target: '' },
  'fresh-es256': { base: TOKEN, side: { route: 'jwt', auth: 'ES256' }, target: '' },
  aa: { base: PLAIN, side: PLAIN, target: '1.000x (noise)' },
  flag: { base: { route: 'plain', args: ['--redis-url', '{redis}'] }, side: { route: 'plain', args: LOGS }, target: '≤ 1.01x' },
  decisions: { base: { route: 'plain', args: LOGS }, side: { route: 'decisions', args: LOGS }, target: '≤ 1.10x' },
  payload: { base: { route: 'plain', args: LOGS }, side: { route: 'payload', args: LOGS }, target: '≤ 1.05x' },
};
const ROUTES: Record<string, Record<string, string>> = {
  plain: {},
  jwt: { 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'], scopes: ['predict'], claimsToHeaders: { sub: 'x-jwt-sub' } }) },
  jwtfwd: { 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'], scopes: ['predict'], forward: true }) },
  decisions: { 'seldon.io/gateway-log': 'sinks: [stream]\nlog: decisions' },
  payload: { 'seldon.io/gateway-log': 'sinks: [logger]\nlog: all\nsample: 0.1' },
};

/** 1 KiB of JSON: a SeldonMessage whose ndarray fills it. */
function kib(seed: number): string {
  let s = '{"data":{"ndarray":[[';
  for (let i = 0; s.length < 1000; i++) s += `${i === 0 ? '' : ','}${((seed + i) % 1000) / 1000}`;
  return `${s}]]}}`.padEnd(1024, ' ');
}

runMain('cost-bench', async () => {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: 'aa,flag,decisions,payload' },
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '10' },
      h2: { type: 'boolean', default: false },
      'vs-main': { type: 'string' },
      'vs-label': { type: 'string', default: 'the other build' },
      'load-cpu': { type: 'string', default: '0' },
      'server-cpu': { type: 'string', default: '1' },
    },
  });
  const cases = values.cases.split(',');
  for (const c of cases) if (!CASES[c]) throw new Error(`--cases: ${c} is not one of ${Object.keys(CASES).join(', ')}`);
  const [rate, seconds, rounds, warmup] = [values.rate, values.seconds, values.rounds, values.warmup].map(Number) as [number, number, number, number];
  const vs = values['vs-main'];
  const send = values.h2 ? openLoopH2 : openLoop;
  pinSelf(Number(values['load-cpu']));
  const dir = mkdtempSync(join(tmpdir(), 'cost-bench-'));
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));

  const model = await startModel(kib(7));
  atCleanup(() => model.close());
  const idp = await startIdentityProvider();
  const rs = await signingKey('rs', 'RS256');
  const es = await signingKey('es', 'ES256');
  idp.published = [rs, es];
  const claims = { sub: 'bench', aud: 'seldon', scope: 'predict' };
  const cached = await idp.token(claims, rs);
  const providers = join(dir, 'providers.yaml');
  writeFileSync(providers, `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  audiences: [seldon]\n`);
  const sink = await startModel('');
  const receiver = await startEventReceiver();
  const redis = cases.some((c) => [CASES[c]!.base, CASES[c]!.side].some((s) => s.args?.includes('{redis}'))) ? await startRedis() : undefined;
  atCleanup(() => void (sink.close(), redis?.stop()));
  const sinks = join(dir, 'sinks.yaml');
  writeFileSync(sinks, `- name: stream\n  type: redis-stream\n  stream: bench-decisions\n  maxLen: 100000\n- name: logger\n  type: cloudevents\n  url: ${receiver.url}\n`);
  mkdirSync(join(dir, 'manifests'));
  const manifests = writeManifests(
    join(dir, 'manifests', 'sdeps.yaml'),
    Object.entries(ROUTES).map(([name, a]) => sdep(name, 'models', a)),
  );

  /** One side's gateway: its own Redis database (a side's shipper delivers its own events, never the other's). */
  const start = async (s: SideSpec, main: string, name: string, db: number): Promise<Side> => {
    const fill: Record<string, string> = { '{sink}': `http://127.0.0.1:${sink.port}`, '{redis}': `${redis?.url}/${db}`, '{sinks}': sinks };
    const args = (s.args ?? []).map((a) => fill[a] ?? a);
    const g = await startGateway(name, {
      log: join(dir, `${name}.log`),
      cpu: Number(values['server-cpu']),
      manifests,
      upstreams: Object.keys(ROUTES).map((r) => `${r}-main.models:8000`),
      backendPort: model.port,
      main,
      args: ['--jwt-providers', providers, ...(args.includes('--access-log') ? [] : ['--access-log', 'off']), ...args],
    });
    return { port: g.port, pid: g.server.pid, stop: g.stop };
  };
  const rows: string[][] = [];
  for (const c of cases) {
    const { base, side, target } = CASES[c]!;
    const specs = vs ? [side, side] : [base, side];
    /** A round's fresh tokens, made before its sides start: the bench's own signing is not the gateway's CPU. */
    let tokens: string[] = [];
    const headers =
      (s: SideSpec, warm: boolean) =>
      (i: number): Record<string, string> =>
        !s.auth ? {} : { authorization: `Bearer ${s.auth === 'token' || warm ? cached : tokens[i]!}` };
    /** The primaries' share: what the case's primary used beyond the baseline's, per request (a cloudevents shipper runs there). */
    const primaryUs: number[] = [];
    const r = await sideBySide({
      rounds,
      seconds,
      warmupS: warmup,
      start: async (which, round) => {
        if (side.auth === 'RS256' || side.auth === 'ES256')
          tokens = await Promise.all(Array.from({ length: rate * seconds }, (_, i) => idp.token({ ...claims, jti: `${round}-${i}` }, side.auth === 'RS256' ? rs : es)));
        return start(specs[which]!, which === 0 && vs ? vs : GATEWAY_MAIN, `${c}-${which}-${round}`, which + 1);
      },
      load: (s, which, secs, _round, warm) => send(s.port, predictionPath(specs[which]!.route, 'models'), rate, secs, kib, headers(specs[which]!, warm)),
      window: (sides) => {
        const primary = (s: Side): number => procTicks(s.pid) / CLK_TCK;
        const p0 = sides.map(primary);
        const us = (i: number, n: number): number => ((primary(sides[i]!) - p0[i]!) * 1e6) / n;
        return (sent) => void primaryUs.push(us(1, sent[1]!.length) - us(0, sent[0]!.length));
      },
    });
    for (const [i, us] of r.us[1].entries()) log(`${c} round ${i + 1}: baseline ${f1(r.us[0][i])} µs, case ${f1(us)} µs CPU/request: ${r.ratios[i]!.toFixed(3)}x`);
    const ms = r.sent[1].flat().map((x) => x.ms);
    const notOk = [...r.sent[0], ...r.sent[1]].flat().filter((x: Sent) => x.status !== 200).length;
    rows.push([
      c,
      vs ? `the same on ${values['vs-label']}` : `${base.route}${base.auth ? ' + token' : ''}${base.args ? ` ${base.args.join(' ')}` : ''}`,
      f1(median(r.us[0])),
      f1(median(r.us[1])),
      `${median(r.ratios).toFixed(3)}x`,
      `${Math.min(...r.ratios).toFixed(3)}x – ${Math.max(...r.ratios).toFixed(3)}x`,
      abVerdict(r.ratios).split(' (')[0]!.slice('verdict: '.length),
      target,
      f1(median(primaryUs)),
      `${f1(quantile(ms, 0.5))} / ${f1(quantile(ms, 0.99))}`,
      String(notOk),
    ]);
  }
  log(table(['case', 'baseline', 'baseline µs/req', 'case µs/req', 'median ratio', 'rounds range', 'verdict', 'target', 'of it primary µs/req', 'case p50 / p99 ms', 'not 200'], rows));
  log(
    `${rate} requests/s to each of two gateways for ${seconds} s per round, ${rounds} rounds, side by side on core ${values['server-cpu']} after ${warmup} s of warm-up; 1 KiB requests and answers over ${values.h2 ? 'HTTP/2' : 'HTTP/1.1'}; --workers 1; load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  await Promise.all([idp.close(), receiver.close(), redis?.stop()]);
});
