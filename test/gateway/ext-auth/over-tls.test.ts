/**
 * External auth over TLS, end to end (docs/routing.md#external-auth): an https:// and a grpcs://
 * auth service that ask for a client certificate (mutual TLS, as a TLSContext with
 * cert_chain_file/private_key_file sets it up in Ambassador), each recording the certificate it
 * was shown; a real gateway dialling them by name through --resolve; a recording model that shows
 * what reached it. A certificate the gateway cannot verify, or none when one is asked for, is a
 * failed check: --ext-auth-status-on-error, nothing reaches the model.
 */
import https from 'node:https';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { UsageError } from '../../../gateway/config/values.js';
import { rawRequest, startRecordingUpstream, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { listenLocal } from '../../helpers/net.js';
import { certDir, makeCa, serialHex, type Ca, type Pem } from '../../helpers/tls-certs.js';

const PROTO_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));
const PREDICT = '/api/v1.0/predictions';
const BODY = Buffer.from('{"data":{"ndarray":[[1]]}}');
const AUTH_HOST = 'auth.example';
const CLIENT_SERIAL = 77;

interface Seen {
  /** The serial of the client certificate the auth service was shown ('' for none). */
  readonly serial: string;
  readonly authorization: string | undefined;
}

/** An HTTPS auth service that requires a client certificate signed by `clientCa`: `Bearer good` is allowed, anything else 401. */
async function startHttpsAuth(server: Pem, clientCa: Ca): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const s = https.createServer({ cert: server.cert, key: server.key, ca: clientCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push({ serial: peer?.serialNumber ?? '', authorization: req.headers.authorization });
      res.writeHead(req.headers.authorization === 'Bearer good' ? 200 : 401, { 'Content-Type': 'text/plain' });
      res.end(req.headers.authorization === 'Bearer good' ? '' : 'no');
    });
  });
  s.on('tlsClientError', () => undefined);
  return { ...(await listenLocal(s)), seen };
}

/** A grpcs:// Envoy Check server that requires a client certificate signed by `clientCa`: `Bearer good` allowed, anything else denied 401. */
async function startGrpcsAuth(server: Pem, clientCa: Ca): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
  const def = protoLoader.loadSync('envoy-ext-authz.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  const seen: Seen[] = [];
  const s = new grpc.Server();
  s.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check: (call: grpc.ServerUnaryCall<{ attributes: { request: { http: { headers: Record<string, string> } } } }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const authorization = call.request.attributes.request.http.headers['authorization'];
      seen.push({ serial: call.getAuthContext().sslPeerCertificate?.serialNumber ?? '', authorization });
      if (authorization === 'Bearer good') cb(null, { status: { code: 0 }, ok_response: {} });
      else cb(null, { status: { code: 16 }, denied_response: { status: { code: 401 }, body: 'no' } });
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(Buffer.from(clientCa.cert), [{ cert_chain: Buffer.from(server.cert), private_key: Buffer.from(server.key) }], true);
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return { port, seen, close: () => new Promise<void>((r) => s.tryShutdown(() => r())) };
}

describe('external auth over TLS, with a client certificate', () => {
  const dir = certDir();
  let serverCa: Ca;
  let clientCa: Ca;
  let files: { ca: string; cert: string; key: string; strangerCert: string; strangerKey: string };
  let httpsAuth: Awaited<ReturnType<typeof startHttpsAuth>>;
  let grpcsAuth: Awaited<ReturnType<typeof startGrpcsAuth>>;
  let model: RecordingUpstream;
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    serverCa = makeCa(dir, 'Auth Server CA');
    clientCa = makeCa(dir, 'Gateway Client CA');
    const server = serverCa.issue({ cn: AUTH_HOST, san: [AUTH_HOST], serial: 5 });
    const client = clientCa.issue({ cn: 'seldon-gateway', serial: CLIENT_SERIAL, usage: 'client' });
    // Signed by a CA the auth service does not trust.
    const stranger = serverCa.issue({ cn: 'stranger', serial: 78, usage: 'client' });
    files = { ca: join(dir, 'server-ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key'), strangerCert: join(dir, 'stranger.pem'), strangerKey: join(dir, 'stranger.key') };
    writeFileSync(files.ca, serverCa.cert);
    writeFileSync(files.cert, client.cert);
    writeFileSync(files.key, client.key);
    writeFileSync(files.strangerCert, stranger.cert);
    writeFileSync(files.strangerKey, stranger.key);
    httpsAuth = await startHttpsAuth(server, clientCa);
    grpcsAuth = await startGrpcsAuth(server, clientCa);
    model = await startRecordingUpstream({ name: 'model' });
  });
  afterAll(async () => {
    for (const g of gateways) await g.stop();
    await httpsAuth?.close();
    await grpcsAuth?.close();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function gatewayFor(scheme: 'https' | 'grpcs', args: string[]): Promise<TestGateway> {
    const port = scheme === 'https' ? httpsAuth.port : grpcsAuth.port;
    const g = await startTestGateway({
      manifests: { 'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }) },
      resolve: { 'plain-main.models:8000': model.port, [`${AUTH_HOST}:${port}`]: port },
      args: ['--ext-auth-service', `${scheme}://${AUTH_HOST}:${port}`, ...args],
    });
    gateways.push(g);
    return g;
  }

  async function post(g: TestGateway, caseId: string, authorization: string): Promise<RawResponse> {
    const { res, x } = await rawRequest(
      g.port,
      {
        target: `/seldon/models/plain${PREDICT}`,
        headers: [
          ['Host', 'gw'],
          ['x-case', caseId],
          ['Content-Type', 'application/json'],
          ['Authorization', authorization],
        ],
        body: BODY,
      },
      10_000,
    );
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }

  for (const scheme of ['https', 'grpcs'] as const) {
    const seen = () => (scheme === 'https' ? httpsAuth.seen : grpcsAuth.seen);

    it(`${scheme}: the gateway verifies the auth service by --ext-auth-ca and presents --ext-auth-cert; allowed requests reach the model, denied ones do not`, async () => {
      const g = await gatewayFor(scheme, ['--ext-auth-ca', files.ca, '--ext-auth-cert', files.cert, '--ext-auth-key', files.key]);
      const before = seen().length;
      const ok = await post(g, `${scheme}-good`, 'Bearer good');
      expect(ok.status).toBe(200);
      expect(model.byCase(`${scheme}-good`)[0]!.body.equals(BODY)).toBe(true);
      const no = await post(g, `${scheme}-bad`, 'Bearer bad');
      expect(no.status).toBe(401);
      expect(model.byCase(`${scheme}-bad`)).toHaveLength(0);
      expect(seen().slice(before)).toEqual([
        { serial: serialHex(CLIENT_SERIAL), authorization: 'Bearer good' },
        { serial: serialHex(CLIENT_SERIAL), authorization: 'Bearer bad' },
      ]);
    });

    it(`${scheme}: no client certificate, or one the auth service does not trust, fails the check: status-on-error, nothing reaches the model`, async () => {
      const before = seen().length;
      for (const [name, args] of [
        ['none', ['--ext-auth-ca', files.ca]],
        ['stranger', ['--ext-auth-ca', files.ca, '--ext-auth-cert', files.strangerCert, '--ext-auth-key', files.strangerKey]],
      ] as const) {
        const g = await gatewayFor(scheme, [...args]);
        const r = await post(g, `${scheme}-${name}`, 'Bearer good');
        expect(r.status).toBe(403);
        expect((JSON.parse(r.body.toString()) as { status: { reason: string } }).status.reason).toBe('AUTH_BACKEND_UNAVAILABLE');
        expect(model.byCase(`${scheme}-${name}`)).toHaveLength(0);
        expect(await metric(g.adminUrl, `seldon_gateway_ext_auth_total{protocol="rest",result="error"}`)).toBe(1);
      }
      expect(seen().length).toBe(before);
    });

    it(`${scheme}: an auth service the gateway cannot verify (no --ext-auth-ca) is not asked; --ext-auth-tls-verify off asks it`, async () => {
      const before = seen().length;
      const strict = await gatewayFor(scheme, ['--ext-auth-cert', files.cert, '--ext-auth-key', files.key]);
      expect((await post(strict, `${scheme}-unverified`, 'Bearer good')).status).toBe(403);
      expect(model.byCase(`${scheme}-unverified`)).toHaveLength(0);
      expect(seen().length).toBe(before);
      const lax = await gatewayFor(scheme, ['--ext-auth-cert', files.cert, '--ext-auth-key', files.key, '--ext-auth-tls-verify', 'off']);
      expect((await post(lax, `${scheme}-lax`, 'Bearer good')).status).toBe(200);
      expect(model.byCase(`${scheme}-lax`)).toHaveLength(1);
      expect(seen().slice(before)).toEqual([{ serial: serialHex(CLIENT_SERIAL), authorization: 'Bearer good' }]);
    });
  }

  it('--ext-auth-cert and --ext-auth-key go together, and only with an https:// or grpcs:// auth service', () => {
    const serve = (args: string[]) => () => parseConfig('serve', ['--manifests', dir, ...args], {});
    expect(serve(['--ext-auth-service', 'https://auth:8443', '--ext-auth-cert', files.cert])).toThrow(new UsageError('--ext-auth-cert and --ext-auth-key go together: give both'));
    expect(serve(['--ext-auth-service', 'http://auth:8080', '--ext-auth-cert', files.cert, '--ext-auth-key', files.key])).toThrow(
      /--ext-auth-cert: the auth service "http:\/\/auth:8080" is not https:\/\/ or grpcs:\/\//,
    );
    expect(parseConfig('serve', ['--manifests', dir, '--ext-auth-service', 'grpcs://auth:8443', '--ext-auth-cert', files.cert, '--ext-auth-key', files.key], {}).extAuth).toMatchObject({
      certFile: files.cert,
      keyFile: files.key,
    });
  });
});
