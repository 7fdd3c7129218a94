/**
 * Groups of hand-written Mappings end to end, as Emissary groups them (docs/routing.md#mapping-keys, #weights):
 * a real gateway with an external auth service, recording models, real sockets. A Mapping whose core key
 * (`bypass_auth`, `circuit_breakers`, …) differs from its group's is refused and /routes says why; weights
 * are never scaled up (what they leave falls through to the next route); a regex Mapping's default `rewrite: /`
 * replaces the whole path; `case_sensitive: false` leaves a regex alone.
 */
import http from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { listenLocal } from '../../helpers/net.js';

const NS = 'seldon';
const P = `/seldon/${NS}`;
const doc = (lines: string[]): string => ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', ...lines].join('\n');

/** The attack: a canary on a checked prefix that asks to skip the auth service; named to sort first. */
const CANARY = [doc(['name: stable', `prefix: ${P}/secure/`, 'service: stable-svc']), doc(['name: a-canary', `prefix: ${P}/secure/`, 'weight: 10', 'bypass_auth: true', 'service: canary-svc'])].join(
  '\n---\n',
);

const WEIGHTS = [
  // 10 and 10 over a catch-all: 10/10/80 (Emissary), never 50/50/0.
  doc(['name: w1', `prefix: ${P}/w/`, 'weight: 10', 'service: w1-svc']),
  doc(['name: w2', `prefix: ${P}/w/`, 'weight: 10', 'service: w2-svc']),
  doc(['name: rest', `prefix: ${P}/`, 'service: rest-svc']),
  // A weight past the group's 100: that Mapping is refused, the other keeps its own.
  doc(['name: big1', `prefix: ${P}/big/`, 'weight: 60', 'service: big1-svc']),
  doc(['name: big2', `prefix: ${P}/big/`, 'weight: 60', 'service: big2-svc']),
  // Regexes: the default rewrite `/` replaces the whole path; an explicit one is honoured; case_sensitive: false changes nothing.
  doc(['name: rx', `prefix: "${P}/rx/[a-z]+/predict"`, 'prefix_regex: true', 'service: rx-svc']),
  doc(['name: rxrw', `prefix: "${P}/rxrw/([a-z]+)"`, 'prefix_regex: true', 'rewrite: /api/v1.0/predictions', 'service: rxrw-svc']),
  doc(['name: rxcase', `prefix: "${P}/rxcase/[a-z]+"`, 'prefix_regex: true', 'case_sensitive: false', 'rewrite: ""', 'service: rxcase-svc']),
].join('\n---\n');

const MODELS = ['stable', 'canary', 'w1', 'w2', 'rest', 'big1', 'big2', 'rx', 'rxrw', 'rxcase'];

/** An HTTP auth service that records each check and allows `Bearer good` only. */
async function startAuth(): Promise<{ port: number; checks: string[]; close(): Promise<void> }> {
  const checks: string[] = [];
  const server = http.createServer((req, res) => {
    checks.push(req.url!);
    req.resume();
    res.writeHead(req.headers.authorization === 'Bearer good' ? 200 : 401, { 'content-type': 'text/plain' });
    res.end(req.headers.authorization === 'Bearer good' ? '' : 'denied');
  });
  const { port, close } = await listenLocal(server);
  return { port, checks, close };
}

describe('groups of Mappings as Emissary groups them', () => {
  const models: Record<string, RecordingUpstream> = {};
  let auth: Awaited<ReturnType<typeof startAuth>>;
  let gw: TestGateway;

  beforeAll(async () => {
    auth = await startAuth();
    const resolve: Record<string, number> = {};
    for (const s of MODELS) {
      models[s] = await startRecordingUpstream({ name: s });
      resolve[`${s}-svc.${NS}:80`] = models[s]!.port;
    }
    gw = await startTestGateway({
      manifests: {
        'canary.yaml': sdep('canary', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CANARY }),
        'weights.yaml': sdep('weights', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': WEIGHTS }),
      },
      resolve,
      args: ['--ext-auth-service', `http://127.0.0.1:${auth.port}`, '--ext-auth-default', 'true', '--random-seed', '7'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await auth?.close();
    await Promise.all(Object.values(models).map((m) => m.close()));
  });

  async function send(path: string, authorization = 'Bearer good'): Promise<{ status: number; upstream: string | undefined; body: string }> {
    const r = await request(`${gw.url}${path}`, { method: 'GET', headers: { authorization } });
    const body = await r.body.text();
    const upstream = r.headers['x-upstream'];
    return { status: r.statusCode, upstream: typeof upstream === 'string' ? upstream : undefined, body };
  }

  async function reasons(name: string): Promise<string[]> {
    const routes = (await (await request(`${gw.adminUrl}/routes`)).body.json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    return routes.deployments.find((d) => d.name === name)!.reasons;
  }

  it('a canary that adds bypass_auth to a checked prefix is refused: every request asks the auth service, none reaches the canary', async () => {
    const before = auth.checks.length;
    const counts: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const r = await send(`${P}/secure/x`, 'Bearer bad');
      counts[String(r.status)] = (counts[String(r.status)] ?? 0) + 1;
    }
    expect(counts).toEqual({ '401': 200 });
    expect(auth.checks.length - before).toBe(200);
    expect(models['canary']!.requests).toHaveLength(0);
    expect(models['stable']!.requests).toHaveLength(0);
    // Allowed requests all go to the stable Mapping: the group has only it.
    for (let i = 0; i < 50; i++) expect((await send(`${P}/secure/x`)).upstream).toBe('stable');
    expect(models['canary']!.requests).toHaveLength(0);
    expect(models['stable']!.requests.map((r) => r.target)).toEqual(Array(50).fill('/x'));
    expect((await reasons('canary')).join('\n')).toMatch(/Mapping seldon\/canary\/a-canary refused: its bypass_auth: true != -unset- \(every Mapping of a group must share bypass_auth\)/);
  });

  it('weights 10 and 10 over a catch-all: 10/10/80, the rest falls through to the next route', async () => {
    const counts: Record<string, number> = {};
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const who = (await send(`${P}/w/x`)).upstream!;
      counts[who] = (counts[who] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(['rest', 'w1', 'w2']);
    // Binomial bounds (about 5 standard deviations) around 200/200/1600.
    for (const w of ['w1', 'w2']) expect(Math.abs(counts[w]! - n * 0.1)).toBeLessThan(70);
    expect(Math.abs(counts['rest']! - n * 0.8)).toBeLessThan(90);
    // What fell through took the catch-all's rewrite: `/seldon/seldon/` replaced by `/`.
    expect(new Set(models['rest']!.requests.map((r) => r.target))).toEqual(new Set(['/w/x']));
    expect(new Set(models['w1']!.requests.map((r) => r.target))).toEqual(new Set(['/x']));
  });

  it('a weight that takes the group past 100 refuses that Mapping; the other keeps all of it', async () => {
    for (let i = 0; i < 20; i++) expect((await send(`${P}/big/x`)).upstream).toBe('big1');
    expect(models['big2']!.requests).toHaveLength(0);
    expect((await reasons('weights')).join('\n')).toMatch(/Mapping seldon\/weights\/big2 refused: its weight 60 takes the group's weights to 120, over 100/);
  });

  it('prefix_regex: the default rewrite / replaces the whole path (query kept), an explicit rewrite is honoured', async () => {
    expect((await send(`${P}/rx/abc/predict?q=1`)).upstream).toBe('rx');
    expect(models['rx']!.requests.map((r) => r.target)).toEqual(['/?q=1']);
    expect((await send(`${P}/rxrw/iris`)).upstream).toBe('rxrw');
    expect(models['rxrw']!.requests.map((r) => r.target)).toEqual(['/api/v1.0/predictions']);
  });

  it('case_sensitive: false does not make a prefix_regex case-insensitive (Envoy ignores it there)', async () => {
    expect((await send(`${P}/rxcase/abc`)).upstream).toBe('rxcase');
    // Another case: not this Mapping; the catch-all `/seldon/seldon/` takes it.
    expect((await send(`${P}/rxcase/ABC`)).upstream).toBe('rest');
    expect(models['rxcase']!.requests.map((r) => r.target)).toEqual([`${P}/rxcase/abc`]);
  });
});
