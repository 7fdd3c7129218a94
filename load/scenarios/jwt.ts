/**
 * What a JWT check costs the gateway, in one run: CPU per request (the gateway's process tree,
 * utime+stime from /proc) and latency, open loop at a fixed rate, on the same route
 *
 *   plain        no seldon.io/gateway-jwt
 *   plain-token  the same, the client sending the same Authorization header as `cached` (forwarded as
 *                it is): what the check costs, without the cost of the header's bytes
 *   cached       seldon.io/gateway-jwt, every request the same RS256 token (verified once, then the
 *                cache: a SHA-256 and a map lookup); the claim `sub` as a header, the token removed
 *   cached-forward  the same token on a route whose policy edits nothing (`forward: true`, no claim
 *                headers): the model gets the request exactly as on `plain-token`, so the difference
 *                is the check alone
 *   fresh-rs256  a new RS256 token per request (a signature check each)
 *   fresh-es256  a new ES256 token per request
 *
 * The identity provider is test/fixtures/identity-provider.ts (its JWKS over HTTP), the model a
 * node:http server in this process; the gateway is the CLI (`npm run build` first, load/lib/gateway.ts
 * `startGateway`), one worker. Rounds interleave the cases; the table shows medians, each case's
 * ratio to `plain` and `plain-token`, and the median of its per-round ratios to `plain-token` (paired).
 * `--pair cached` (or `cached-forward`) runs two gateways of the build side by side instead, one serving
 * `plain-token` and the other the case, under the same load in the same windows (roles swapped every round),
 * and reports the median of the rounds' ratios: on a host whose speed moves by a fifth between windows, the only
 * way this machine resolves a few percent.
 * `--h2` sends over HTTP/2 without TLS (4 sessions, every request a stream) instead of HTTP/1.1 keep-alive.
 * /proc counts CPU in ticks of 10 ms: a window of 3,000 requests (1,500/s for 2 s) moves by 3.3 µs per tick, so
 * a question of a few percent needs windows of 10,000 requests or more (`--seconds 8`).
 *
 *   npm run bench -- jwt [--cases plain,plain-token,cached] [--rate 500] [--seconds 8] [--rounds 3] [--h2] [--main <dist/gateway/main.js of another build>]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMain } from '../lib/children.js';
import { GATEWAY_MAIN, startGateway } from '../lib/gateway.js';
import { treeSeconds } from '../lib/proc.js';
import { f1, log, median, table } from '../lib/report.js';
import { signingKey, startIdentityProvider } from '../../test/fixtures/identity-provider.js';
import { openLoop, openLoopH2 } from '../../test/fixtures/loopback-replicas.js';

const CASES = ['plain', 'plain-token', 'cached', 'cached-forward', 'fresh-rs256', 'fresh-es256'] as const;
type Case = (typeof CASES)[number];

const sdep = (name: string, annotations: Record<string, string>): string =>
  JSON.stringify({ apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name, namespace: 'models', annotations }, spec: { predictors: [{ name: 'main' }] } });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pair: { type: 'string' },
      cases: { type: 'string', default: CASES.join(',') },
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
      main: { type: 'string', default: GATEWAY_MAIN },
      h2: { type: 'boolean', default: false },
    },
  });
  const send = values.h2 ? openLoopH2 : openLoop;
  const cases = values.cases.split(',') as Case[];
  for (const c of cases) if (!CASES.includes(c)) throw new Error(`--cases: ${c} is not one of ${CASES.join(', ')}`);
  if (!cases.includes('plain') || !cases.includes('plain-token')) throw new Error('--cases: plain and plain-token are the baselines, keep them');
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const n = rate * seconds;
  const dir = mkdtempSync(join(tmpdir(), 'jwt-bench-'));
  const idp = await startIdentityProvider();
  const rs = await signingKey('rs', 'RS256');
  const es = await signingKey('es', 'ES256');
  idp.published = [rs, es];
  // The model: answers every prediction at once, in this process (the CPU measured is the gateway's tree alone).
  const model = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"ndarray":[[0.9]]}}'));
  });
  model.listen(0, '127.0.0.1');
  await new Promise((r) => model.once('listening', r));
  const providers = join(dir, 'providers.yaml');
  writeFileSync(providers, `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  audiences: [seldon]\n`);
  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'plain.yaml'), sdep('plain', {}));
  writeFileSync(join(manifests, 'jwt.yaml'), sdep('jwt', { 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'], scopes: ['predict'], claimsToHeaders: { sub: 'x-jwt-sub' } }) }));
  writeFileSync(join(manifests, 'jwtfwd.yaml'), sdep('jwtfwd', { 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'], scopes: ['predict'], forward: true }) }));
  const started: Awaited<ReturnType<typeof startGateway>>[] = [];
  const launch = async (name: string): ReturnType<typeof startGateway> => {
    const g = await startGateway(name, {
      log: join(dir, `${name}.log`),
      manifests,
      upstreams: ['plain-main.models:8000', 'jwt-main.models:8000', 'jwtfwd-main.models:8000'],
      backendPort: (model.address() as AddressInfo).port,
      nodeArgs: [],
      args: ['--jwt-providers', providers, '--access-log', 'off'],
      main: values.main,
    });
    started.push(g);
    return g;
  };
  const stopAll = async (): Promise<void> => {
    for (const g of started) {
      g.server.child.kill('SIGTERM');
      await g.server.exited;
    }
    model.close();
    await idp.close();
  };
  const claims = { sub: 'bench', aud: 'seldon', scope: 'predict' };
  const cached = await idp.token(claims, rs);
  const pathOf = (c: Case): string => `/seldon/models/${c.startsWith('plain') ? 'plain' : c === 'cached-forward' ? 'jwtfwd' : 'jwt'}/api/v1.0/predictions`;
  const body = (): string => '{"data":{"ndarray":[[1]]}}';
  const bearer = (): Record<string, string> => ({ authorization: `Bearer ${cached}` });

  if (values.pair !== undefined) {
    // Side by side: two gateways of one build under the same load at the same time, one serving plain-token,
    // the other the case; each round swaps them. What the host does to one window it does to both.
    const pair = values.pair as Case;
    if (pair !== 'cached' && pair !== 'cached-forward') throw new Error('--pair: cached or cached-forward');
    const gws = [await launch('gateway-1'), await launch('gateway-2')];
    await Promise.all(gws.map((g) => send(g.port, pathOf(pair), rate, 1, body, bearer)));
    const ratios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const [base, tried] = round % 2 === 1 ? [gws[0]!, gws[1]!] : [gws[1]!, gws[0]!];
      const cpu0 = [treeSeconds(base.server.child.pid!), treeSeconds(tried.server.child.pid!)];
      const [a, b] = await Promise.all([send(base.port, pathOf('plain-token'), rate, seconds, body, bearer), send(tried.port, pathOf(pair), rate, seconds, body, bearer)]);
      const baseUs = ((treeSeconds(base.server.child.pid!) - cpu0[0]!) * 1e6) / a.length;
      const triedUs = ((treeSeconds(tried.server.child.pid!) - cpu0[1]!) * 1e6) / b.length;
      const bad = [...a, ...b].filter((x) => x.status !== 200).length;
      ratios.push(triedUs / baseUs);
      log(`round ${round}: plain-token ${f1(baseUs)} µs, ${pair} ${f1(triedUs)} µs CPU/request: ${ratios.at(-1)!.toFixed(3)}x, ${bad} not 200`);
    }
    const sorted = [...ratios].sort((x, y) => x - y);
    log(
      `${pair} / plain-token, side by side: median ${median(ratios).toFixed(3)}x over ${rounds} rounds (from ${sorted[0]!.toFixed(3)}x to ${sorted.at(-1)!.toFixed(3)}x), ${rate} requests/s to each for ${seconds} s over ${values.h2 ? 'HTTP/2' : 'HTTP/1.1'}`,
    );
    await stopAll();
    return;
  }

  const gw = await launch('gateway');
  const port = gw.port;
  const results = new Map<Case, { cpuUs: number[]; p50: number[]; p99: number[]; failed: number[] }>();
  for (const c of cases) results.set(c, { cpuUs: [], p50: [], p99: [], failed: [] });
  for (let round = 1; round <= rounds; round++) {
    for (const c of cases) {
      // Tokens made before the measured window: the bench's own signing is not the gateway's CPU.
      const tokens =
        c === 'fresh-rs256' || c === 'fresh-es256' ? await Promise.all(Array.from({ length: n }, (_, i) => idp.token({ ...claims, jti: `${round}-${i}` }, c === 'fresh-rs256' ? rs : es))) : [];
      const headers = c === 'plain' ? () => ({}) : c === 'cached' || c === 'cached-forward' || c === 'plain-token' ? bearer : (i: number) => ({ authorization: `Bearer ${tokens[i]!}` });
      const path = pathOf(c);
      const cpu0 = treeSeconds(gw.server.child.pid!);
      const sent = await send(port, path, rate, seconds, body, headers);
      const cpu = treeSeconds(gw.server.child.pid!) - cpu0;
      const ms = sent.map((s) => s.ms).sort((a, b) => a - b);
      const r = results.get(c)!;
      r.cpuUs.push((cpu * 1e6) / sent.length);
      r.p50.push(ms[Math.floor(ms.length * 0.5)]!);
      r.p99.push(ms[Math.floor(ms.length * 0.99)]!);
      r.failed.push(sent.filter((s) => s.status !== 200).length);
      log(`round ${round} ${c}: ${f1((cpu * 1e6) / sent.length)} µs CPU/request, p50 ${f1(r.p50.at(-1)!)} ms, p99 ${f1(r.p99.at(-1)!)} ms, ${r.failed.at(-1)} not 200`);
    }
  }
  const base = median(results.get('plain')!.cpuUs);
  const withToken = median(results.get('plain-token')!.cpuUs);
  log(
    table(
      ['case', 'CPU µs/request', 'vs plain', 'vs plain-token', 'paired', 'p50 ms', 'p99 ms', 'not 200'],
      cases.map((c) => {
        const r = results.get(c)!;
        const cpu = median(r.cpuUs);
        // Each round's ratio to plain-token measured in the same round, their median: slow drift of the machine cancels.
        const paired = median(r.cpuUs.map((v, i) => v / results.get('plain-token')!.cpuUs[i]!));
        return [
          c,
          f1(cpu),
          `${(cpu / base).toFixed(3)}x`,
          `${(cpu / withToken).toFixed(3)}x`,
          `${paired.toFixed(3)}x`,
          f1(median(r.p50)),
          f1(median(r.p99)),
          String(r.failed.reduce((a, b) => a + b, 0)),
        ];
      }),
    ),
  );
  log(`${rate} requests/s for ${seconds} s per case and round, ${rounds} rounds interleaved, over ${values.h2 ? 'HTTP/2' : 'HTTP/1.1'}; gateway ${values.main}, --workers 1`);
  await stopAll();
}

runMain('jwt-bench', main);
