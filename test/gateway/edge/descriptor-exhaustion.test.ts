/**
 * Descriptor exhaustion through the real CLI: a gateway started with
 * `ulimit -n 140` is sent more client connections than it has descriptors. It must say so
 * (/readyz 503, seldon_gateway_accept_errors_total), stop accepting, and come back by itself
 * once the connections close: ready again, requests answered. (With the cluster primary
 * accepting every connection, the gateway hung for good here while /readyz said 200.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { poll, readyz, startCli } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';

const LIMIT = 140;

async function predict(port: number): Promise<number | string> {
  try {
    const r = await request(`http://127.0.0.1:${port}/seldon/m/a/api/v1.0/predictions`, { method: 'POST', body: '{}', headersTimeout: 3000, bodyTimeout: 3000 });
    await r.body.text();
    return r.statusCode;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('descriptor exhaustion (ulimit -n 140)', () => {
  let backend: HttpBackend;
  let dir: string;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'main' });
    dir = mkdtempSync(join(tmpdir(), 'sgw-emfile-'));
    writeFileSync(join(dir, 'a.yaml'), sdep('a', 'm', { predictors: [{ name: 'main' }] }));
  });
  afterAll(() => backend.close());

  for (const workers of [1, 2]) {
    it(`${workers} worker(s): readiness goes false, accepting stops, then both recover by themselves`, async () => {
      const gw = await startCli(['--manifests', dir, '--resolve', `a-main.m:8000=127.0.0.1:${backend.port}`, '--workers', String(workers), '--log-level', 'info'], { ulimit: LIMIT });
      try {
        expect(await predict(gw.port)).toBe(200);
        // More connections than every worker together has descriptors for; held open.
        const held: net.Socket[] = [];
        const total = (LIMIT + 40) * workers;
        for (let i = 0; i < total; i++) {
          const s = net.connect(gw.port, '127.0.0.1');
          s.on('error', () => undefined);
          held.push(s);
        }
        const down = await poll(
          'readiness while out of descriptors',
          () => readyz(gw.admin),
          (r) => r.status === 503,
          10_000,
        );
        expect(down.body).toContain('out of file descriptors (EMFILE)');
        const metrics = await (await request(`http://127.0.0.1:${gw.admin}/metrics`)).body.text();
        const counted = /^seldon_gateway_accept_errors_total\{reason="EMFILE"\} (\d+)/m.exec(metrics);
        expect(Number(counted?.[1] ?? 0)).toBeGreaterThan(0);
        expect(gw.output()).toContain('out of file descriptors: not accepting connections');

        for (const s of held) s.destroy();
        await poll(
          'readiness after the connections closed',
          () => readyz(gw.admin),
          (r) => r.status === 200,
          10_000,
        );
        const codes: (number | string)[] = [];
        for (let i = 0; i < 20; i++) codes.push(await predict(gw.port));
        expect(codes).toEqual(Array(20).fill(200));
        expect(gw.output()).toContain('file descriptors free again: accepting connections');
        expect(await gw.stop()).toBe(0);
      } finally {
        gw.child.kill('SIGKILL');
      }
    }, 60_000);
  }
});
