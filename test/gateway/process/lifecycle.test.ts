/**
 * Changes, shutdown and workers: table swaps under load, graceful drain in-process and through
 * the real CLI (one process and a cluster of workers), readiness.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startCli as startCliGateway, type CliGateway } from '../../helpers/cli.js';
import { sdep, startTestGateway, waitFor } from '../../helpers/gateway.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const predict = '/api/v1.0/predictions';

describe('table swaps', () => {
  let backend: HttpBackend;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'b' });
  });
  afterAll(() => backend.close());

  it('one unrelated deployment changing over and over while requests flow: zero errors on the others', async () => {
    const gw = await startTestGateway({
      manifests: { 'stable.yaml': sdep('stable', 'm', { predictors: [{ name: 'main' }, { name: 'canary', traffic: 50 }] }) },
      resolve: { 'stable-main.m:8000': backend.port, 'stable-canary.m:8000': backend.port },
    });
    const pool = new Pool(gw.url, { connections: 8 });
    const startGeneration = gw.state.current.generation;
    // The churn counts swaps the gateway applied, not writes or elapsed time, so a slow machine
    // cannot starve it; it goes on until it has done its swaps and 600 requests were answered
    // across them (or 60 s pass), and requests flow until it stops.
    const swaps = 8;
    let stop = false;
    const codes: Record<number, number> = {};
    const answered = (): number => Object.values(codes).reduce((a, b) => a + b, 0);
    const deadline = Date.now() + 60_000;
    const churn = (async () => {
      try {
        for (let flip = 1; (flip <= swaps || answered() < 600) && Date.now() < deadline; flip++) {
          const before = gw.state.current.generation;
          if (flip % 3 === 0) writeFileSync(join(gw.dir, 'churn.yaml'), '');
          else writeFileSync(join(gw.dir, 'churn.yaml'), sdep('churn', 'm', { predictors: [{ name: 'main' }, { name: 'c', traffic: flip }] }));
          await waitFor(() => gw.state.current.generation > before, 5000);
          // Some requests answered on this table before the next swap.
          const seen = answered();
          await waitFor(() => answered() >= seen + 20 || Date.now() > deadline, 70_000);
        }
      } finally {
        stop = true;
      }
    })();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 50_000 && !stop && Date.now() < deadline; i++) {
          const r = await pool.request({ path: `/seldon/m/stable${predict}`, method: 'POST', body: '{}' });
          await r.body.text();
          codes[r.statusCode] = (codes[r.statusCode] ?? 0) + 1;
        }
      }),
    );
    await churn;
    await pool.close();
    expect(Object.keys(codes)).toEqual(['200']);
    expect(codes[200]).toBeGreaterThan(500);
    expect(gw.state.current.generation - startGeneration).toBeGreaterThanOrEqual(swaps);
    await gw.stop();
  }, 90_000);

  it('a malformed deployment is rejected alone; a broken file keeps its routes; fixes are picked up', async () => {
    const gw = await startTestGateway({
      manifests: {
        'good.yaml': sdep('good', 'm', { predictors: [{ name: 'main' }] }),
        'other.yaml': sdep('other', 'm', { predictors: [{ name: 'main' }] }),
      },
      resolve: { 'good-main.m:8000': backend.port, 'other-main.m:8000': backend.port, 'bad-main.m:8000': backend.port },
    });
    await gw.write('bad.yaml', sdep('bad', 'm', { annotations: { 'seldon.io/ambassador-regex-header': 'x: (a)\\1' }, predictors: [{ name: 'main', traffic: -5 }] }));
    expect(gw.state.current.deployments.get('m/bad')!.state).toBe('rejected');
    expect((await request(`${gw.url}/seldon/m/good${predict}`, { method: 'POST', body: '{}' })).statusCode).toBe(200);
    expect((await request(`${gw.url}/seldon/m/bad${predict}`, { method: 'POST', body: '{}' })).statusCode).toBe(404);
    // YAML garbage in a file that had a good deployment: its routes stay, the problem is listed.
    writeFileSync(join(gw.dir, 'other.yaml'), 'kind: [unclosed');
    await expect
      .poll(async () => ((await (await request(`${gw.adminUrl}/routes`)).body.json()) as { sourceProblems: Record<string, string> }).sourceProblems)
      .toHaveProperty([join(gw.dir, 'other.yaml')]);
    expect((await request(`${gw.url}/seldon/m/other${predict}`, { method: 'POST', body: '{}' })).statusCode).toBe(200);
    await gw.write('bad.yaml', sdep('bad', 'm', { predictors: [{ name: 'main' }] }));
    expect((await request(`${gw.url}/seldon/m/bad${predict}`, { method: 'POST', body: '{}' })).statusCode).toBe(200);
    await gw.stop();
  });
});

describe('graceful shutdown', () => {
  let backend: HttpBackend;
  let canary: HttpBackend;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'main' });
    canary = await startHttpBackend({ name: 'canary' });
  });
  /** CLI gateways started here: stopped at the end even when a test failed or timed out with one running. */
  const started: CliGateway[] = [];
  afterAll(async () => {
    await Promise.all(started.map((g) => g.stop()));
    await backend.close();
    await canary.close();
  });

  it('in-process: readiness goes false at once, in-flight requests finish, new connections are refused', async () => {
    const gw = await startTestGateway({ manifests: { 'a.yaml': sdep('a', 'm', { predictors: [{ name: 'main' }] }) }, resolve: { 'a-main.m:8000': backend.port } });
    const inflight = Array.from({ length: 10 }, () => request(`${gw.url}/seldon/m/a/sleep/400`, { method: 'POST', body: '{}' }));
    await waitFor(() => backend.requests.filter((r) => r.url === '/sleep/400').length >= 10);
    const stopping = gw.shutdown();
    expect(gw.ready()).toBe(false);
    const readyz = await request(`${gw.adminUrl}/readyz`);
    expect(readyz.statusCode).toBe(503);
    await readyz.body.text();
    const results = await Promise.all(inflight.map(async (p) => (await p).statusCode));
    expect(results).toEqual(Array(10).fill(200));
    await stopping;
    await expect(request(`${gw.url}/seldon/m/a${predict}`, { method: 'POST', body: '{}' })).rejects.toThrow();
  });

  // Ports from the kernel, not a random pick that can land on another test's ephemeral port:
  // that collision (the worker failed to bind and the process hung, never ready) was what made
  // these tests fail with "gateway did not become ready" under full-suite load (helpers/cli.ts).
  async function startCli(args: string[]): Promise<CliGateway> {
    const dir = mkdtempSync(join(tmpdir(), 'sgw-life-'));
    writeFileSync(join(dir, 'a.yaml'), sdep('a', 'm', { predictors: [{ name: 'main' }, { name: 'canary', traffic: 25 }] }));
    const gw = await startCliGateway([
      '--manifests',
      dir,
      '--resolve',
      `a-main.m:8000=127.0.0.1:${backend.port}`,
      '--resolve',
      `a-canary.m:8000=127.0.0.1:${canary.port}`,
      '--log-level',
      'warn',
      ...args,
    ]);
    started.push(gw);
    return gw;
  }

  it('the CLI exits 1 when it cannot listen on its port (it does not stay up, never ready)', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'sgw-life-'));
    writeFileSync(join(dir, 'a.yaml'), sdep('a', 'm', { predictors: [{ name: 'main' }] }));
    for (const workers of ['1', '2']) {
      const child = spawn(
        process.execPath,
        [join(root, 'dist/gateway/main.js'), 'serve', '--manifests', dir, '--port', String(port), '--admin-port', '0', '--host', '127.0.0.1', '--workers', workers, '--log-level', 'warn'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (err += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      const [code] = (await once(child, 'exit')) as [number | null];
      clearTimeout(timer);
      expect(code).toBe(1);
      expect(err).toContain('EADDRINUSE');
    }
    taken.close();
  }, 90_000);

  for (const workers of [1, 2]) {
    it(`the CLI with ${workers} worker(s): SIGTERM drains in-flight requests and exits 0`, async () => {
      const { child, port } = await startCli(['--workers', String(workers), '--grace-period', '5s']);
      const at = (b: HttpBackend): number => b.requests.filter((r) => r.url === '/sleep/500').length;
      const before = at(backend) + at(canary);
      const inflight = Array.from({ length: 6 }, () => request(`http://127.0.0.1:${port}/seldon/m/a/sleep/500`, { method: 'POST', body: '{}' }));
      // In flight: all six at the backends (the canary answers too: both sleep, both must finish).
      await waitFor(() => at(backend) + at(canary) - before >= 6, 10_000);
      child.kill('SIGTERM');
      const statuses = await Promise.all(inflight.map(async (p) => (await p).statusCode));
      expect(statuses).toEqual(Array(6).fill(200));
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
    }, 90_000);
  }

  it('two workers route identically: the 75/25 split holds across the cluster', async () => {
    const gw = await startCli(['--workers', '2']);
    const pool = new Pool(`http://127.0.0.1:${gw.port}`, { connections: 16 });
    const counts: Record<string, number> = {};
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < 10_000) {
            next++;
            const r = await pool.request({ path: `/seldon/m/a${predict}`, method: 'POST', body: '{}' });
            await r.body.text();
            const who = r.statusCode === 200 ? String(r.headers['x-backend']) : String(r.statusCode);
            counts[who] = (counts[who] ?? 0) + 1;
          }
        }),
      );
    } finally {
      await pool.close();
      await gw.stop();
    }
    expect(counts.main! + counts.canary!).toBe(10_000);
    expect(Math.abs(counts.main! / 100 - 75)).toBeLessThanOrEqual(1.5);
    expect(Math.abs(counts.canary! / 100 - 25)).toBeLessThanOrEqual(1.5);
    // 10,000 requests through two workers: seconds alone, minutes on a busy machine.
  }, 240_000);
});
