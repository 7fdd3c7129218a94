/**
 * The access log end to end: a real gateway, real upstreams, real clients (node:http, the real
 * @grpc/grpc-js), every field of the JSON line checked against what the client and the upstream
 * actually saw, for REST (content-length and chunked bodies, a retry, a shadow, a request with no
 * route) and gRPC (an answer, an unreachable upstream, no route); the text format and query
 * redaction; the CLI writing to stdout; a stdout nobody reads (requests go on, lines are dropped
 * and counted) and a full disk (/dev/full: lines dropped and counted, nothing thrown).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { UsageError } from '../../../gateway/config/values.js';
import { AccessLogOutput, isoTime, jsonLine, textLine, type AccessEntry } from '../../../gateway/observe/access-log.js';
import { IMPLICIT_RETRIES } from '../../../gateway/forward/retry-state.js';
import { encodeSeldonMessage, grpcClients, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { answerOk, md, pool, predict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { LogCapture } from '../../helpers/observability.js';
import { poll, readyz, startCli } from '../../helpers/cli.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const predictPath = '/api/v1.0/predictions';
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** Every field of a JSON access line, in order. */
const FIELDS = [
  'level',
  'severity',
  'time',
  'msg',
  'start_time',
  'downstream_remote_address',
  'x_forwarded_for',
  'method',
  'authority',
  'path',
  'protocol',
  'response_code',
  'grpc_status',
  'bytes_received',
  'bytes_sent',
  'duration',
  'upstream_service_time',
  'upstream_host',
  'upstream_cluster',
  'namespace',
  'deployment',
  'predictor',
  'retries',
  'hedges',
  'shadows',
  'request_id',
  'trace_id',
  'user_agent',
  'downstream_peer_subject',
  'fallback',
];

type Line = Record<string, unknown>;

interface Sent {
  status: number;
  text: string;
  /** The client's own port: the gateway's downstream_remote_address. */
  localPort: number;
}

/** A POST on its own connection (node:http, so the client's port is known); an array of chunks is sent chunked. */
function send(url: string, headers: Record<string, string>, body: Buffer | Buffer[]): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const localPort = res.socket.localPort ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), localPort }));
    });
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const c of body) req.write(c);
      req.end();
    } else req.end(body);
  });
}

const access = (logs: LogCapture): Line[] => logs.lines().filter((l) => l.msg === 'access');

async function lineWhere(logs: LogCapture, pred: (l: Line) => boolean): Promise<Line> {
  await waitFor(() => access(logs).some(pred), 5000);
  const found = access(logs).filter(pred);
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** A fresh access-log file, opened for appending, for `use`; closed and removed after it. */
async function withLogFile(use: (fd: number, file: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-al-'));
  const file = join(dir, 'access.log');
  writeFileSync(file, '');
  const fd = openSync(file, 'a');
  try {
    await use(fd, file);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('access log lines (JSON), REST and gRPC', () => {
  let backend: HttpBackend;
  let shadow: HttpBackend;
  let flaky: HttpBackend;
  let grpcUp: RawUpstream;
  let logs: LogCapture;
  let gw: TestGateway;
  let clients: GrpcClients;
  let deadGrpc: number;

  beforeAll(async () => {
    backend = await startHttpBackend({ name: 'main' });
    shadow = await startHttpBackend({ name: 'shadow' });
    let calls = 0;
    flaky = await startHttpBackend({
      name: 'flaky',
      handler: (_req, res) => {
        res.writeHead(++calls % 2 === 1 ? 503 : 200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      },
    });
    grpcUp = await startRawUpstream((s) => {
      s.resume();
      s.once('end', () => answerOk(s, 'logged'));
    });
    deadGrpc = await freePort();
    logs = new LogCapture();
    gw = await startTestGateway({
      manifests: {
        'a.yaml': sdep('a', 'm', { predictors: [{ name: 'main' }] }),
        's.yaml': sdep('s', 'm', { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] }),
        'r.yaml': sdep('r', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-retries': '1' }),
        'g.yaml': sdep('g', 'm', { predictors: [{ name: 'main' }] }),
        'dead.yaml': sdep('dead', 'm', { predictors: [{ name: 'main' }] }),
      },
      resolve: {
        'a-main.m:8000': backend.port,
        's-main.m:8000': backend.port,
        's-copy.m:8000': shadow.port,
        'r-main.m:8000': flaky.port,
        'g-main.m:5001': grpcUp.port,
        'dead-main.m:5001': deadGrpc,
      },
      accessSink: logs,
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    for (const b of [backend, shadow, flaky]) await b?.close();
    await grpcUp?.close();
  });

  it('REST: every field, as the client and the upstream saw the request; the query string left out', async () => {
    const traceId = hex(16);
    const payload = Buffer.from('{"data":{"ndarray":[[1,2,3]]}}');
    const t0 = Date.now();
    const r = await send(
      `${gw.url}/seldon/m/a${predictPath}?access_token=SECRET-TOKEN&x=1`,
      { 'user-agent': 'al-test/1.0', 'x-forwarded-for': '203.0.113.7', 'x-request-id': 'al-rest-1', traceparent: `00-${traceId}-${hex(8)}-01` },
      payload,
    );
    const t1 = Date.now();
    expect(r.status).toBe(200);
    const line = await lineWhere(logs, (l) => l.request_id === 'al-rest-1');
    expect(Object.keys(line)).toEqual(FIELDS);
    expect(line).toEqual({
      level: 'info',
      severity: 'INFO',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      msg: 'access',
      start_time: expect.stringMatching(/Z$/),
      downstream_remote_address: `127.0.0.1:${r.localPort}`,
      x_forwarded_for: '203.0.113.7',
      method: 'POST',
      authority: `127.0.0.1:${gw.port}`,
      path: `/seldon/m/a${predictPath}`,
      protocol: 'HTTP/1.1',
      response_code: 200,
      grpc_status: null,
      bytes_received: payload.length,
      bytes_sent: Buffer.byteLength(r.text),
      duration: expect.any(Number),
      upstream_service_time: expect.any(Number),
      upstream_host: `127.0.0.1:${backend.port}`,
      upstream_cluster: 'a-main.m:8000',
      namespace: 'm',
      deployment: 'a',
      predictor: 'main',
      retries: 0,
      hedges: 0,
      shadows: 0,
      request_id: 'al-rest-1',
      trace_id: traceId,
      user_agent: 'al-test/1.0',
      downstream_peer_subject: null,
      fallback: null,
    });
    const start = Date.parse(line.start_time as string);
    expect(start).toBeGreaterThanOrEqual(t0 - 1);
    expect(start).toBeLessThanOrEqual(t1);
    expect(line.upstream_service_time as number).toBeLessThanOrEqual(line.duration as number);
    expect(logs.text).not.toContain('SECRET-TOKEN');
    // What the upstream got is what the line says.
    expect(backend.requests.find((q) => q.headers['x-request-id'] === 'al-rest-1')!.body.length).toBe(payload.length);
  });

  it('REST: a chunked body is counted as it streams; the id the gateway made is the one logged', async () => {
    const chunks = [Buffer.alloc(70_000, 0x61), Buffer.alloc(12_345, 0x62)];
    const r = await send(`${gw.url}/seldon/m/a${predictPath}`, { 'user-agent': 'chunked-client' }, chunks);
    expect(r.status).toBe(200);
    const line = await lineWhere(logs, (l) => l.user_agent === 'chunked-client');
    expect(line.bytes_received).toBe(82_345);
    const upstream = backend.requests.find((q) => q.headers['user-agent'] === 'chunked-client')!;
    expect(upstream.body.length).toBe(82_345);
    expect(line.request_id).toBe(upstream.headers['x-request-id']);
    expect(line.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(line.x_forwarded_for).toBeNull();
    expect(line.trace_id).toBeNull();
  });

  it('REST: a retry counts in retries, a shadow in shadows; one line per client request', async () => {
    expect((await send(`${gw.url}/seldon/m/r${predictPath}`, { 'x-request-id': 'al-retry' }, Buffer.from('{}'))).status).toBe(200);
    const retried = await lineWhere(logs, (l) => l.request_id === 'al-retry');
    expect(retried).toMatchObject({ response_code: 200, retries: 1, deployment: 'r', upstream_host: `127.0.0.1:${flaky.port}` });
    expect((await send(`${gw.url}/seldon/m/s${predictPath}`, { 'x-request-id': 'al-shadow' }, Buffer.from('{}'))).status).toBe(200);
    const mirrored = await lineWhere(logs, (l) => l.request_id === 'al-shadow');
    expect(mirrored).toMatchObject({ response_code: 200, shadows: 1, predictor: 'main', retries: 0 });
    await waitFor(() => shadow.requests.some((q) => q.headers['x-request-id'] === 'al-shadow'));
    // The shadow's copy is not a client request: no line of its own.
    expect(access(logs).filter((l) => l.request_id === 'al-shadow')).toHaveLength(1);
  });

  it('REST: a request with no route gets its line (the gateway answered: no upstream)', async () => {
    const r = await send(`${gw.url}/seldon/m/nothing-here${predictPath}?q=SECRET2`, { 'x-request-id': 'al-404' }, Buffer.from('{"a":1}'));
    expect(r.status).toBe(404);
    const line = await lineWhere(logs, (l) => l.request_id === 'al-404');
    expect(line).toMatchObject({
      response_code: 404,
      path: `/seldon/m/nothing-here${predictPath}`,
      bytes_sent: Buffer.byteLength(r.text),
      upstream_host: null,
      upstream_cluster: null,
      upstream_service_time: null,
      deployment: null,
      downstream_remote_address: `127.0.0.1:${r.localPort}`,
    });
    expect(logs.text).not.toContain('SECRET2');
  });

  it('gRPC: every field, the bytes each way exactly as framed', async () => {
    const traceId = hex(16);
    const before = grpcUp.streams.length;
    const o = await predict(clients, { strData: 'count my bytes' }, md({ seldon: 'g', namespace: 'm', traceparent: `00-${traceId}-${hex(8)}-01` }));
    expect(o.ok).toBe(true);
    const upstreamHeaders = grpcUp.streams[before]!;
    const line = await lineWhere(logs, (l) => l.trace_id === traceId);
    expect(Object.keys(line)).toEqual(FIELDS);
    expect(line).toEqual({
      level: 'info',
      severity: 'INFO',
      time: expect.any(String),
      msg: 'access',
      start_time: expect.any(String),
      downstream_remote_address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      x_forwarded_for: null,
      method: 'POST',
      authority: `127.0.0.1:${gw.port}`,
      path: '/seldon.protos.Seldon/Predict',
      protocol: 'HTTP/2',
      response_code: 200,
      grpc_status: 0,
      bytes_received: 5 + encodeSeldonMessage({ strData: 'count my bytes' }).length,
      bytes_sent: 5 + encodeSeldonMessage({ strData: 'logged' }).length,
      duration: expect.any(Number),
      upstream_service_time: expect.any(Number),
      upstream_host: `127.0.0.1:${grpcUp.port}`,
      upstream_cluster: 'g-main.m:5001',
      namespace: 'm',
      deployment: 'g',
      predictor: 'main',
      retries: 0,
      hedges: 0,
      shadows: 0,
      request_id: upstreamHeaders['x-request-id'],
      trace_id: traceId,
      user_agent: expect.stringMatching(/^grpc-node-js\//),
      downstream_peer_subject: null,
      fallback: null,
    });
    expect(line.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('gRPC: an unreachable upstream (replays counted as retries) and a call with no route', async () => {
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'dead', namespace: 'm', 'x-request-id': 'al-grpc-dead' }));
    expect(o.ok).toBe(false);
    const dead = await lineWhere(logs, (l) => l.request_id === 'al-grpc-dead');
    expect(dead).toMatchObject({
      grpc_status: grpc.status.UNAVAILABLE,
      response_code: 200,
      upstream_service_time: null,
      retries: IMPLICIT_RETRIES,
      deployment: 'dead',
      upstream_cluster: 'dead-main.m:5001',
    });
    const none = await predict(clients, { strData: 'x' }, md({ seldon: 'no-such', namespace: 'm', 'x-request-id': 'al-grpc-none' }));
    expect(none.ok).toBe(false);
    const unrouted = await lineWhere(logs, (l) => l.request_id === 'al-grpc-none');
    expect(unrouted).toMatchObject({ grpc_status: (none as { error: grpc.ServiceError }).error.code, deployment: null, upstream_host: null, protocol: 'HTTP/2' });
  });
});

describe("mutual TLS: the client certificate's subject", () => {
  it("REST over TLS and gRPC over TLS: downstream_peer_subject is the verified client certificate's subject", async () => {
    const dir = certDir();
    const serverCa = makeCa(dir, 'AL Server CA');
    const clientCa = makeCa(dir, 'AL Client CA');
    const server = serverCa.issue({ cn: 'gateway.test', san: ['localhost', 'IP:127.0.0.1'], serial: 41 });
    const client = clientCa.issue({ cn: 'al-client', serial: 42, usage: 'client' });
    const file = (name: string, content: string): string => {
      writeFileSync(join(dir, name), content);
      return join(dir, name);
    };
    const backend = await startHttpBackend({ name: 'main' });
    const grpcUp = await startRawUpstream((st) => {
      st.resume();
      st.once('end', () => answerOk(st, 'tls'));
    });
    const logs = new LogCapture();
    const gw = await startTestGateway({
      manifests: { 'a.yaml': sdep('a', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'a-main.m:8000': backend.port, 'a-main.m:5001': grpcUp.port },
      accessSink: logs,
      args: ['--tls-cert', file('server.crt', server.cert), '--tls-key', file('server.key', server.key), '--tls-client-ca', file('client-ca.crt', clientCa.cert)],
    });
    const clients = grpcClients(`localhost:${gw.port}`, {}, grpc.credentials.createSsl(Buffer.from(serverCa.cert), Buffer.from(client.key), Buffer.from(client.cert)));
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port: gw.port,
            servername: 'localhost',
            path: `/seldon/m/a${predictPath}`,
            method: 'POST',
            ca: serverCa.cert,
            cert: client.cert,
            key: client.key,
            agent: false,
            headers: { 'content-type': 'application/json', 'x-request-id': 'al-mtls' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
      expect(status).toBe(200);
      expect((await predict(clients, { strData: 'x' }, md({ seldon: 'a', namespace: 'm', 'x-request-id': 'al-mtls-grpc' }))).ok).toBe(true);
      const subject = new X509Certificate(client.cert).subject.split('\n').filter(Boolean).join(',');
      expect(subject).toContain('CN=al-client');
      expect(await lineWhere(logs, (l) => l.request_id === 'al-mtls')).toMatchObject({ downstream_peer_subject: subject, protocol: 'HTTP/1.1', response_code: 200 });
      expect(await lineWhere(logs, (l) => l.request_id === 'al-mtls-grpc')).toMatchObject({ downstream_peer_subject: subject, protocol: 'HTTP/2', grpc_status: 0 });
    } finally {
      clients.close();
      await gw.stop();
      await backend.close();
      await grpcUp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('text format, query strings, sampling, options', () => {
  it("--access-log-format text: Envoy's default line and the gateway's fields; quotes escaped; --access-log-query keeps the query", async () => {
    const backend = await startHttpBackend({ name: 'main' });
    const logs = new LogCapture();
    const gw = await startTestGateway({
      manifests: { 'a.yaml': sdep('a', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'a-main.m:8000': backend.port },
      accessSink: logs,
      args: ['--access-log-format', 'text', '--access-log-query'],
    });
    try {
      const r = await send(`${gw.url}/seldon/m/a${predictPath}?x=1&y=2`, { 'user-agent': 'say "hi"\\there', 'x-request-id': 'txt-1', 'x-forwarded-for': '198.51.100.1' }, Buffer.from('{"a":1}'));
      expect(r.status).toBe(200);
      await waitFor(() => logs.text.includes('txt-1'));
      const line = logs.text.split('\n').find((l) => l.includes('txt-1'))!;
      const m =
        /^\[(\S+)\] "POST (\S+) HTTP\/1\.1" 200 - (\d+) (\d+) ([\d.]+) ([\d.]+) "([^"]*)" "((?:[^"\\]|\\.)*)" "([^"]*)" "([^"]*)" "([^"]*)" - "([^"]*)" "([^"]*)" (\d+) (\d+) "([^"]*)" "([^"]*)" "([^"]*)" (\d+) "([^"]*)"$/.exec(
          line,
        );
      expect(m, line).not.toBeNull();
      const [, start, path, rx, tx, , , xff, ua, id, authority, upstreamHost, route, cluster, retries, shadows, traceId, client, subject, hedges, fallback] = m!;
      expect(fallback).toBe('-');
      expect(Date.parse(start!)).not.toBeNaN();
      expect(path).toBe(`/seldon/m/a${predictPath}?x=1&y=2`);
      expect(Number(rx)).toBe(7);
      expect(Number(tx)).toBe(Buffer.byteLength(r.text));
      expect(xff).toBe('198.51.100.1');
      expect(ua).toBe('say \\"hi\\"\\\\there');
      expect(id).toBe('txt-1');
      expect(authority).toBe(`127.0.0.1:${gw.port}`);
      expect(upstreamHost).toBe(`127.0.0.1:${backend.port}`);
      expect(route).toBe('m/a/main');
      expect(cluster).toBe('a-main.m:8000');
      expect([retries, shadows, traceId, subject, hedges]).toEqual(['0', '0', '-', '-', '0']);
      expect(client).toBe(`127.0.0.1:${r.localPort}`);
      // One line per request, nothing else from the access log.
      expect(logs.text.split('\n').filter(Boolean)).toHaveLength(1);
    } finally {
      await gw.stop();
      await backend.close();
    }
  });

  it('--access-log off and --access-log-sample 0 write nothing; the options parse as documented', async () => {
    const backend = await startHttpBackend({ name: 'main' });
    for (const args of [
      ['--access-log', 'off'],
      ['--access-log-sample', '0'],
    ]) {
      const logs = new LogCapture();
      const gw = await startTestGateway({ manifests: { 'a.yaml': sdep('a', 'm', { predictors: [{ name: 'main' }] }) }, resolve: { 'a-main.m:8000': backend.port }, accessSink: logs, args });
      try {
        expect((await send(`${gw.url}/seldon/m/a${predictPath}`, {}, Buffer.from('{}'))).status).toBe(200);
        expect((await send(`${gw.url}/seldon/m/none`, {}, Buffer.from('{}'))).status).toBe(404);
      } finally {
        await gw.stop();
      }
      expect(logs.text).toBe('');
    }
    await backend.close();
    expect(parseConfig('serve', ['--access-log', 'off'], {}).observe.accessLog.enabled).toBe(false);
    expect(parseConfig('serve', [], { SELDON_GATEWAY_ACCESS_LOG: 'false' }).observe.accessLog.enabled).toBe(false);
    expect(parseConfig('serve', [], { SELDON_GATEWAY_ACCESS_LOG_FORMAT: 'TEXT', SELDON_GATEWAY_ACCESS_LOG_BUFFER: '1MiB' }).observe.accessLog).toMatchObject({
      enabled: true,
      format: 'text',
      bufferBytes: 1024 * 1024,
    });
    expect(parseConfig('serve', ['--otlp-endpoint', 'http://c:4318', '--trace-sample', '0.01'], {}).observe.tracing).toEqual({ endpoint: 'http://c:4318', sample: 0.01 });
    expect(() => parseConfig('serve', ['--access-log', 'sometimes'], {})).toThrow(UsageError);
    expect(() => parseConfig('serve', ['--access-log-format', 'xml'], {})).toThrow(/json or text/);
    expect(() => parseConfig('serve', ['--otlp-endpoint', 'collector:4318'], {})).toThrow(/http:\/\/ or https:\/\//);
    expect(() => parseConfig('serve', ['--trace-sample', '1.5'], {})).toThrow(UsageError);
  });
});

describe('the line formats with hostile values', () => {
  const entry = (over: Partial<AccessEntry>): AccessEntry => ({
    startTime: Date.UTC(2025, 0, 31, 12, 0, 0, 7),
    clientAddress: '[::1]:5000',
    forwardedFor: undefined,
    method: 'GET',
    authority: 'h',
    path: '/p',
    protocol: 'HTTP/1.1',
    responseCode: 200,
    grpcStatus: undefined,
    bytesReceived: null,
    bytesSent: 0,
    durationMs: 1.23456,
    upstreamMs: null,
    upstreamHost: undefined,
    upstreamCluster: undefined,
    namespace: undefined,
    deployment: undefined,
    predictor: undefined,
    retries: 0,
    hedges: 0,
    shadows: 0,
    requestId: undefined,
    traceId: undefined,
    userAgent: undefined,
    peerSubject: undefined,
    fallback: undefined,
    ...over,
  });

  it('JSON: any string comes back as it was; a text line stays one line whatever it holds', () => {
    const nasty = ['a"b', 'back\\slash', 'ctl\u0001\u001f', 'nl\ninjected {"msg":"access"}', 'lone \ud800 surrogate', 'pair 😀 ü', 'ls\u2028ps\u2029', 'del\u007f'];
    for (const v of nasty) {
      const line = jsonLine(entry({ userAgent: v, requestId: v, path: v }));
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      const o = JSON.parse(line) as Line;
      expect([o.user_agent, o.request_id, o.path]).toEqual([JSON.parse(JSON.stringify(v)), JSON.parse(JSON.stringify(v)), JSON.parse(JSON.stringify(v))]);
      const text = textLine(entry({ userAgent: v }));
      expect(text.slice(0, -1)).not.toMatch(/[\n\r\u0000-\u001f\u007f]/);
    }
    expect(JSON.parse(jsonLine(entry({}))) as Line).toMatchObject({ start_time: '2025-01-31T12:00:00.007Z', duration: 1.235, bytes_received: null });
    expect(textLine(entry({}))).toBe('[2025-01-31T12:00:00.007Z] "GET /p HTTP/1.1" 200 - - 0 1.235 - "-" "-" "-" "h" "-" - "-" "-" 0 0 "-" "[::1]:5000" "-" 0 "-"\n');
    // A fallback's answer names why, last.
    expect(textLine(entry({ fallback: 'overload' })).endsWith(' 0 "overload"\n')).toBe(true);
    expect((JSON.parse(jsonLine(entry({ fallback: 'cold' }))) as Line).fallback).toBe('cold');
  });

  it('isoTime agrees with Date#toISOString', () => {
    for (let i = 0; i < 2000; i++) {
      const t = Math.floor(Math.random() * 4e12);
      expect(isoTime(t)).toBe(new Date(t).toISOString());
    }
    for (const t of [0, 999, 1000, 1001, Date.UTC(2024, 1, 29, 23, 59, 59, 999)]) expect(isoTime(t)).toBe(new Date(t).toISOString());
  });

  it('JSON lines encoded into the batch are the lines jsonLine writes; past the buffer they are dropped and counted', async () => {
    let dropped = 0;
    await withLogFile(async (fd, file) => {
      const out = new AccessLogOutput(fd, 64 * 1024, (n) => (dropped += n));
      const entries = Array.from({ length: 400 }, (_, i) => entry({ path: `/p/${i}`, userAgent: i % 3 === 0 ? 'ü "agent" 😀' : 'curl', bytesSent: i }));
      for (const e of entries) out.writeJson(e);
      await out.flush(5000);
      const written = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      expect(written.length + dropped).toBe(400);
      expect(dropped).toBeGreaterThan(0);
      const noTime = (l: string): string => l.replace(/"time":"[^"]*"/, '');
      expect(written.map(noTime)).toEqual(entries.slice(0, written.length).map((e) => noTime(jsonLine(e).slice(0, -1))));
      expect(Buffer.byteLength(written.join('\n'))).toBeLessThanOrEqual(64 * 1024);
    });
  });
});

describe('where the lines go', () => {
  it('a full disk: every line is dropped and counted, nothing is thrown, a flush does not hang', async () => {
    const fd = openSync('/dev/full', 'w');
    let dropped = 0;
    try {
      const out = new AccessLogOutput(fd, 1024 * 1024, (n) => (dropped += n));
      for (let i = 0; i < 25; i++) out.write(`{"n":${i}}\n`);
      await out.flush(3000);
      expect(dropped).toBe(25);
      // The disk has room again (here: another descriptor); the writer is not stuck.
    } finally {
      closeSync(fd);
    }
  });

  it('a file: every line, whole and in order; past the buffer, lines are dropped and counted at once', async () => {
    let dropped = 0;
    await withLogFile(async (fd, file) => {
      const out = new AccessLogOutput(fd, 64 * 1024, (n) => (dropped += n));
      const line = (i: number): string => `{"i":"${String(i).padStart(4, '0')}","pad":"${'x'.repeat(100)}"}\n`;
      for (let i = 0; i < 2000; i++) out.write(line(i));
      // 2000 lines of 117 bytes, 64 KiB allowed to wait: the rest were refused at once.
      const kept = Math.floor((64 * 1024) / line(0).length);
      expect(dropped).toBe(2000 - kept);
      await out.flush(5000);
      const written = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      expect(written).toHaveLength(kept);
      expect(written.map((l) => Number((JSON.parse(l) as { i: string }).i))).toEqual(Array.from({ length: kept }, (_, i) => i));
    });
  });

  it('the CLI: JSON lines on stdout for REST and gRPC calls, from its workers', async () => {
    const backend = await startHttpBackend({ name: 'main' });
    const grpcUp = await startRawUpstream((s) => {
      s.resume();
      s.once('end', () => answerOk(s, 'cli'));
    });
    const dir = mkdtempSync(join(tmpdir(), 'sgw-al-'));
    writeFileSync(join(dir, 'a.yaml'), sdep('a', 'm', { predictors: [{ name: 'main' }] }));
    const cli = await startCli([
      '--manifests',
      dir,
      '--workers',
      '1',
      '--access-log',
      'on',
      '--resolve',
      `a-main.m:8000=127.0.0.1:${backend.port}`,
      '--resolve',
      `a-main.m:5001=127.0.0.1:${grpcUp.port}`,
    ]);
    const clients = grpcClients(`127.0.0.1:${cli.port}`);
    try {
      expect((await send(`http://127.0.0.1:${cli.port}/seldon/m/a${predictPath}`, { 'x-request-id': 'cli-rest' }, Buffer.from('{}'))).status).toBe(200);
      expect((await predict(clients, { strData: 'x' }, md({ seldon: 'a', namespace: 'm', 'x-request-id': 'cli-grpc' }))).ok).toBe(true);
      const lines = (): Line[] =>
        cli
          .output()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Line)
          .filter((l) => l.msg === 'access');
      await poll(
        'access lines',
        async () => lines().length,
        (n) => n >= 2,
        5000,
      );
      expect(lines().find((l) => l.request_id === 'cli-rest')).toMatchObject({ protocol: 'HTTP/1.1', response_code: 200, deployment: 'a' });
      expect(lines().find((l) => l.request_id === 'cli-grpc')).toMatchObject({ protocol: 'HTTP/2', grpc_status: 0, deployment: 'a' });
    } finally {
      clients.close();
      await cli.stop();
      await backend.close();
      await grpcUp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a stdout nobody reads: requests are served as ever, lines are dropped and counted', async () => {
    const backend = await startHttpBackend({ name: 'main' });
    const dir = mkdtempSync(join(tmpdir(), 'sgw-al-'));
    writeFileSync(join(dir, 'a.yaml'), sdep('a', 'm', { predictors: [{ name: 'main' }] }));
    const port = await freePort();
    const admin = await freePort();
    const argv = [
      join(root, 'dist/gateway/main.js'),
      'serve',
      '--port',
      String(port),
      '--admin-port',
      String(admin),
      '--host',
      '127.0.0.1',
      '--manifests',
      dir,
      '--workers',
      '1',
      '--access-log-buffer',
      '64KiB',
      '--resolve',
      `a-main.m:8000=127.0.0.1:${backend.port}`,
    ];
    const child: ChildProcess = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    // Never read: the pipe fills and stays full. (stderr is read: it is not the access log's.)
    child.stdout!.pause();
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    try {
      await poll(
        'readyz',
        async () => (await readyz(admin)).status,
        (s) => s === 200,
        15_000,
      );
      // Each line is ~600 bytes: 3000 of them are far more than the pipe and the 64 KiB buffer hold.
      const statuses = await pool(3000, 16, async (i) => {
        const r = await request(`http://127.0.0.1:${port}/seldon/m/a${predictPath}?i=${i}`, {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json', 'user-agent': `blocked-stdout-${'u'.repeat(200)}` },
          headersTimeout: 5000,
          bodyTimeout: 5000,
        });
        await r.body.text();
        return r.statusCode;
      });
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(backend.requests).toHaveLength(3000);
      const metrics = await (await request(`http://127.0.0.1:${admin}/metrics`)).body.text();
      const dropped = Number(/seldon_gateway_access_log_dropped_total (\d+)/.exec(metrics)?.[1] ?? 0);
      expect(dropped, err).toBeGreaterThan(1000);
      expect(dropped).toBeLessThan(3000);
    } finally {
      child.kill('SIGKILL');
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
