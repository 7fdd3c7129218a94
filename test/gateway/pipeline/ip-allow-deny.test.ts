/**
 * The ambassador Module's ip_allow / ip_deny over real sockets, ported from Emissary's KAT
 * (t_ip_allow_deny.py: IPAllow, IPDeny). KAT's clients reach Envoy from outside and its /localhost/
 * route loops back from 127.0.0.1; here the outside client binds 127.0.0.3 and the local one
 * 127.0.0.1, and every loopback peer is a trusted proxy (KAT's `l7Depth: 1`), so X-Forwarded-For
 * names the remote address. A refused request gets 403 and reaches no model; gRPC gets
 * PERMISSION_DENIED. A Module read again replaces the policy.
 */
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { replaceFile, sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { waitUntil } from '../../helpers/wait.js';

const PREDICT = '/seldon/models/iris/api/v1.0/predictions';
const OUTSIDE = '127.0.0.3';
const LOCAL = '127.0.0.1';

const module = (config: string): string => `apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;

/** A POST from `from`, with `xff` when given: its status. */
function status(port: number, from: string, xff?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress: from, method: 'POST', path: PREDICT, headers: { 'content-type': 'application/json', connection: 'close', ...(xff ? { 'x-forwarded-for': xff } : {}) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end('{}');
  });
}

describe('ip_allow / ip_deny (t_ip_allow_deny)', () => {
  let model: HttpBackend;
  let grpcModel: GrpcBackend;
  let dir: string;
  let file: string;
  let gw: TestGateway | undefined;

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'target' });
    grpcModel = await startGrpcBackend({ name: 'target-grpc' });
    dir = mkdtempSync(join(tmpdir(), 'sgw-ip-'));
    file = join(dir, 'module.yaml');
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await grpcModel?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(config: string): Promise<TestGateway> {
    await gw?.stop();
    writeFileSync(file, module(config));
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }) },
      resolve: { 'iris-main.models:8000': model.port, 'iris-main.models:5001': grpcModel.port },
      args: ['--ambassador-module', file, '--trusted-proxies', '127.0.0.0/8'],
    });
    return gw;
  }

  it('IPAllow: peer 127.0.0.1 or remote 99.99.0.0/16 may send; anyone else gets 403 and reaches no model', async () => {
    const { port } = await start('ip_allow:\n  - peer: 127.0.0.1\n  - remote: 99.99.0.0/16');
    const before = model.requests.length;
    expect(await status(port, OUTSIDE)).toBe(403);
    expect(await status(port, OUTSIDE, '99.98.0.1')).toBe(403);
    expect(model.requests.length).toBe(before);
    expect(await status(port, OUTSIDE, '99.99.0.1')).toBe(200);
    expect(await status(port, LOCAL)).toBe(200);
    expect(await status(port, LOCAL, '99.98.0.1')).toBe(200);
    expect(model.requests.length).toBe(before + 3);
  });

  it('IPDeny: peer 127.0.0.1 and remote 99.98.0.0/16 are refused, others pass; gRPC too (PERMISSION_DENIED)', async () => {
    const { port } = await start('ip_deny:\n  - peer: 127.0.0.1\n  - remote: 99.98.0.0/16');
    const before = model.requests.length;
    expect(await status(port, OUTSIDE)).toBe(200);
    expect(await status(port, OUTSIDE, '99.99.0.1')).toBe(200);
    expect(await status(port, OUTSIDE, '99.98.0.1')).toBe(403);
    expect(await status(port, LOCAL)).toBe(403);
    expect(await status(port, LOCAL, '99.99.0.1')).toBe(403);
    expect(model.requests.length).toBe(before + 2);
    const clients = grpcClients(`127.0.0.1:${port}`);
    try {
      const calls = grpcModel.calls.length;
      const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' }));
      expect(o.ok).toBe(false);
      if (!o.ok) {
        expect(o.error.code).toBe(grpc.status.PERMISSION_DENIED);
        expect(o.error.details).toContain('RBAC: access denied');
      }
      expect(grpcModel.calls.length).toBe(calls);
    } finally {
      clients.close();
    }
  });

  it('X-Forwarded-For entries in the forms proxies write (a port, brackets) are judged by their address; an entry that is no address is refused', async () => {
    const { port } = await start('ip_deny:\n  - remote: 99.98.0.0/16\n  - remote: 2001:db8::/32');
    const before = model.requests.length;
    // The denied addresses, however the proxy wrote them: never past the deny.
    for (const xff of ['99.98.0.1:5678', '1.1.1.1, 99.98.0.1:443', '2001:db8::1', '[2001:db8::1]', '[2001:db8::1]:443', ' [2001:db8::7]:1 ']) expect(await status(port, OUTSIDE, xff), xff).toBe(403);
    // Not an address in any form: cannot be judged, refused (Envoy would judge the peer instead).
    for (const xff of ['unknown', '99.98.0.1:', '[2001:db8::1', 'evil.example:80', '99.98.0.1:x']) expect(await status(port, OUTSIDE, xff), xff).toBe(403);
    expect(model.requests.length).toBe(before);
    for (const xff of ['99.99.0.1:5678', '[2001:db9::1]:443', '2001:db9::1']) expect(await status(port, OUTSIDE, xff), xff).toBe(200);
    expect(model.requests.length).toBe(before + 3);
    // An allow list reads them the same way.
    const allow = await start('ip_allow:\n  - remote: 99.99.0.0/16\n  - remote: 2001:db8::/32');
    expect([await status(allow.port, OUTSIDE, '99.99.0.1:5678'), await status(allow.port, OUTSIDE, '[2001:db8::1]:443'), await status(allow.port, OUTSIDE, '99.98.0.1:5678')]).toEqual([200, 200, 403]);
  });

  it('a Module read again replaces the policy; one with a bad CIDR leaves it in force', async () => {
    const { port, adminUrl } = await start('ip_deny:\n  - peer: 127.0.0.1');
    expect(await status(port, LOCAL)).toBe(403);
    replaceFile(file, module('ip_deny:\n  - peer: 127.0.0.3'));
    await waitUntil(async () => (await status(port, LOCAL)) === 200);
    expect(await status(port, OUTSIDE)).toBe(403);
    // A bad CIDR: refused whole (counted), the policy in force stays.
    replaceFile(file, module('ip_deny:\n  - remote: 300.1.2.3/8'));
    await waitUntil(async () => (await metric(adminUrl, 'seldon_gateway_ambassador_module_reloads_total{result="failure"}')) >= 1);
    expect(await status(port, OUTSIDE)).toBe(403);
    expect(await status(port, LOCAL)).toBe(200);
    replaceFile(file, module('cluster_request_timeout_ms: 3000'));
    await waitUntil(async () => (await status(port, OUTSIDE)) === 200);
  });
});
