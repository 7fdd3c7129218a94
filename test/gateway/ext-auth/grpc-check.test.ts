/**
 * External auth over Envoy's gRPC Check protocol (envoy.service.auth.v3.Authorization/Check, as
 * OPA-Envoy and Authorino serve it), end to end: a grpc-js auth server that decodes the gateway's
 * CheckRequest with the service's field numbers (test/protos/envoy-ext-authz.proto) and answers
 * OkHttpResponse / DeniedHttpResponse; REST requests and gRPC prediction calls through a real
 * gateway to a recording model and a grpc-js model.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';

const PROTO_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));
const PREDICT = '/api/v1.0/predictions';
const BODY = Buffer.from('{"data":{"ndarray":[[1]]}}');

interface HeaderOption {
  header: { key: string; value: string };
  append?: { value: boolean };
}
/** A CheckRequest as the auth server decodes it (keepCase, longs as strings). */
interface DecodedCheck {
  attributes: {
    source?: { address?: { socket_address?: { address: string; port_value: number } } };
    destination?: { address?: { socket_address?: { address: string; port_value: number } } };
    request: {
      time: { seconds: string };
      http: { id: string; method: string; headers: Record<string, string>; path: string; host: string; scheme: string; size: string; protocol: string; body: string; raw_body: Buffer };
    };
  };
}

const header = (key: string, value: string, append?: boolean): HeaderOption => ({ header: { key, value }, ...(append === undefined ? {} : { append: { value: append } }) });

/**
 * The auth server: `authorization: Bearer good` allowed with edits; `Bearer hostile` allowed with edits of Host, a
 * pseudo-header and the framing fields; `Bearer crlf` allowed with a header value that holds a CR LF; `Bearer broken`
 * a gRPC error; anything else denied 401.
 */
async function startEnvoyAuthServer(): Promise<{ port: number; checks: DecodedCheck[]; close(): Promise<void> }> {
  const def = protoLoader.loadSync('envoy-ext-authz.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  const checks: DecodedCheck[] = [];
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check: (call: grpc.ServerUnaryCall<DecodedCheck, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      checks.push(call.request);
      const auth = call.request.attributes.request.http.headers['authorization'];
      if (auth === 'Bearer good') {
        cb(null, {
          status: { code: 0 },
          ok_response: {
            headers: [header('x-auth-user', 'bob'), header('authorization', 'Bearer internal'), header('x-tags', 'b', true)],
            headers_to_remove: ['x-api-secret'],
            response_headers_to_add: [header('x-auth-note', 'checked')],
          },
        });
      } else if (auth === 'Bearer hostile') {
        const hostile = [
          header('host', 'evil.example'),
          header(':path', '/admin'),
          header(':authority', 'evil.example'),
          header('transfer-encoding', 'chunked'),
          header('content-length', '1'),
          header('connection', 'close'),
          header('x-auth-user', 'bob'),
        ];
        cb(null, { status: { code: 0 }, ok_response: { headers: hostile, headers_to_remove: ['host', ':authority'] } });
      } else if (auth === 'Bearer crlf') {
        cb(null, { status: { code: 0 }, ok_response: { headers: [header('x-auth-user', 'bob\r\nx-injected: 1')] } });
      } else if (auth === 'Bearer broken') {
        cb({ code: grpc.status.INTERNAL, details: 'policy engine down' });
      } else {
        cb(null, { status: { code: 16, message: 'no token' }, denied_response: { status: { code: 401 }, headers: [header('www-authenticate', 'Bearer realm="opa"')], body: 'nope' } });
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, checks, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}

describe('external auth over Envoy gRPC Check', () => {
  let auth: Awaited<ReturnType<typeof startEnvoyAuthServer>>;
  let model: RecordingUpstream;
  let grpcModel: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;

  async function post(caseId: string, authorization: string | undefined, extra: [string, string][] = []): Promise<RawResponse> {
    const headers: [string, string][] = [['Host', 'gw.example'], ['x-case', caseId], ['Content-Type', 'application/json'], ...extra];
    if (authorization !== undefined) headers.push(['Authorization', authorization]);
    const { res, x } = await rawRequest(gw.port, { target: `/seldon/models/plain${PREDICT}?q=1`, headers, body: BODY }, 10_000);
    x.socket.destroy();
    if (!res) throw new Error('no answer');
    return res;
  }

  beforeAll(async () => {
    auth = await startEnvoyAuthServer();
    model = await startRecordingUpstream({ name: 'model' });
    grpcModel = await startGrpcBackend({ name: 'grpc-model' });
    gw = await startTestGateway({
      manifests: { 'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }) },
      resolve: { 'plain-main.models:8000': model.port, 'plain-main.models:5001': grpcModel.port },
      args: ['--ext-auth-service', `grpc://127.0.0.1:${auth.port}`, '--ext-auth-include-body', '1KiB'],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await model?.close();
    await grpcModel?.close();
    await auth?.close();
  });

  it('the CheckRequest carries the request: method, path, host, scheme, protocol, headers, body, source address', async () => {
    const before = auth.checks.length;
    expect((await post('attrs', 'Bearer good', [['X-Tenant', 't9']])).status).toBe(200);
    const http = auth.checks[before]!.attributes.request.http;
    expect(http.method).toBe('POST');
    expect(http.path).toBe(`/seldon/models/plain${PREDICT}?q=1`);
    expect(http.host).toBe('gw.example');
    expect(http.scheme).toBe('http');
    expect(http.protocol).toBe('HTTP/1.1');
    expect(http.size).toBe(String(BODY.length));
    expect(http.body).toBe(BODY.toString());
    expect(http.headers).toMatchObject({
      ':method': 'POST',
      ':path': `/seldon/models/plain${PREDICT}?q=1`,
      ':authority': 'gw.example',
      authorization: 'Bearer good',
      'x-tenant': 't9',
      'x-case': 'attrs',
      'x-forwarded-for': '127.0.0.1',
    });
    expect(http.headers['x-request-id']).toBe(http.id);
    expect(auth.checks[before]!.attributes.source?.address?.socket_address?.address).toBe('127.0.0.1');
    expect(Number(auth.checks[before]!.attributes.request.time.seconds)).toBeGreaterThan(1_700_000_000);
  });

  it("OkHttpResponse: headers set (one appended), removed, and added to the client's answer", async () => {
    const r = await post('ok', 'Bearer good', [
      ['X-Api-Secret', 's'],
      ['X-Tags', 'a'],
      ['X-Auth-User', 'mallory'],
    ]);
    expect(r.status).toBe(200);
    expect(headerValue(r.headers, 'x-auth-note')).toBe('checked');
    const seen = model.byCase('ok')[0]!;
    expect(seen.body.equals(BODY)).toBe(true);
    const lines = seen.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(lines.filter((l) => /^(x-auth-user|authorization|x-tags|x-api-secret):/.test(l))).toEqual(['x-tags: a,b', 'x-auth-user: bob', 'authorization: Bearer internal']);
  });

  it("an auth service's Host, pseudo-headers and framing fields change none of them: the model gets the request's Host and path, the body framed by its own length", async () => {
    const r = await post('hostile', 'Bearer hostile');
    expect(r.status).toBe(200);
    const [seen] = model.byCase('hostile');
    expect(seen!.target).toBe(`${PREDICT}?q=1`);
    expect(seen!.body.equals(BODY)).toBe(true);
    const lines = seen!.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`);
    expect(lines.filter((l) => /^(host|:path|:authority|transfer-encoding|content-length|connection|x-auth-user):/.test(l))).toEqual([
      'host: gw.example',
      'x-auth-user: bob',
      `content-length: ${BODY.length}`,
      'connection: keep-alive',
    ]);
  });

  it("an auth service's header value with CR LF is never written as a header line: the request fails (502), the model receives nothing", async () => {
    const r = await post('crlf', 'Bearer crlf');
    expect(r.status).toBe(502);
    expect(model.byCase('crlf')).toHaveLength(0);
    expect(model.requests.some((q) => q.headers.some(([k]) => k.toLowerCase() === 'x-injected'))).toBe(false);
  });

  it('DeniedHttpResponse: its status, headers and body go to the REST client; the model sees nothing', async () => {
    const r = await post('denied', 'Bearer bad');
    expect(r.status).toBe(401);
    expect(r.body.toString()).toBe('nope');
    expect(headerValue(r.headers, 'www-authenticate')).toBe('Bearer realm="opa"');
    expect(model.byCase('denied')).toHaveLength(0);
  });

  it('a Check that fails (a gRPC error status) fails closed with 403', async () => {
    const r = await post('broken', 'Bearer broken');
    expect(r.status).toBe(403);
    expect(r.body.toString()).not.toContain('policy engine');
    expect(model.byCase('broken')).toHaveLength(0);
    expect(await metric(gw.adminUrl, 'seldon_gateway_ext_auth_total{protocol="rest",result="error"}')).toBeGreaterThan(0);
  });

  it("gRPC prediction calls are checked too: denied with the status's gRPC code and the body as message; allowed with the edits as metadata", async () => {
    const before = grpcModel.calls.length;
    const checksBefore = auth.checks.length;
    const denied = await predict(clients, { strData: 'x' }, md({ seldon: 'plain', namespace: 'models', authorization: 'Bearer bad' }));
    expect(denied.ok).toBe(false);
    if (!denied.ok) {
      expect(denied.error.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(denied.error.details).toBe('nope');
      expect(denied.error.metadata.get('www-authenticate')).toEqual(['Bearer realm="opa"']);
    }
    expect(grpcModel.calls.length).toBe(before);
    const http = auth.checks[checksBefore]!.attributes.request.http;
    expect(http.path).toBe('/seldon.protos.Seldon/Predict');
    expect(http.protocol).toBe('HTTP/2');
    expect(http.headers['seldon']).toBe('plain');
    const allowed = await predict(clients, { strData: 'x' }, md({ seldon: 'plain', namespace: 'models', authorization: 'Bearer good', 'x-api-secret': 's' }));
    expect(allowed.ok).toBe(true);
    const call = grpcModel.calls[grpcModel.calls.length - 1]!;
    expect(call.metadata['x-auth-user']).toBe('bob');
    expect(call.metadata['authorization']).toBe('Bearer internal');
    expect(call.metadata['x-api-secret']).toBeUndefined();
    expect(await metric(gw.adminUrl, 'seldon_gateway_ext_auth_total{protocol="grpc",result="denied"}')).toBe(1);
    expect(await metric(gw.adminUrl, 'seldon_gateway_ext_auth_total{protocol="grpc",result="allowed"}')).toBe(1);
  });

  it("over gRPC, an auth service's Host, pseudo-headers and framing fields are not written upstream: the call succeeds with the client's own", async () => {
    const before = grpcModel.calls.length;
    const r = await predict(clients, { strData: 'framing' }, md({ seldon: 'plain', namespace: 'models', authorization: 'Bearer hostile' }));
    expect(r.ok).toBe(true);
    expect(grpcModel.calls.length).toBe(before + 1);
    const call = grpcModel.calls[before]!;
    expect(call.method).toBe('/seldon.protos.Seldon/Predict');
    expect(call.authority).not.toContain('evil');
    expect(call.metadata['x-auth-user']).toBe('bob');
    for (const name of ['transfer-encoding', 'content-length', 'connection']) expect(call.metadata[name]).toBeUndefined();
  });
});
