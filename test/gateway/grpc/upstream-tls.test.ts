/**
 * Upstream TLS for gRPC (docs/routing.md#upstream-tls): a predictor with `ssl.certSecretName` is dialled
 * over TLS with ALPN h2 and SNI `<svc>.<ns>`; verification is off unless asked for.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients } from '../../fixtures/grpc-backend.js';
import { answerOk, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway } from '../../helpers/gateway.js';

// A self-signed test certificate for "tls-default.models" (P-256, valid until 2126); test use only.
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsmQvxfLaKpU+etWG
0FGOqRdtrCcMZjIXVmqbuuwLijqhRANCAAR9bSgL0D10I+y1fwsqOmRw+82Yuv+l
ULMjK28TtUQnM3SSp0IvWB2mAYPf510eKToVLLQq4vjVv60IIf/S+tz5
-----END PRIVATE KEY-----
`;
const CERT = `-----BEGIN CERTIFICATE-----
MIIBsDCCAVagAwIBAgIUB0kTUDjj3NB1QBNNBWS/qCuxZDUwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSdGxzLWRlZmF1bHQubW9kZWxzMCAXDTI2MTEyMjAwNDQzMVoY
DzIxMjYxMDI5MDA0NDMxWjAdMRswGQYDVQQDDBJ0bHMtZGVmYXVsdC5tb2RlbHMw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAR9bSgL0D10I+y1fwsqOmRw+82Yuv+l
ULMjK28TtUQnM3SSp0IvWB2mAYPf510eKToVLLQq4vjVv60IIf/S+tz5o3IwcDAd
BgNVHQ4EFgQU7eKqrHJbnihURkrF8bHPgBTBA8AwHwYDVR0jBBgwFoAU7eKqrHJb
nihURkrF8bHPgBTBA8AwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHREEFjAUghJ0bHMt
ZGVmYXVsdC5tb2RlbHMwCgYIKoZIzj0EAwIDSAAwRQIgMHstHL5zJZJtZdUBxNYg
WLEVIzz0Qrxjvxa8v9EQdUcCIQDBb4iCzCdQvKVrJQKjpemo1pRhFoPiokGj/iEw
385aPA==
-----END CERTIFICATE-----
`;

describe('gRPC upstream TLS', () => {
  let server: http2.Http2SecureServer;
  let port: number;
  const handshakes: { sni: string | false | null; alpn: string | false | null }[] = [];
  let dir: string;
  const manifests = { 'tls.yaml': sdep('tls', 'models', { predictors: [{ name: 'default', ssl: { certSecretName: 'tls-secret' } }] }) };
  const meta = (): grpc.Metadata => md({ seldon: 'tls', namespace: 'models' });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sgw-tls-'));
    writeFileSync(join(dir, 'ca.pem'), CERT);
    server = http2.createSecureServer({ key: KEY, cert: CERT, ALPNProtocols: ['h2'] });
    server.on('secureConnection', (s: TLSSocket) => handshakes.push({ sni: s.servername, alpn: s.alpnProtocol }));
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      stream.resume();
      answerOk(stream, `over tls, scheme ${headers[':scheme']}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('originates TLS with ALPN h2 and SNI <svc>.<ns>, unverified by default', async () => {
    const gw = await startTestGateway({ manifests, resolve: { 'tls-default.models:5001': port } });
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    try {
      const before = handshakes.length;
      const o = await predict(clients, { strData: 'x' }, meta());
      expect(o.ok && o.result.response.strData).toBe('over tls, scheme https');
      expect(handshakes[before]).toEqual({ sni: 'tls-default.models', alpn: 'h2' });
    } finally {
      clients.close();
      await gw.stop();
    }
  });

  it('with verification and no CA, a self-signed upstream is a connect failure naming the TLS error', async () => {
    const gw = await startTestGateway({ manifests, resolve: { 'tls-default.models:5001': port }, args: ['--upstream-tls-verify', '--error-detail', 'internal'] });
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    try {
      const o = await predict(clients, { strData: 'x' }, meta());
      expect(!o.ok && o.error.code).toBe(grpc.status.UNAVAILABLE);
      expect(!o.ok && o.error.details).toBe('could not connect to upstream tls-default.models:5001 (models/tls/default): DEPTH_ZERO_SELF_SIGNED_CERT');
    } finally {
      clients.close();
      await gw.stop();
    }
  });

  it('with the upstream CA, verification passes', async () => {
    const gw = await startTestGateway({ manifests, resolve: { 'tls-default.models:5001': port }, args: ['--upstream-ca', join(dir, 'ca.pem')] });
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    try {
      const o = await predict(clients, { strData: 'x' }, meta());
      expect(o.ok && o.result.response.strData).toBe('over tls, scheme https');
    } finally {
      clients.close();
      await gw.stop();
    }
  });
});
