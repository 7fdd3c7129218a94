/**
 * What log pipelines (Cloud Logging, Elasticsearch, Loki) read from the real CLI's stdout: every
 * line is one JSON object with a string `level` ("info", "warn"), Cloud Logging's `severity`
 * ("INFO", "WARNING"), an ISO 8601 `time` and the message in `msg` (and `service` on the main
 * log); the access log lines have the same envelope, so one pipeline parses both.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { poll, startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';

const SEVERITY: Record<string, string> = { trace: 'DEBUG', debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR', fatal: 'CRITICAL' };
const ISO = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;

describe('log lines (real CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-log-format-'));
  let backend: HttpBackend;
  let gw: CliGateway;
  const started = Date.now();

  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'iris' });
    writeFileSync(join(dir, 'iris.yaml'), sdep('iris', 'models', { predictors: [{ name: 'default' }] }));
    // Rejected: a warn line.
    writeFileSync(join(dir, 'bad.yaml'), sdep('bad', 'models', { annotations: { 'seldon.io/ambassador-header': 'a:b:c' }, predictors: [{ name: 'default' }] }));
    gw = await startCli(['--manifests', dir, '--workers', '1', '--access-log-sample', '1', '--resolve', `iris-default.models:8000=127.0.0.1:${backend.port}`]);
    const r = await request(`http://127.0.0.1:${gw.port}/seldon/models/iris/api/v1.0/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"data":{"ndarray":[[1]]}}',
    });
    expect(r.statusCode).toBe(200);
    await r.body.text();
    await poll(
      'access line written',
      async () => gw.output().includes('"access"'),
      (seen) => seen,
      5000,
    );
  }, 90_000);

  afterAll(async () => {
    await gw?.stop();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const lines = (): Record<string, unknown>[] =>
    gw
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('every line: string level, the matching severity, ISO time, msg and service', () => {
    const all = lines();
    expect(all.length).toBeGreaterThan(3);
    for (const l of all) {
      expect(Object.keys(SEVERITY), JSON.stringify(l)).toContain(l.level);
      expect(l.severity, JSON.stringify(l)).toBe(SEVERITY[l.level as string]);
      expect(l.time, JSON.stringify(l)).toMatch(ISO);
      const t = Date.parse(l.time as string);
      expect(t).toBeGreaterThanOrEqual(started - 1000);
      expect(t).toBeLessThanOrEqual(Date.now() + 1000);
      expect(typeof l.msg, JSON.stringify(l)).toBe('string');
      if (l.msg !== 'access') expect(l.service, JSON.stringify(l)).toBe('seldon-gateway');
    }
    const rejected = all.find((l) => l.msg === 'SeldonDeployment rejected');
    expect(rejected).toMatchObject({ level: 'warn', severity: 'WARNING', deployment: 'models/bad' });
    expect(all.find((l) => l.msg === 'seldon-gateway listening')).toMatchObject({ level: 'info', severity: 'INFO' });
  });

  it('the access log lines have the same shape', () => {
    const access = lines().filter((l) => l.msg === 'access');
    expect(access.length).toBe(1);
    expect(access[0]).toMatchObject({ level: 'info', severity: 'INFO', namespace: 'models', deployment: 'iris' });
    expect(access[0]!.time).toMatch(ISO);
  });
});
