/**
 * Upstream pools of deployments that went away are closed (once idle), so thousands of changes
 * do not pile up pools: real undici pools and HTTP/2 sessions against a real backend.
 */
import { pino } from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataPlane } from '../../../gateway/process/data-plane.js';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep } from '../../helpers/gateway.js';
import type { SeldonDeployment } from '../../../routing/seldon-deployment.js';

const deployment = (name: string): SeldonDeployment => JSON.parse(sdep(name, 'm', { predictors: [{ name: 'main' }] })) as SeldonDeployment;

describe('upstream pool sweep', () => {
  let backend: HttpBackend;
  let plane: DataPlane;
  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'b' });
    const resolve = ['a', 'b', 'c'].flatMap((n) => ['--resolve', `${n}-main.m:8000=127.0.0.1:${backend.port}`]);
    plane = new DataPlane(parseConfig('serve', ['--manifests', '.', '--port', '0', '--host', '127.0.0.1', ...resolve], {}), undefined, pino({ level: 'silent' }));
    await plane.listen();
  });
  afterAll(async () => {
    await plane.close();
    await backend.close();
  });

  it('closes the pools no route names any more, and keeps the live ones', async () => {
    plane.state.apply(['a', 'b', 'c'].map((n) => ({ type: 'upsert' as const, key: `m/${n}`, deployment: deployment(n) })));
    for (const n of ['a', 'b', 'c']) {
      const r = await request(`http://127.0.0.1:${plane.port}/seldon/m/${n}/api/v1.0/predictions`, { method: 'POST', body: '{}' });
      await r.body.text();
      expect(r.statusCode).toBe(200);
    }
    expect(plane.sweepUpstreams()).toBe(0);
    plane.state.apply([
      { type: 'delete', key: 'm/a' },
      { type: 'delete', key: 'm/b' },
    ]);
    expect(plane.sweepUpstreams()).toBe(2);
    expect(plane.sweepUpstreams()).toBe(0);
    const r = await request(`http://127.0.0.1:${plane.port}/seldon/m/c/api/v1.0/predictions`, { method: 'POST', body: '{}' });
    await r.body.text();
    expect(r.statusCode).toBe(200);
  });
});
