/**
 * Emissary's ambassador Module from --ambassador-module, as users run the gateway (the CLI, two
 * workers: the primary reads the file, the workers get it over IPC): each key it honours over real
 * sockets, a flag given explicitly winning over it, a key the gateway does not honour refusing the
 * Module (exit 2, the key named), and the file changed while serving (a good Module applied, a bad
 * one leaving the one in use, logged and counted).
 */
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { replaceFile, sdep, startTestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { raw } from '../../helpers/net.js';
import { routesReport } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const PREDICT = '/seldon/models/iris/api/v1.0/predictions';

/** The v2 shape (`name:` and `config:`), as Ambassador's annotations and getambassador.io/v2 resources wrote it. */
const v2 = (config: string): string => `apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;
/** The v3alpha1 resource (`metadata.name`, `spec.config`). */
const v3 = (config: string): string =>
  `apiVersion: getambassador.io/v3alpha1\nkind: Module\nmetadata:\n  name: ambassador\n  namespace: ambassador\nspec:\n  config:\n${config.replace(/^/gm, '    ')}\n`;

function cli(args: string[]): { code: number | null; err: string } {
  const r = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 20_000 });
  return { code: r.status, err: r.stderr };
}

/** One POST on a connection of its own (so that each may reach another worker): its status. */
async function post(port: number, path: string, body = '{}', headers: Record<string, string> = {}): Promise<number> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close', ...headers }, body });
  await r.body.dump();
  return r.statusCode;
}

/** Eight requests, every one answered `code`. */
async function all(port: number, path: string, code: number): Promise<boolean> {
  const got = await Promise.all(Array.from({ length: 8 }, () => post(port, path)));
  return got.every((s) => s === code);
}

/** The status line of a GET with one header of `bytes` bytes. */
async function withHeader(port: number, bytes: number): Promise<string> {
  return (await raw(port, `GET ${PREDICT} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ${'h'.repeat(bytes)}\r\n\r\n`)).text.split('\r\n')[0]!;
}

describe('the ambassador Module', () => {
  let model: HttpBackend;
  let dir: string;
  let manifests: string;

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'iris', maxHeaderSize: 128 * 1024 });
    dir = mkdtempSync(join(tmpdir(), 'sgw-module-'));
    manifests = join(dir, 'manifests');
    const regex = sdep('regexy', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-regex-header': 'x-tenant: (alpha|beta|gamma|delta)[0-9]+' });
    spawnSync('mkdir', ['-p', manifests]);
    writeFileSync(join(manifests, 'iris.yaml'), sdep('iris', 'models', { predictors: [{ name: 'main' }] }));
    writeFileSync(join(manifests, 'regexy.yaml'), regex);
  });
  afterAll(async () => {
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (file: string, extra: string[] = []): Promise<CliGateway> =>
    startCli([
      '--manifests',
      manifests,
      '--workers',
      '2',
      '--resolve',
      `iris-main.models:8000=127.0.0.1:${model.port}`,
      '--resolve',
      `regexy-main.models:8000=127.0.0.1:${model.port}`,
      '--ambassador-module',
      file,
      ...extra,
    ]);

  it("sets what its keys' flags set, over real sockets; v3alpha1's shape too", async () => {
    const file = join(dir, 'module-keys.yaml');
    writeFileSync(file, v3('max_request_headers_kb: 8\ncluster_request_timeout_ms: 400\nregex_max_size: 10\nbuffer:\n  max_request_bytes: 1000\ndiagnostics:\n  enabled: false'));
    const gw = await start(file);
    try {
      // max_request_headers_kb: 8 KiB heads pass, larger ones get 431 (the default would take 60 KiB).
      expect(await withHeader(gw.port, 6 * 1024)).toBe('HTTP/1.1 200 OK');
      expect(await withHeader(gw.port, 10 * 1024)).toMatch(/^HTTP\/1\.1 431/);
      // cluster_request_timeout_ms: a model slower than 400 ms is a 504 (the default would wait 3 s).
      expect(await post(gw.port, `${PREDICT}?sleep=1500`)).toBe(504);
      expect(await post(gw.port, `${PREDICT}?sleep=10`)).toBe(200);
      // buffer.max_request_bytes: a larger body is a 413, and the model never sees it.
      const before = model.requests.length;
      expect(await post(gw.port, PREDICT, JSON.stringify({ data: 'x'.repeat(1200) }))).toBe(413);
      expect(model.requests.length).toBe(before);
      expect(await post(gw.port, PREDICT, JSON.stringify({ data: 'x'.repeat(500) }))).toBe(200);
      // regex_max_size: the header regex is over 10, so its deployment is rejected with the reason.
      const regexy = await routesReport(`http://127.0.0.1:${gw.admin}`, 'regexy');
      expect(regexy.state).toBe('rejected');
      expect(regexy.reasons.join(' ')).toMatch(/over 10/);
      // A harmless key is logged, not refused.
      expect(gw.output()).toContain('ambassador Module config.diagnostics: not read here');
    } finally {
      await gw.stop();
    }
  });

  it('a flag given explicitly wins over the Module', async () => {
    const file = join(dir, 'module-flag.yaml');
    writeFileSync(file, v2('max_request_headers_kb: 8\ncluster_request_timeout_ms: 400'));
    const gw = await start(file, ['--max-header-size', '20KiB', '--default-timeout', '5s']);
    try {
      expect(await withHeader(gw.port, 12 * 1024)).toBe('HTTP/1.1 200 OK');
      expect(await withHeader(gw.port, 24 * 1024)).toMatch(/^HTTP\/1\.1 431/);
      expect(await post(gw.port, `${PREDICT}?sleep=1000`)).toBe(200);
    } finally {
      await gw.stop();
    }
  });

  it.each([
    ['lua_scripts', 'lua_scripts: |\n  function envoy_on_request(h) end'],
    ['envoy_validation_timeout', 'envoy_validation_timeout: 30'],
    ['use_remote_address', 'use_remote_address: "false"'],
    ['xff_num_trusted_hops', 'xff_num_trusted_hops: -1'],
    ['no_such_key', 'no_such_key: true'],
  ])('a key it does not honour (%s) refuses the Module: exit 2, the key named', (key, config) => {
    const file = join(dir, `module-bad-${key}.yaml`);
    writeFileSync(file, v2(config));
    const r = cli(['serve', '--manifests', manifests, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--ambassador-module', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`--ambassador-module ${file}: config.${key}: not honoured`);
  });

  it('not a Module: exit 2 with what is wrong', () => {
    const file = join(dir, 'module-mapping.yaml');
    writeFileSync(file, 'apiVersion: getambassador.io/v2\nkind: Mapping\nname: m\nprefix: /x/\nservice: y\n');
    const r = cli(['serve', '--manifests', manifests, '--port', '0', '--admin-port', '0', '--ambassador-module', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('kind "Mapping": only the ambassador Module is read from this file');
  });

  it('changed while serving: applied in every worker; a Module with a key not honoured leaves the one in use, logged and counted', async () => {
    const file = join(dir, 'module-reload.yaml');
    writeFileSync(file, v2('cluster_request_timeout_ms: 300'));
    const gw = await start(file);
    const admin = `http://127.0.0.1:${gw.admin}`;
    try {
      expect(await all(gw.port, `${PREDICT}?sleep=900`, 504)).toBe(true);
      // A longer default timeout: the same slow model now answers, on every worker.
      replaceFile(file, v2('cluster_request_timeout_ms: 5000'));
      await waitUntil(() => all(gw.port, `${PREDICT}?sleep=900`, 200));
      // A Module with lua_scripts: refused whole (its shorter timeout too), the one in use stays.
      replaceFile(file, v2('cluster_request_timeout_ms: 300\nlua_scripts: "x"'));
      await waitUntil(async () => (await metric(admin, 'seldon_gateway_ambassador_module_reloads_total{result="failure"}')) >= 1);
      expect(await all(gw.port, `${PREDICT}?sleep=900`, 200)).toBe(true);
      expect(gw.output()).toContain('ambassador Module file not applied: the ones in use stay');
      expect(gw.output()).toContain('config.lua_scripts: not honoured');
      expect(await metric(admin, 'seldon_gateway_ambassador_module_reloads_total{result="success"}')).toBe(1);
    } finally {
      await gw.stop();
    }
  });
});

/** Emissary's acceptance tests for the Module (python/tests/src/tests/kat/), as far as they apply to one gateway. */
describe("Emissary's KAT for the Module", () => {
  let model: HttpBackend;
  let dir: string;
  beforeAll(async () => {
    model = await startHttpBackend({ name: 'target', maxHeaderSize: 128 * 1024 });
    dir = mkdtempSync(join(tmpdir(), 'sgw-module-kat-'));
  });
  afterAll(async () => {
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An in-process gateway with the Module `config` (KAT writes v3alpha1 with `name:` and `config:`). */
  async function withModule(config: string, run: (port: number) => Promise<void>, extra: Record<string, string> = {}): Promise<void> {
    const file = join(dir, `module-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, `apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`);
    const gw = await startTestGateway({
      manifests: {
        'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'main' }] }),
        // A policy of its own: the Module's does not replace it.
        'bar.yaml': sdep('bar', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-cors': 'origins: [http://bar.example.com]\nmethods: [POST, GET, OPTIONS]\n' }),
        ...extra,
      },
      resolve: { 'iris-main.models:8000': model.port, 'bar-main.models:8000': model.port, 'hh-main.models:8000': model.port },
      args: ['--ambassador-module', file],
    });
    try {
      await run(gw.port);
    } finally {
      await gw.stop();
    }
  }

  it('t_max_req_header_kb MaxRequestHeaderKBTest: 30 KiB; a 31 KiB header gets 431, a 29 KiB one 200', () =>
    withModule('max_request_headers_kb: 30', async (port) => {
      expect(await withHeader(port, 31 * 1024)).toMatch(/^HTTP\/1\.1 431/);
      expect(await withHeader(port, 29 * 1024)).toBe('HTTP/1.1 200 OK');
    }));

  it('t_max_req_header_kb MaxRequestHeaderKBMaxTest: 96 KiB; 97 KiB gets 431, 95 KiB 200', () =>
    withModule('max_request_headers_kb: 96', async (port) => {
      expect(await withHeader(port, 97 * 1024)).toMatch(/^HTTP\/1\.1 431/);
      expect(await withHeader(port, 95 * 1024)).toBe('HTTP/1.1 200 OK');
    }));

  it("t_cors GlobalCORSTest: the Module's cors is every route's that has none; a route's own stays", () =>
    withModule('cors:\n  origins: [http://foo.example.com]\n  methods: [POST, GET, OPTIONS]', async (port) => {
      const acao = async (path: string, origin?: string): Promise<string | undefined> => {
        const r = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) }, body: '{}' });
        await r.body.dump();
        expect(r.statusCode).toBe(200);
        return r.headers['access-control-allow-origin'] as string | undefined;
      };
      const bar = PREDICT.replace('/iris/', '/bar/');
      expect(await acao(PREDICT)).toBeUndefined();
      expect(await acao(PREDICT, 'http://foo.example.com')).toBe('http://foo.example.com');
      expect(await acao(PREDICT, 'http://wrong.example.com')).toBeUndefined();
      expect(await acao(bar)).toBeUndefined();
      expect(await acao(bar, 'http://bar.example.com')).toBe('http://bar.example.com');
      expect(await acao(bar, 'http://wrong.example.com')).toBeUndefined();
      expect(await acao(bar, 'http://foo.example.com')).toBeUndefined();
    }));

  it("retry_policy: every route's that has none; a 503 is retried and the client gets the retry's answer", () =>
    withModule('retry_policy:\n  retry_on: 5xx\n  num_retries: 2', async (port) => {
      let seen = 0;
      model.setHandler((_req, res) => {
        seen++;
        res.writeHead(seen === 1 ? 503 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ attempt: seen }));
      });
      try {
        const r = await request(`http://127.0.0.1:${port}${PREDICT}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        expect(r.statusCode).toBe(200);
        expect(await r.body.json()).toEqual({ attempt: 2 });
        expect(seen).toBe(2);
      } finally {
        model.setHandler(undefined);
      }
    }));

  it('listener_idle_timeout_ms: a client connection with no request in flight is closed after it (HTTP/1.1 and HTTP/2), not before', () =>
    withModule('listener_idle_timeout_ms: 400', async (port) => {
      // HTTP/1.1: one request, then the gateway closes the idle keep-alive connection.
      const socket = net.connect(port, '127.0.0.1');
      let answered = 0;
      const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
      socket.on('data', (d: Buffer) => {
        if (answered === 0 && d.toString('latin1').includes('\r\n\r\n')) answered = performance.now();
      });
      // Timed from before the request was sent: the gateway's idle time starts later still, however late this
      // process sees the answer on a busy machine, so the close cannot come sooner than this bound.
      const sent = performance.now();
      socket.write(`POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
      expect((await closed) - sent).toBeGreaterThanOrEqual(400 - 5);
      expect(answered).toBeGreaterThan(0);
      // HTTP/2: one stream, then the session is closed once idle.
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', () => undefined);
      const sessionClosed = new Promise<number>((resolve) => session.once('close', () => resolve(performance.now())));
      const opened = performance.now();
      await new Promise<void>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': PREDICT, 'content-type': 'application/json' });
        s.on('error', reject);
        s.on('end', () => resolve());
        s.resume();
        s.end('{}');
      });
      expect((await sessionClosed) - opened).toBeGreaterThanOrEqual(400 - 5);
    }));

  it("t_gzip: the Module's gzip block compresses answers (Envoy's gzip filter), to the model's bytes", () =>
    withModule('gzip:\n  min_content_length: 32\n  content_type: [application/json]', async (port) => {
      const before = model.requests.length;
      const r = await request(`http://127.0.0.1:${port}${PREDICT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
        body: JSON.stringify({ data: 'x'.repeat(200) }),
      });
      const body = Buffer.from(await r.body.arrayBuffer());
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-encoding']).toBe('gzip');
      expect(model.requests.length).toBe(before + 1);
      // A client that takes no gzip gets the answer as it was: the gzip one decodes to the same bytes.
      const plain = await request(`http://127.0.0.1:${port}${PREDICT}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: 'x'.repeat(200) }) });
      expect(plain.headers['content-encoding']).toBeUndefined();
      const plainBody = Buffer.from(await plain.body.arrayBuffer());
      expect(plainBody.length).toBeGreaterThan(32);
      expect(gunzipSync(body).equals(plainBody)).toBe(true);
    }));

  it('t_mappingtests_default MergeSlashesEnabled: extra slashes still match the route; the model gets the merged path', () =>
    withModule('merge_slashes: true', async (port) => {
      const before = model.requests.length;
      for (const path of [PREDICT, `/${PREDICT}`, PREDICT.replace('/models/', '//models/'), PREDICT.replace('/api/', '//api/')]) expect(await post(port, path)).toBe(200);
      expect(model.requests.slice(before).map((r) => r.url)).toEqual(Array(4).fill('/api/v1.0/predictions'));
    }));

  it('t_mappingtests_default MergeSlashesDisabled: without merge_slashes an extra slash matches no route: 404, no model asked', () =>
    withModule('regex_type: safe', async (port) => {
      expect(await post(port, PREDICT)).toBe(200);
      const before = model.requests.length;
      for (const path of [`/${PREDICT}`, `/${PREDICT.replace('/models/', '//models/')}`, PREDICT.replace('/models/', '//models/'), PREDICT.replace('/iris/', '//iris/')])
        expect(await post(port, path), path).toBe(404);
      expect(model.requests.length).toBe(before);
    }));

  it("t_mappingtests_default HostHeaderMappingStripMatchingHostPort: the listener's port is dropped from the Host for the match; another port is not", async () => {
    const mapping = 'apiVersion: getambassador.io/v3alpha1\nkind: Mapping\nname: hh\nprefix: /seldon/models/hh/\nservice: http://hh-main.models:8000\nhost: myhostname.com\n';
    await withModule(
      'strip_matching_host_port: true',
      async (port) => {
        const status = async (host?: string): Promise<number> => (await raw(port, `GET /seldon/models/hh/ HTTP/1.1\r\nHost: ${host ?? `127.0.0.1:${port}`}\r\nConnection: close\r\n\r\n`)).status;
        const before = model.requests.length;
        expect([await status(), await status('yourhostname.com'), await status('myhostname.com:11875')]).toEqual([404, 404, 404]);
        expect(model.requests.length).toBe(before);
        expect([await status('myhostname.com'), await status(`myhostname.com:${port}`)]).toEqual([200, 200]);
        expect(model.requests.slice(before).map((r) => r.headers.host)).toEqual(['myhostname.com', 'myhostname.com']);
      },
      { 'hh.yaml': sdep('hh', 'models', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': mapping }) },
    );
  });

  it('t_mappingtests_default RejectRequestsWithEscapedSlashesEnabled: %2F is a 400 and no model is asked', () =>
    withModule('reject_requests_with_escaped_slashes: true', async (port) => {
      const before = model.requests.length;
      expect(await post(port, '/seldon/models/iris/status/%2F200')).toBe(400);
      expect(model.requests.length).toBe(before);
    }));

  it('t_mappingtests_default RejectRequestsWithEscapedSlashesDisabled: %2F is passed on, and the answer says the upstream was asked', () =>
    withModule('reject_requests_with_escaped_slashes: false', async (port) => {
      const r = await request(`http://127.0.0.1:${port}/seldon/models/iris/status/%2F200`, { headers: { connection: 'close' } });
      await r.body.dump();
      expect(model.requests.at(-1)!.url).toBe('/status/%2F200');
      expect(r.headers['x-envoy-upstream-service-time']).toMatch(/^[0-9]+$/);
    }));
});
