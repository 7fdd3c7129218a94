/**
 * Changes, shutdown and workers: table swaps under load, graceful drain in-process and through
 * the real CLI (one process and a cluster of workers), readiness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from './fixtures/http-backend.js';
import { sdep, startTestGateway, waitFor } from './helpers/gateway.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const predict = '/api/v1.0/predictions';

describe('table swaps', () => {
  let backend: HttpBackend;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'b' });
  });
  afterAll(() => backend.close());

  it('one unrelated deployment changing every 100 ms while requests flow: zero errors on the others', async () => {
    const gw = await startTestGateway({
      manifests: { 'stable.yaml': sdep('stable', 'm', { predictors: [{ name: 'main' }, { name: 'canary', traffic: 50 }] }) },
      resolve: { 'stable-main.m:8000': backend.port, 'stable-canary.m:8000': backend.port },
    });
    const pool = new Pool(gw.url, { connections: 8 });
    const startGeneration = gw.state.current.generation;
    let stop = false;
    let flips = 0;
    const churn = (async () => {
      while (!stop) {
        flips++;
        if (flips % 3 === 0) writeFileSync(join(gw.dir, 'churn.yaml'), '');
        else writeFileSync(join(gw.dir, 'churn.yaml'), sdep('churn', 'm', { predictors: [{ name: 'main' }, { name: 'c', traffic: flips % 100 }] }));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const codes: Record<number, number> = {};
    const deadline = Date.now() + 3000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 5000 && Date.now() < deadline; i++) {
          const r = await pool.request({ path: `/seldon/m/stable${predict}`, method: 'POST', body: '{}' });
          await r.body.text();
          codes[r.statusCode] = (codes[r.statusCode] ?? 0) + 1;
        }
      }),
    );
    stop = true;
    await churn;
    await pool.close();
    expect(Object.keys(codes)).toEqual(['200']);
    expect(codes[200]).toBeGreaterThan(500);
    expect(gw.state.current.generation - startGeneration).toBeGreaterThanOrEqual(5);
    await gw.stop();
  }, 20_000);

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
  afterAll(async () => {
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

  async function startCli(args: string[]): Promise<{ child: ChildProcess; port: number; admin: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'sgw-life-'));
    writeFileSync(join(dir, 'a.yaml'), sdep('a', 'm', { predictors: [{ name: 'main' }, { name: 'canary', traffic: 25 }] }));
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const admin = port + 1;
    const child = spawn(
      process.execPath,
      [join(root, 'dist/gateway/main.js'), 'serve', '--manifests', dir, '--port', String(port), '--admin-port', String(admin), '--host', '127.0.0.1', '--resolve', `a-main.m:8000=127.0.0.1:${backend.port}`, '--resolve', `a-canary.m:8000=127.0.0.1:${canary.port}`, '--log-level', 'warn', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const r = await request(`http://127.0.0.1:${admin}/readyz`);
        await r.body.text();
        if (r.statusCode === 200) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error('gateway did not become ready');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { child, port, admin };
  }

  for (const workers of [1, 2]) {
    it(`the CLI with ${workers} worker(s): SIGTERM drains in-flight requests and exits 0`, async () => {
      const { child, port } = await startCli(['--workers', String(workers), '--grace-period', '5s']);
      const inflight = Array.from({ length: 6 }, () => request(`http://127.0.0.1:${port}/seldon/m/a/sleep/500`, { method: 'POST', body: '{}' }));
      // The canary backend answers too: both sleep, both must finish.
      await new Promise((r) => setTimeout(r, 150));
      child.kill('SIGTERM');
      const statuses = await Promise.all(inflight.map(async (p) => (await p).statusCode));
      expect(statuses).toEqual(Array(6).fill(200));
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
    }, 30_000);
  }

  it('two workers route identically: the 75/25 split holds across the cluster', async () => {
    const { child, port } = await startCli(['--workers', '2']);
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16 });
    const counts: Record<string, number> = {};
    let next = 0;
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
    await pool.close();
    child.kill('SIGTERM');
    await once(child, 'exit');
    expect(counts.main! + counts.canary!).toBe(10_000);
    expect(Math.abs(counts.main! / 100 - 75)).toBeLessThanOrEqual(1.5);
    expect(Math.abs(counts.canary! / 100 - 25)).toBeLessThanOrEqual(1.5);
  }, 60_000);
});
