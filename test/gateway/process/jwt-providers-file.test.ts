/**
 * The --jwt-providers file changed while the gateway runs (a ConfigMap update): each change that
 * parses is applied to every process's table and key sets, one that does not changes nothing. In
 * one process (the control plane shares the data plane's key sets) and in a cluster of two workers
 * (the primary reads the file, the workers get it over IPC), against real identity providers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { signingKey, startIdentityProvider, type IdentityProvider } from '../../fixtures/identity-provider.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { replaceFile, sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { routesReport } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';

const PREDICT = '/seldon/models/iris/api/v1.0/predictions';
const IRIS = sdep('iris', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-jwt': JSON.stringify({ providers: ['corp'] }) });

const providerYaml = (name: string, idp: IdentityProvider): string => `- name: ${name}\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n`;

/** Write as a ConfigMap update does: the new content renamed into place. */
describe('the JWT providers file changes while serving', () => {
  let a: IdentityProvider;
  let b: IdentityProvider;
  let model: RecordingUpstream;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startIdentityProvider(), startIdentityProvider()]);
    a.published = [await signingKey('a1', 'RS256')];
    b.published = [await signingKey('b1', 'ES256')];
    model = await startRecordingUpstream({ name: 'model' });
    dir = mkdtempSync(join(tmpdir(), 'sgw-jwt-file-'));
    file = join(dir, 'providers.yaml');
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), model?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The status of one request with `token`, on a connection of its own (so each may reach another worker). */
  async function status(port: number, token: string): Promise<number> {
    const r = await request(`http://127.0.0.1:${port}${PREDICT}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', connection: 'close' },
      body: '{}',
    });
    await r.body.dump();
    return r.statusCode;
  }

  /** Eight requests, each on its own connection: every one answered `code`. */
  async function all(port: number, token: string, code: number): Promise<boolean> {
    const got = await Promise.all(Array.from({ length: 8 }, () => status(port, token)));
    return got.every((s) => s === code);
  }

  const deployment = (admin: string): Promise<{ state: string; reasons: string[] }> => routesReport(admin, 'iris');

  /** One gateway, every step; `admin`: its admin URL. */
  async function steps(port: number, admin: string): Promise<void> {
    const tokenA = await a.token({ sub: 'alice' });
    const tokenB = await b.token({ sub: 'bob' });
    expect(await all(port, tokenA, 200)).toBe(true);
    expect(await all(port, tokenB, 401)).toBe(true);

    // corp now means identity provider B: its tokens pass everywhere, A's no longer do.
    replaceFile(file, providerYaml('corp', b));
    await waitUntil(async () => (await all(port, tokenB, 200)) && (await all(port, tokenA, 401)));

    // Not YAML a provider list can be: nothing changes, and it is counted.
    replaceFile(file, '- name: corp\n  issuer: [broken\n');
    await waitUntil(async () => (await metric(admin, 'seldon_gateway_jwt_provider_reloads_total{result="failure"}')) >= 1);
    expect(await all(port, tokenB, 200)).toBe(true);
    expect((await deployment(admin)).state).toBe('accepted');

    // corp gone: the deployment that names it is rejected with the reason, and nothing reaches the model.
    const before = model.requests.length;
    replaceFile(file, providerYaml('other', a));
    await waitUntil(async () => (await deployment(admin)).state === 'rejected');
    expect((await deployment(admin)).reasons[0]).toContain('is not a provider of this gateway (configured: other)');
    await waitUntil(async () => (await all(port, tokenB, 404)) || (await all(port, tokenB, 503)));
    expect(model.requests.length).toBe(before);

    // Back: accepted again, A's tokens pass.
    replaceFile(file, providerYaml('corp', a));
    await waitUntil(async () => (await deployment(admin)).state === 'accepted' && (await all(port, tokenA, 200)));
    expect(await metric(admin, 'seldon_gateway_jwt_provider_reloads_total{result="success"}')).toBeGreaterThanOrEqual(3);
  }

  it('one process: applied to the table and the key sets the data plane verifies with', async () => {
    writeFileSync(file, providerYaml('corp', a));
    let gw: TestGateway | undefined;
    try {
      gw = await startTestGateway({ manifests: { 'iris.yaml': IRIS }, resolve: { 'iris-main.models:8000': model.port }, args: ['--jwt-providers', file] });
      await steps(gw.port, gw.adminUrl);
    } finally {
      await gw?.stop();
    }
  });

  it('two workers: the primary reads the file, every worker applies it', async () => {
    writeFileSync(file, providerYaml('corp', a));
    const manifests = mkdtempSync(join(tmpdir(), 'sgw-jwt-m-'));
    writeFileSync(join(manifests, 'iris.yaml'), IRIS);
    let gw: CliGateway | undefined;
    try {
      gw = await startCli(['--manifests', manifests, '--workers', '2', '--resolve', `iris-main.models:8000=127.0.0.1:${model.port}`, '--jwt-providers', file]);
      await steps(gw.port, `http://127.0.0.1:${gw.admin}`);
      expect(gw.output()).toContain('JWT providers file applied');
    } finally {
      await gw?.stop();
      rmSync(manifests, { recursive: true, force: true });
    }
  });
});
