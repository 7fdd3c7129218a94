/**
 * The k6 scripts in load/k6: k6 itself cannot run here, so they are type-checked against @types/k6
 * (with a negative control proving the k6 types are really applied), checked for what a user needs
 * (options, a default function, how to run it, no remote imports), and their pure helpers are run
 * against a real gateway's answers, /routes and /metrics.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectedMirrors,
  expectedSplit,
  formatShadowReport,
  formatSplitReport,
  headerValue,
  parsePrometheus,
  parseSplit,
  predictUrl,
  requestHeaders,
  shadowReport,
  splitReport,
  sumSamples,
  type RoutesJson,
} from '../../load/k6/lib.js';
import { startHttpBackend, type HttpBackend } from '../fixtures/http-backend.js';
import { sdep } from '../helpers/gateway.js';
import { sleep } from '../helpers/wait.js';
import { getJson, getText, post, startObservedGateway, type ObservedGateway } from '../helpers/observability.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const k6dir = join(root, 'load/k6');
const tsc = (project: string) => spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', project, '--noEmit'], { encoding: 'utf8', timeout: 120_000 });
const scripts = readdirSync(k6dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== 'lib.ts');

describe('k6 scripts type-check against @types/k6', () => {
  it('tsc -p load/k6/tsconfig.json --noEmit passes', () => {
    const r = tsc(join(k6dir, 'tsconfig.json'));
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);

  it('and would fail on a misuse of the k6 API (the types are applied, not any)', () => {
    // Inside the project, so that `types: ["k6"]` finds node_modules/@types/k6.
    mkdirSync(join(root, '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(root, '.tmp', 'k6-negative-'));
    try {
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(k6dir, 'tsconfig.json'), include: ['./*.ts'] }));
      writeFileSync(
        join(dir, 'bad.ts'),
        "import http from 'k6/http';\nimport grpc from 'k6/net/grpc';\nexport default function (): void {\n  http.post(42);\n  new grpc.Client().invoke('x', 'not an object');\n  __ENV.X.toFixed();\n}\n",
      );
      const r = tsc(join(dir, 'tsconfig.json'));
      expect(r.status).not.toBe(0);
      const out = r.stdout;
      expect(out).toMatch(/bad\.ts\(4,/);
      expect(out).toMatch(/bad\.ts\(5,/);
      expect(out).toMatch(/bad\.ts\(6,/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('the four scripts: REST at a rate, gRPC, canary check, shadow check; each runnable as it says', () => {
    expect(scripts.sort()).toEqual(['canary-check.ts', 'grpc-predict.ts', 'rest-predict.ts', 'shadow-check.ts']);
    for (const f of scripts) {
      const src = readFileSync(join(k6dir, f), 'utf8');
      expect(src, f).toContain(`k6 run `);
      expect(src, f).toContain(`load/k6/${f}`);
      expect(src, f).toMatch(/export const options: Options = \{/);
      expect(src, f).toMatch(/export default function/);
      expect(src, f).toMatch(/thresholds: \{/);
      // Only k6's modules and the local helpers: nothing remote, nothing from Node.
      for (const [, from] of src.matchAll(/from '([^']+)'/g)) expect(from, `${f} imports ${from}`).toMatch(/^(k6(\/[a-z/]+)?|\.\/lib\.ts)$/);
    }
    expect(readFileSync(join(k6dir, 'rest-predict.ts'), 'utf8')).toContain("executor: 'constant-arrival-rate'");
    expect(readFileSync(join(k6dir, 'grpc-predict.ts'), 'utf8')).toContain("'seldon.protos.Seldon/Predict'");
    expect(readFileSync(join(k6dir, 'canary-check.ts'), 'utf8')).toContain("'x-seldon-predictor'");
    expect(readFileSync(join(k6dir, 'shadow-check.ts'), 'utf8')).toContain('/metrics');
  });

  it('the gRPC script loads protos that exist', () => {
    const src = readFileSync(join(k6dir, 'grpc-predict.ts'), 'utf8');
    const dir = /env\('PROTO_DIR', '([^']+)'\)/.exec(src)![1]!;
    const file = /env\('PROTO_FILE', '([^']+)'\)/.exec(src)![1]!;
    expect(readFileSync(join(k6dir, dir, file), 'utf8')).toContain('rpc Predict(SeldonMessage) returns (SeldonMessage)');
  });
});

describe('k6 helpers', () => {
  it('build URLs and headers, read headers whatever their case, parse splits', () => {
    expect(predictUrl('http://gw:8080/', 'seldon', 'iris')).toBe('http://gw:8080/seldon/seldon/iris/api/v1.0/predictions');
    expect(requestHeaders(undefined)).toEqual({ 'Content-Type': 'application/json' });
    expect(requestHeaders('t0k', { 'x-region': 'eu' })).toEqual({ 'Content-Type': 'application/json', Authorization: 'Bearer t0k', 'x-region': 'eu' });
    expect(headerValue({ 'X-Seldon-Predictor': 'main' }, 'x-seldon-predictor')).toBe('main');
    expect(headerValue({ 'x-seldon-predictor': ['a', 'b'] }, 'X-Seldon-Predictor')).toBe('a,b');
    expect(headerValue({}, 'x')).toBeUndefined();
    expect(parseSplit('main=75, canary=25')).toEqual({ main: 75, canary: 25 });
    expect(() => parseSplit('main:75')).toThrow(/not <predictor>=<percent>/);
  });

  it('judge a split: within 4 standard deviations passes, off fails, a 0% predictor must get nothing, every answer must be named', () => {
    expect(splitReport({ main: 7420, canary: 2580 }, { 200: 10_000 }, 0, { main: 75, canary: 25 }).ok).toBe(true);
    const off = splitReport({ main: 7000, canary: 3000 }, { 200: 10_000 }, 0, { main: 75, canary: 25 });
    expect(off.ok).toBe(false);
    expect(off.rows.map((r) => [r.predictor, r.observed, r.ok])).toEqual([
      ['canary', 30, false],
      ['main', 70, false],
    ]);
    expect(formatSplitReport(off)).toContain('split NOT as configured');
    expect(splitReport({ main: 999, canary: 1 }, {}, 0, { main: 100, canary: 0 }).ok).toBe(false);
    expect(splitReport({ main: 1000 }, {}, 0, { main: 100, canary: 0 }).ok).toBe(true);
    expect(splitReport({ main: 900 }, {}, 100, { main: 100 }).ok).toBe(false);
    expect(splitReport({ main: 70, canary: 30 }, {}, 0, { main: 75, canary: 25 }, 6).ok).toBe(true);
  });
});

describe('k6 helpers against a real gateway', () => {
  let main: HttpBackend;
  let canary: HttpBackend;
  let shadow: HttpBackend;
  let gw: ObservedGateway;
  beforeAll(async () => {
    main = await startHttpBackend({ name: 'main' });
    canary = await startHttpBackend({ name: 'canary' });
    shadow = await startHttpBackend({
      name: 'shadow',
      handler: (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: { ndarray: [[req.headers['x-n'] === '0' ? 2 : 1]] } }));
      },
    });
    gw = await startObservedGateway({
      manifests: {
        'income.yaml': sdep('income', 'seldon', {
          predictors: [
            { name: 'main', traffic: 75 },
            { name: 'canary', traffic: 25 },
            { name: 'shadow', shadow: true },
          ],
        }),
      },
      resolve: { 'income-main.seldon:8000': main.port, 'income-canary.seldon:8000': canary.port, 'income-shadow.seldon:8000': shadow.port },
      args: ['--predictor-header', '--shadow-compare'],
    });
  });
  afterAll(async () => {
    await gw.stop();
    await Promise.all([main.close(), canary.close(), shadow.close()]);
  });

  it('the canary check reads the configured split from /routes and the observed one from x-seldon-predictor', async () => {
    const routes = await getJson<RoutesJson>(`${gw.adminUrl}/routes`);
    const expected = expectedSplit(routes, 'seldon', 'income');
    expect(expected).toEqual({ main: 75, canary: 25 });
    expect(expectedMirrors(routes, 'seldon', 'income')).toEqual([{ deployment: 'income', predictor: 'shadow', percent: 100 }]);
    expect(() => expectedSplit(routes, 'seldon', 'nope')).toThrow(/no SeldonDeployment/);

    const before = parsePrometheus(await getText(`${gw.adminUrl}/metrics`));
    const counts: Record<string, number> = {};
    const statuses: Record<string, number> = {};
    let unnamed = 0;
    const url = predictUrl(gw.url, 'seldon', 'income');
    for (let i = 0; i < 400; i++) {
      const r = await post(url, { 'x-n': String(i % 10) });
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      const p = headerValue(r.headers as Record<string, string | string[] | undefined>, 'X-Seldon-Predictor');
      if (p === undefined) unnamed++;
      else counts[p] = (counts[p] ?? 0) + 1;
    }
    const report = splitReport(counts, statuses, unnamed, expected);
    expect(report.unnamed).toBe(0);
    expect(report.total).toBe(400);
    expect(report.ok).toBe(true);
    expect(formatSplitReport(report)).toMatch(/main\s+\d+\s+[\d.]+%\s+75%/);

    // The shadow check: metric differences between two scrapes, the second once every mirror
    // (they end after their primaries) is counted and compared.
    const counted = (m: ReturnType<typeof parsePrometheus>, name: string): number => sumSamples(m, name, { deployment: 'income' }) - sumSamples(before, name, { deployment: 'income' });
    let after = parsePrometheus(await getText(`${gw.adminUrl}/metrics`));
    for (const end = Date.now() + 15_000; Date.now() < end && (counted(after, 'seldon_gateway_shadow_requests_total') < 400 || counted(after, 'seldon_gateway_shadow_comparisons_total') < 400);) {
      await sleep(50);
      after = parsePrometheus(await getText(`${gw.adminUrl}/metrics`));
    }
    expect(
      sumSamples(after, 'seldon_gateway_requests_total', { deployment: 'income', kind: 'primary' }) - sumSamples(before, 'seldon_gateway_requests_total', { deployment: 'income', kind: 'primary' }),
    ).toBe(400);
    const rows = shadowReport(before, after, 'seldon', expectedMirrors(routes, 'seldon', 'income'), 400);
    expect(rows).toEqual([
      {
        shadow: 'income/shadow',
        percent: 100,
        expected: 400,
        mirrored: 400,
        droppedInFlight: 0,
        droppedBodySize: 0,
        droppedBreaker: 0,
        failed: 0,
        agree: 360,
        disagree: 40,
        skipped: 0,
        agreement: 90,
      },
    ]);
    expect(formatShadowReport(rows, 400)).toContain('360 agree, 40 disagree, 0 skipped: 90% agreement');
  });
});
