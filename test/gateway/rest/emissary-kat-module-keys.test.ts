/**
 * Emissary's acceptance tests of listener and cluster keys, ported: each `describe` is named after the KAT
 * class (python/tests/src/tests/kat/t_cluster_tag.py ClusterTagTest, t_listeneridletimeout.py
 * ListenerIdleTimeout, t_chunked_length.py AllowChunkedLengthTestTrue, t_bufferlimitbytes.py
 * BufferLimitBytesTest). The KAT classes read Envoy's config dump or diag; here each asserts what the
 * client and the model received under the class's config. A key the gateway does not honour refuses
 * the Module with its reason, and the class's requests are checked under Envoy's default instead.
 * EndpointGrpcTest (t_grpc.py) is in test/gateway/grpc/emissary-kat-grpc.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { readUntilEnd } from '../../helpers/net.js';
import { parseAmbassadorModule } from '../../../routing/emissary/module.js';

const NS = 'models';
const moduleText = (lines: string[]): string => ['apiVersion: getambassador.io/v3alpha1', 'kind: Module', 'name: ambassador', 'config:', ...lines.map((l) => `  ${l}`)].join('\n');
const mapping = (name: string, service: string, extra: string[] = []): string =>
  ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', `name: ${name}`, 'hostname: "*"', `prefix: /seldon/${NS}/${name}/`, `service: ${service}`, ...extra].join('\n');

/** kat-server as these ports need it: 200 naming the backend, a request with `x-hold` never answered (until the client leaves). */
const katServer =
  (backend: string) =>
  (req: IncomingMessage, res: ServerResponse): void => {
    if (req.headers['x-hold'] !== undefined) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ backend }));
  };

async function gatewayWith(module: string[] | null, mappings: string[], resolve: Record<string, number>): Promise<{ gw: TestGateway; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-kat-keys-'));
  const args: string[] = [];
  if (module !== null) {
    const file = join(dir, 'module.yaml');
    writeFileSync(file, moduleText(module));
    args.push('--ambassador-module', file);
  }
  const gw = await startTestGateway({
    manifests: { 'kat.yaml': sdep('kat', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': mappings.join('\n---\n') }) },
    resolve,
    args,
  });
  return { gw, dir };
}

describe('ClusterTagTest', () => {
  let target1: HttpBackend;
  let target2: HttpBackend;
  let gw: TestGateway;
  let dir: string;
  const s1 = `target1.${NS}:8000`;
  const s2 = `target2.${NS}:8000`;
  beforeAll(async () => {
    target1 = await startHttpBackend({ name: 'target1', handler: katServer('target1') });
    target2 = await startHttpBackend({ name: 'target2', handler: katServer('target2') });
    // The class's Mappings; the Module's circuit breaker (one request at a time per cluster) makes a cluster of its own visible.
    ({ gw, dir } = await gatewayWith(
      ['circuit_breakers:', '- max_requests: 1'],
      [
        mapping('mapping-1', s1),
        mapping('mapping-2', s1, ['cluster_tag: tag-1']),
        mapping('mapping-3', s1, ['cluster_tag: tag-2']),
        mapping('mapping-4', s2, ['cluster_tag: tag-2']),
        mapping('mapping-5', s1, ['cluster_tag: some-really-long-tag-that-is-really-long']),
        mapping('mapping-6', s2, ['cluster_tag: some-really-long-tag-that-is-really-long']),
      ],
      { [s1]: target1.port, [s2]: target2.port },
    ));
  });
  afterAll(async () => {
    await gw?.stop();
    await target1?.close();
    await target2?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['mapping-1', 'target1'],
    ['mapping-2', 'target1'],
    ['mapping-3', 'target1'],
    ['mapping-4', 'target2'],
    ['mapping-5', 'target1'],
    ['mapping-6', 'target2'],
  ])('%s: its cluster’s target gets the request', async (name, target) => {
    const model = target === 'target1' ? target1 : target2;
    const before = model.requests.length;
    const r = await request(`http://127.0.0.1:${gw.port}/seldon/${NS}/${name}/x`, { headers: { 'x-case': name } });
    expect([r.statusCode, await r.body.json()]).toEqual([200, { backend: target }]);
    expect(model.requests.slice(before).map((q) => [q.url, q.headers['x-case']])).toEqual([['/x', name]]);
  });

  it('a tagged Mapping has a cluster of its own: its circuit breaker is not the untagged one’s, to the same service', async () => {
    const held = new AbortController();
    const holding = request(`http://127.0.0.1:${gw.port}/seldon/${NS}/mapping-1/held`, { headers: { 'x-hold': '1' }, signal: held.signal }).catch(() => undefined);
    await waitFor(() => target1.requests.some((q) => q.url === '/held'));
    try {
      // The untagged cluster's one request is in flight: another there overflows, the model not called.
      const before = target1.requests.length;
      const over = await request(`http://127.0.0.1:${gw.port}/seldon/${NS}/mapping-1/again`);
      expect([over.statusCode, over.headers['x-envoy-overloaded']]).toEqual([503, 'true']);
      await over.body.dump();
      expect(target1.requests.length).toBe(before);
      // tag-1 and tag-2 to the same service: clusters of their own, each admits its request.
      for (const name of ['mapping-2', 'mapping-3', 'mapping-5']) {
        const r = await request(`http://127.0.0.1:${gw.port}/seldon/${NS}/${name}/own`);
        expect([name, r.statusCode, await r.body.json()]).toEqual([name, 200, { backend: 'target1' }]);
      }
    } finally {
      held.abort();
      await holding;
    }
  });
});

describe('ListenerIdleTimeout', () => {
  let model: HttpBackend;
  let gw: TestGateway;
  let dir: string;
  const svc = `target.${NS}:8000`;
  // The class sets 30000 ms; its value is read as it is (below), and the behaviour timed with 400 ms, as test/gateway/process/ambassador-module.test.ts times it.
  const IDLE_MS = 400;
  beforeAll(async () => {
    model = await startHttpBackend({ name: 'target', handler: katServer('target') });
    ({ gw, dir } = await gatewayWith([`listener_idle_timeout_ms: ${IDLE_MS}`], [mapping('config-dump', svc)], { [svc]: model.port }));
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the class’s Module: 30000 ms is the listener’s idle timeout (Envoy’s common_http_protocol_options.idle_timeout 30s)', () => {
    expect(parseAmbassadorModule(moduleText(['listener_idle_timeout_ms: 30000'])).listenerIdleTimeoutMs).toBe(30000);
  });

  it('a keep-alive connection is served while in use, and closed once idle for the timeout, not before', async () => {
    const socket = net.connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let read = '';
    socket.on('data', (d: Buffer) => (read += d.toString('latin1')));
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
    const before = model.requests.length;
    socket.write(`GET /seldon/${NS}/config-dump/a HTTP/1.1\r\nHost: x\r\n\r\n`);
    await waitFor(() => read.includes('{"backend":"target"}'));
    // Timed from before the second request: the gateway's idle time starts later still, so the close cannot come sooner.
    const sent = performance.now();
    socket.write(`GET /seldon/${NS}/config-dump/b HTTP/1.1\r\nHost: x\r\n\r\n`);
    const at = await closed;
    expect(at - sent).toBeGreaterThanOrEqual(IDLE_MS - 5);
    expect(read.match(/HTTP\/1.1 200 OK/g)).toHaveLength(2);
    expect(read.match(/\{"backend":"target"\}/g)).toHaveLength(2);
    expect(model.requests.slice(before).map((q) => q.url)).toEqual(['/a', '/b']);
  });
});

describe('AllowChunkedLengthTestTrue', () => {
  let model: HttpBackend;
  let gw: TestGateway;
  let dir: string;
  const svc = `target.${NS}:8000`;
  beforeAll(async () => {
    model = await startHttpBackend({ name: 'target', handler: katServer('target') });
    // Envoy's default (allow_chunked_length: false): the class's own Module is refused (below).
    ({ gw, dir } = await gatewayWith(null, [mapping('foo', svc)], { [svc]: model.port }));
  });
  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the class’s Module (allow_chunked_length: true) is refused with its reason: Content-Length beside Transfer-Encoding is refused', () => {
    expect(() => parseAmbassadorModule(moduleText(['allow_chunked_length: true']))).toThrow(
      'config.allow_chunked_length: not honoured: true: the gateway refuses Content-Length beside Transfer-Encoding',
    );
  });

  it('[0] and [2]: a GET reaches the model (the KAT’s Go client drops the Content-Length and Transfer-Encoding it was given)', async () => {
    const before = model.requests.length;
    const r = await request(`http://127.0.0.1:${gw.port}/seldon/${NS}/foo/`);
    expect([r.statusCode, await r.body.json()]).toEqual([200, { backend: 'target' }]);
    expect(model.requests.length - before).toBe(1);
  });

  it.each([
    ['Content-Length: 0 and Transfer-Encoding: chunked', 'Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Content-Length: 0 and Transfer-Encoding: gzip, as the KAT asked', 'Content-Length: 0\r\nTransfer-Encoding: gzip\r\n\r\n'],
  ])('%s on the wire: 400, the model never called, the connection closed', async (_, tail) => {
    const before = model.requests.length;
    const read = await readUntilEnd(gw.port, [`GET /seldon/${NS}/foo/ HTTP/1.1\r\nHost: x\r\n${tail}GET /seldon/${NS}/foo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`]);
    expect(read.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(read.match(/HTTP\/1.1 /g)).toHaveLength(1);
    expect(model.requests.length).toBe(before);
  });
});

describe('BufferLimitBytesTest', () => {
  // Not portable: its Module's lua_scripts (Lua run on each request) are not run by the gateway, and buffer_limit_bytes (Envoy's per-connection buffer) is not set by the Module; both refuse it.
  it('the class’s Module is refused, each key with its reason', () => {
    const lua = ['lua_scripts: |', '  function envoy_on_request(request_handle)', '    request_handle:headers():add("request_body_size", request_handle:body():length())', '  end'];
    expect(() => parseAmbassadorModule(moduleText(['buffer_limit_bytes: 5242880', ...lua]))).toThrow('config.buffer_limit_bytes: not honoured: connection buffer limits are not set by the Module');
    expect(() => parseAmbassadorModule(moduleText(lua))).toThrow('config.lua_scripts: not honoured: Lua scripts are not run');
  });
});
