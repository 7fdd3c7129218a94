/**
 * The ambassador Module's edge keys over real sockets, REST and gRPC, with Emissary's (Envoy's) meaning:
 * xff_num_trusted_hops and use_remote_address (the client's address, what X-Forwarded-For the model gets),
 * strip_matching_host_port, reject_requests_with_escaped_slashes, x_forwarded_proto_redirect, merge_slashes
 * and preserve_external_request_id; what the client got and what the model received, field by field.
 * A change to a listener key waits for a restart (logged); merge_slashes applies on a reload.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend, type HttpRequestRecord } from '../../fixtures/http-backend.js';
import { md, predict } from '../../helpers/grpc.js';
import { replaceFile, sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { restMapping } from '../../helpers/mappings.js';
import { waitUntil } from '../../helpers/wait.js';

const PREDICT = '/seldon/models/iris/api/v1.0/predictions';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const module = (config: string): string => `apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One POST on a connection of its own, with exactly these header fields (Host included when given). */
function send(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: { 'content-type': 'application/json', connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

/** Every value of header `name` the model received, in order, as sent. */
function fields(rec: HttpRequestRecord, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i]!.toLowerCase() === name) out.push(rec.rawHeaders[i + 1]!);
  return out;
}

/** An HTTP/2 stream on its own session: the answer's :status and headers. */
function h2(port: number, headers: http2.OutgoingHttpHeaders): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({ ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    s.on('error', reject);
    s.on('response', (h) => {
      s.resume();
      s.on('end', () => {
        session.close();
        resolve(h);
      });
    });
    s.end();
  });
}

describe("the ambassador Module's edge keys", () => {
  let model: HttpBackend;
  let grpcModel: GrpcBackend;
  let dir: string;
  let file: string;
  let gw: TestGateway | undefined;
  let logged = '';

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'iris' });
    grpcModel = await startGrpcBackend({ name: 'iris-grpc' });
    dir = mkdtempSync(join(tmpdir(), 'sgw-module-edge-'));
    file = join(dir, 'module.yaml');
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await grpcModel?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(config: string, args: string[] = []): Promise<TestGateway> {
    await gw?.stop();
    writeFileSync(file, module(config));
    logged = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString();
        done();
      },
    });
    const hosted = restMapping('hosted', 'models', 'iris-main.models:8000', ['host: api.example.com']);
    const moved = 'apiVersion: getambassador.io/v2\nkind: Mapping\nname: moved\nprefix: /seldon/models/moved/\nservice: elsewhere.example.com\nhost_redirect: true';
    gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }),
        'hosted.yaml': sdep('hosted', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': hosted }),
        'moved.yaml': sdep('moved', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': moved }),
      },
      resolve: { 'iris-main.models:8000': model.port, 'iris-main.models:5001': grpcModel.port, 'hosted-main.models:8000': model.port },
      args: ['--ambassador-module', file, ...args],
      logger: pino({ level: 'warn' }, sink),
    });
    return gw;
  }

  it('xff_num_trusted_hops: 2: every peer counts, the client is the 2nd X-Forwarded-For entry from the right (ip_allow remote); the model gets the list with the peer appended', async () => {
    const { port } = await start('xff_num_trusted_hops: 2\nip_allow:\n  - remote: 2.2.2.2');
    const before = model.requests.length;
    const ok = await send(port, PREDICT, { 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 3.3.3.3', 'x-forwarded-proto': 'https' });
    expect(ok.status).toBe(200);
    const rec = model.requests.at(-1)!;
    expect(fields(rec, 'x-forwarded-for')).toEqual(['1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1']);
    // A trusted hop's X-Forwarded-Proto goes on as sent (Envoy overwrites it only with no trusted hop).
    expect(fields(rec, 'x-forwarded-proto')).toEqual(['https']);
    // The 2nd from the right is another address; a list shorter than 2 leaves the peer as the client.
    expect((await send(port, PREDICT, { 'x-forwarded-for': '2.2.2.2, 9.9.9.9, 3.3.3.3' })).status).toBe(403);
    expect((await send(port, PREDICT, { 'x-forwarded-for': '2.2.2.2' })).status).toBe(403);
    expect((await send(port, PREDICT)).status).toBe(403);
    expect(model.requests.length).toBe(before + 1);
    // gRPC: the same rule on metadata.
    const clients = grpcClients(`127.0.0.1:${port}`);
    try {
      const calls = grpcModel.calls.length;
      const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 3.3.3.3' }));
      expect(o.ok).toBe(true);
      expect(grpcModel.calls.at(-1)!.metadata['x-forwarded-for']).toBe('1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1');
      const denied = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', 'x-forwarded-for': '2.2.2.2' }));
      expect(denied.ok ? 0 : denied.error.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(grpcModel.calls.length).toBe(calls + 1);
    } finally {
      clients.close();
    }
  });

  it('xff_num_trusted_hops: 0 (the default): the peer is the client and an X-Forwarded-For it sends is replaced', async () => {
    const { port } = await start('xff_num_trusted_hops: 0\nip_allow:\n  - remote: 127.0.0.1');
    expect((await send(port, PREDICT, { 'x-forwarded-for': '2.2.2.2', 'x-forwarded-proto': 'https' })).status).toBe(200);
    const rec = model.requests.at(-1)!;
    expect(fields(rec, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(fields(rec, 'x-forwarded-proto')).toEqual(['http']);
  });

  it('use_remote_address: false: the client is the (hops + 1)th entry from the right, and X-Forwarded-For reaches the model as sent', async () => {
    const { port } = await start('use_remote_address: false\nxff_num_trusted_hops: 1\nip_allow:\n  - remote: 2.2.2.2');
    expect((await send(port, PREDICT, { 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 3.3.3.3' })).status).toBe(200);
    expect(fields(model.requests.at(-1)!, 'x-forwarded-for')).toEqual(['1.1.1.1, 2.2.2.2, 3.3.3.3']);
    expect((await send(port, PREDICT, { 'x-forwarded-for': '2.2.2.2, 3.3.3.3, 4.4.4.4' })).status).toBe(403);
    const clients = grpcClients(`127.0.0.1:${port}`);
    try {
      const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', 'x-forwarded-for': '2.2.2.2, 3.3.3.3' }));
      expect(o.ok).toBe(true);
      expect(grpcModel.calls.at(-1)!.metadata['x-forwarded-for']).toBe('2.2.2.2, 3.3.3.3');
    } finally {
      clients.close();
    }
  });

  it('use_remote_address: false and no hops: the last entry is the client; with no X-Forwarded-For the model gets none', async () => {
    const { port } = await start('use_remote_address: false\nip_allow:\n  - remote: 3.3.3.3\n  - peer: 127.0.0.1');
    expect((await send(port, PREDICT)).status).toBe(200);
    expect(fields(model.requests.at(-1)!, 'x-forwarded-for')).toEqual([]);
    expect((await send(port, PREDICT, { 'x-forwarded-for': '1.1.1.1, 3.3.3.3' })).status).toBe(200);
    expect(fields(model.requests.at(-1)!, 'x-forwarded-for')).toEqual(['1.1.1.1, 3.3.3.3']);
  });

  it('--trusted-proxies given explicitly names the peers whose X-Forwarded-For counts; the Module still counts the hops', async () => {
    const { port } = await start('xff_num_trusted_hops: 2\nip_allow:\n  - remote: 2.2.2.2', ['--trusted-proxies', '10.0.0.0/8']);
    // 127.0.0.1 is not one of them: its list is replaced, the peer is the client.
    expect((await send(port, PREDICT, { 'x-forwarded-for': '2.2.2.2, 3.3.3.3' })).status).toBe(403);
  });

  it("strip_matching_host_port: true: a Host whose port is the listener's matches the Mapping's host, and the model gets it without the port; another port stays", async () => {
    const { port } = await start('strip_matching_host_port: true');
    const path = '/seldon/models/hosted/';
    const ok = await send(port, path, { host: `api.example.com:${port}` });
    expect(ok.status).toBe(200);
    expect(fields(model.requests.at(-1)!, 'host')).toEqual(['api.example.com']);
    expect((await send(port, path, { host: 'api.example.com:9' })).status).toBe(404);
    expect((await send(port, path, { host: 'api.example.com' })).status).toBe(200);
    // gRPC: the :authority the model gets.
    const clients = grpcClients(`127.0.0.1:${port}`);
    try {
      const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' }));
      expect(o.ok).toBe(true);
      expect(grpcModel.calls.at(-1)!.authority).toBe('127.0.0.1');
    } finally {
      clients.close();
    }
  });

  it("without strip_matching_host_port the Host's port is matched as sent", async () => {
    const { port } = await start('strip_matching_host_port: false');
    expect((await send(port, '/seldon/models/hosted/', { host: `api.example.com:${port}` })).status).toBe(404);
    const clients = grpcClients(`127.0.0.1:${port}`);
    try {
      expect((await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' }))).ok).toBe(true);
      expect(grpcModel.calls.at(-1)!.authority).toBe(`127.0.0.1:${port}`);
    } finally {
      clients.close();
    }
  });

  it('reject_requests_with_escaped_slashes: true: %2F and %5c (any case) get 400 and reach no model, REST and gRPC; other escapes pass', async () => {
    const { port } = await start('reject_requests_with_escaped_slashes: true');
    const before = model.requests.length;
    for (const p of ['/seldon/models/iris/status/%2F200', '/seldon/models/iris/status/%2f200', '/seldon/models/iris/a%5cb', '/seldon/models/iris/a%5Cb?x=1']) {
      const a = await send(port, p);
      expect(a.status).toBe(400);
      expect(JSON.parse(a.body).status.info).toContain('escaped slash');
    }
    expect(model.requests.length).toBe(before);
    // An escaped slash in the query is not the path's.
    expect((await send(port, `${PREDICT}?next=%2F`)).status).toBe(200);
    expect((await send(port, '/seldon/models/iris/a%20b')).status).toBe(200);
    expect(model.requests.at(-1)!.url).toBe('/a%20b');
    const calls = grpcModel.calls.length;
    const h = await h2(port, { ':path': '/seldon.protos.Seldon%2FPredict', seldon: 'iris', namespace: 'models' });
    expect(h['grpc-status']).toBe(String(grpc.status.INTERNAL));
    expect(grpcModel.calls.length).toBe(calls);
  });

  // Emissary's RejectHeadersWithUnderscoresTest and AllowHeadersWithUnderscoresTest (t_headerswithunderscoresaction.py).
  it('headers_with_underscores_action: REJECT_REQUEST: a header name with "_" gets 400 and reaches no model, REST and gRPC; ALLOW passes it on', async () => {
    const { port } = await start('headers_with_underscores_action: REJECT_REQUEST');
    const before = model.requests.length;
    const a = await send(port, '/seldon/models/iris/target/', { t_underscore: 'foo' });
    expect(a.status).toBe(400);
    expect(JSON.parse(a.body).status.info).toContain('underscore');
    expect(model.requests.length).toBe(before);
    expect((await send(port, PREDICT, { 't-dash': 'foo' })).status).toBe(200);
    const calls = grpcModel.calls.length;
    const h = await h2(port, { ':path': '/seldon.protos.Seldon/Predict', seldon: 'iris', namespace: 'models', t_underscore: 'foo' });
    expect(h['grpc-status']).toBe(String(grpc.status.INTERNAL));
    expect(grpcModel.calls.length).toBe(calls);

    const allowed = await start('headers_with_underscores_action: ALLOW');
    expect((await send(allowed.port, PREDICT, { t_underscore: 'foo' })).status).toBe(200);
    expect(fields(model.requests.at(-1)!, 't_underscore')).toEqual(['foo']);
  });

  it('x_forwarded_proto_redirect: true: X-Forwarded-Proto as the model would get it decides; not https: 301 to https://<Host><target>, empty', async () => {
    const { port } = await start('x_forwarded_proto_redirect: true\nuse_remote_address: false');
    const before = model.requests.length;
    const moved = await send(port, `${PREDICT}?a=1`, { host: 'api.example.com', 'x-forwarded-proto': 'http' });
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toBe(`https://api.example.com${PREDICT}?a=1`);
    expect(moved.headers['content-length']).toBe('0');
    expect(moved.body).toBe('');
    // No X-Forwarded-Proto: the connection's scheme (plain HTTP here).
    expect((await send(port, PREDICT)).status).toBe(301);
    expect(model.requests.length).toBe(before);
    const ok = await send(port, PREDICT, { 'x-forwarded-proto': 'https' });
    expect(ok.status).toBe(200);
    expect(fields(model.requests.at(-1)!, 'x-forwarded-proto')).toEqual(['https']);
    // gRPC: the redirect itself (grpc-js reads a 301 as UNKNOWN); with https it is served.
    const h = await h2(port, { ':path': '/seldon.protos.Seldon/Predict', ':authority': 'api.example.com', seldon: 'iris', namespace: 'models' });
    expect(h[':status']).toBe(301);
    expect(h.location).toBe('https://api.example.com/seldon.protos.Seldon/Predict');
    const clients = grpcClients(`127.0.0.1:${port}`);
    try {
      expect((await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', 'x-forwarded-proto': 'https' }))).ok).toBe(true);
      const o = await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models' }));
      expect(o.ok ? 0 : o.error.code).toBe(grpc.status.UNKNOWN);
    } finally {
      clients.close();
    }
  });

  it('x_forwarded_proto_redirect with use_remote_address (no trusted hop): a peer cannot claim https, every plain request is redirected', async () => {
    const { port } = await start('x_forwarded_proto_redirect: true');
    expect((await send(port, PREDICT, { 'x-forwarded-proto': 'https' })).status).toBe(301);
  });

  it('merge_slashes: false: runs of / are matched and forwarded as sent; a reload to true merges them again', async () => {
    const { port } = await start('merge_slashes: false');
    const before = model.requests.length;
    expect((await send(port, PREDICT.replace('/models/', '//models/'))).status).toBe(404);
    expect(model.requests.length).toBe(before);
    expect((await send(port, PREDICT.replace('/predictions', '//predictions'))).status).toBe(200);
    expect(model.requests.at(-1)!.url).toBe('/api/v1.0//predictions');
    // A redirect Mapping's Location carries the path as the match read it.
    expect((await send(port, '/seldon/models/moved/a//b')).headers.location).toBe('http://elsewhere.example.com/seldon/models/moved/a//b');
    replaceFile(file, module('merge_slashes: true'));
    await waitUntil(async () => (await send(port, PREDICT.replace('/models/', '//models/'))).status === 200);
    expect(model.requests.at(-1)!.url).toBe('/api/v1.0/predictions');
    expect((await send(port, '/seldon/models/moved/a//b')).headers.location).toBe('http://elsewhere.example.com/seldon/models/moved/a/b');
  });

  it("preserve_external_request_id: false: a client's x-request-id is replaced by the gateway's own, REST and gRPC; true keeps it", async () => {
    let { port } = await start('preserve_external_request_id: false');
    expect((await send(port, PREDICT, { 'x-request-id': 'client-id' })).status).toBe(200);
    const [id] = fields(model.requests.at(-1)!, 'x-request-id');
    expect(fields(model.requests.at(-1)!, 'x-request-id')).toHaveLength(1);
    expect(id).toMatch(UUID);
    let clients = grpcClients(`127.0.0.1:${port}`);
    try {
      expect((await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', 'x-request-id': 'client-id' }))).ok).toBe(true);
      expect(grpcModel.calls.at(-1)!.metadata['x-request-id']).toMatch(UUID);
    } finally {
      clients.close();
    }
    ({ port } = await start('preserve_external_request_id: true'));
    expect((await send(port, PREDICT, { 'x-request-id': 'client-id' })).status).toBe(200);
    expect(fields(model.requests.at(-1)!, 'x-request-id')).toEqual(['client-id']);
    clients = grpcClients(`127.0.0.1:${port}`);
    try {
      expect((await predict(clients, { strData: 'x' }, md({ seldon: 'iris', namespace: 'models', 'x-request-id': 'client-id' }))).ok).toBe(true);
      expect(grpcModel.calls.at(-1)!.metadata['x-request-id']).toBe('client-id');
    } finally {
      clients.close();
    }
  });

  it('a reload that changes an edge key is logged as waiting for a restart; the running rule stays', async () => {
    const { port } = await start('preserve_external_request_id: false\nmerge_slashes: true');
    replaceFile(file, module('preserve_external_request_id: true\nmerge_slashes: false'));
    // merge_slashes applies on the reload; the request id rule waits for a restart.
    await waitUntil(async () => (await send(port, PREDICT.replace('/models/', '//models/'))).status === 404);
    expect(logged).toContain('take effect when the gateway restarts');
    expect((await send(port, PREDICT, { 'x-request-id': 'client-id' })).status).toBe(200);
    expect(fields(model.requests.at(-1)!, 'x-request-id')[0]).toMatch(UUID);
  });
});
