/**
 * The ambassador Module's route defaults and server name over real sockets (routing/emissary/module.ts,
 * docs/migrating-from-ambassador.md#the-ambassador-module), on Seldon's routes and custom Mappings, REST and
 * gRPC: `error_response_overrides` (a Mapping's own replacing them, `bypass_error_response_overrides` turning
 * them off, the gateway's own 503 on a route and 404 without one; gRPC answers untouched, as Envoy's),
 * `server_name` (every answer's Server, the model's replaced), `circuit_breakers` (every route's that sets none),
 * `defaults` (the header edits of every Mapping that sets none);
 * each applied again when the file changes, a bad value refusing the Module. `load_balancer`:
 * test/gateway/upstream/module-balancing.test.ts.
 */
import { spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSeldonMessage, grpcClients, grpcFrame } from '../../fixtures/grpc-backend.js';
import { headerValue, rawRequest, startRecordingUpstream, type HeaderLine, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { replaceFile, sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { md, predict, startRawUpstream, type Outcome, type RawUpstream } from '../../helpers/grpc.js';
import { restMapping } from '../../helpers/mappings.js';
import { metric } from '../../helpers/metrics.js';
import { freePort } from '../../helpers/net.js';
import { waitUntil } from '../../helpers/wait.js';
import type { TableJson } from '../../../routing/table/describe.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const NS = 'models';
const IRIS = `/seldon/${NS}/iris/api/v1.0/predictions`;
const MODEL_BODY = '{"model":"own body"}';
/** What the model sends on every answer: its own Server among its fields. */
const MODEL_FIELDS: HeaderLine[] = [
  ['Content-Type', 'application/json'],
  ['Server', 'model-server/1.0'],
  ['X-Model', 'yes'],
];

const module = (config: string): string => `apiVersion: getambassador.io/v2\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;
const OVERRIDES = [
  'error_response_overrides:',
  '- on_status_code: 503',
  '  body:',
  '    text_format: "module says %RESPONSE_CODE%"',
  '- on_status_code: 404',
  '  body:',
  '    json_format: {error: "no such route"}',
].join('\n');

const MAPPINGS = [
  restMapping('plain', NS, `iris-main.${NS}:8000`),
  restMapping('own', NS, `iris-main.${NS}:8000`, ['error_response_overrides:', '- on_status_code: 404', '  body:', '    text_format: "own 404"']),
  restMapping('bypass', NS, `iris-main.${NS}:8000`, ['bypass_error_response_overrides: true']),
  restMapping('ws', NS, `iris-main.${NS}:8000`, ['allow_upgrade: [websocket]']),
  restMapping('ws-down', NS, `down-main.${NS}:8000`, ['allow_upgrade: [websocket]']),
].join('\n---\n');

let model: RecordingUpstream;
let grpcModel: RawUpstream;
let dir: string;
let downPort: number;
/** Requests the model holds (`x-hold`) until the test lets them go. */
const held: (() => void)[] = [];
const release = (): void => {
  for (const go of held.splice(0)) go();
};

beforeAll(async () => {
  model = await startRecordingUpstream({
    name: 'model',
    responder: async (req) => {
      if (headerValue(req.headers, 'x-hold') !== undefined) await new Promise<void>((go) => held.push(go));
      if (headerValue(req.headers, 'x-no-server') !== undefined) return { headers: [MODEL_FIELDS[0]!], body: MODEL_BODY };
      if (headerValue(req.headers, 'upgrade') !== undefined)
        return { statusLine: 'HTTP/1.1 101 Switching Protocols', headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ...MODEL_FIELDS.slice(1)], framing: 'none' };
      const status = Number(headerValue(req.headers, 'x-status') ?? '200');
      return { statusLine: `HTTP/1.1 ${status} Model Says`, headers: MODEL_FIELDS, body: MODEL_BODY };
    },
  });
  grpcModel = await startRawUpstream((stream, _n, headers) => {
    const answer = (): void => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', server: 'model-grpc/1.0' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(encodeSeldonMessage({ strData: 'from the model' })));
    };
    if (headers['x-hold'] !== undefined) held.push(answer);
    else answer();
  });
  dir = mkdtempSync(join(tmpdir(), 'sgw-module-routes-'));
  downPort = await freePort();
});
afterAll(async () => {
  release();
  await model?.close();
  await grpcModel?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A gateway with the Module `config` in a file of its own (returned, to be replaced), and `args`. */
async function withModule(config: string, run: (gw: TestGateway, file: string) => Promise<void>, args: string[] = []): Promise<void> {
  const file = join(dir, `module-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, module(config));
  const gw = await startTestGateway({
    manifests: {
      'iris.yaml': sdep('iris', NS, { predictors: [{ name: 'main' }] }),
      'down.yaml': sdep('down', NS, { predictors: [{ name: 'main' }] }),
      'limited.yaml': sdep('limited', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-circuit-breakers-max-requests': '5' }),
      'custom.yaml': sdep('custom', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': MAPPINGS }),
    },
    resolve: {
      [`iris-main.${NS}:8000`]: model.port,
      [`limited-main.${NS}:8000`]: model.port,
      [`iris-main.${NS}:5001`]: grpcModel.port,
      [`down-main.${NS}:8000`]: downPort,
      [`down-main.${NS}:5001`]: downPort,
    },
    args: ['--ambassador-module', file, ...args],
  });
  try {
    await run(gw, file);
  } finally {
    release();
    await gw.stop();
  }
}

/** One request on a connection of its own; its answer. */
async function send(gw: TestGateway, target: string, headers: HeaderLine[] = []): Promise<RawResponse> {
  const { res, x } = await rawRequest(gw.port, { method: 'POST', target, headers: [['Host', 'gw.example'], ['Content-Type', 'application/json'], ...headers], body: Buffer.from('{}') }, 10_000);
  x.socket.destroy();
  if (!res) throw new Error('no answer');
  return res;
}
/** The answer's lines, names lower case, without those of the moment (Date, the connection's, the upstream's time). */
const head = (r: RawResponse): string[] => r.headers.map(([k, v]) => `${k.toLowerCase()}: ${v}`).filter((l) => !/^(date|connection|keep-alive|x-envoy-upstream-service-time):/.test(l));

/** An HTTP/2 REST request: its head and body. */
async function h2(gw: TestGateway, path: string, headers: Record<string, string> = {}): Promise<{ head: http2.IncomingHttpHeaders; body: string }> {
  const session = http2.connect(`http://127.0.0.1:${gw.port}`);
  try {
    return await new Promise((resolve, reject) => {
      const s = session.request({ ':path': path, ':method': 'POST', 'content-type': 'application/json', ...headers });
      let got: http2.IncomingHttpHeaders = {};
      let body = '';
      s.setEncoding('latin1');
      s.on('response', (h) => (got = h));
      s.on('data', (d: string) => (body += d));
      s.on('end', () => resolve({ head: got, body }));
      s.on('error', reject);
      s.end('{}');
    });
  } finally {
    session.close();
  }
}

/** A WebSocket handshake on Mapping `name`: the answer head's lines. */
async function upgradeHead(gw: TestGateway, name: string): Promise<string[]> {
  const socket = net.connect(gw.port, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    socket.write(
      `GET /seldon/${NS}/${name}/ HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    let got = Buffer.alloc(0);
    for (;;) {
      const chunk = await new Promise<Buffer | null>((r) => {
        socket.once('data', r);
        socket.once('close', () => r(null));
      });
      if (chunk === null) throw new Error(`closed before an answer head: ${got.toString('latin1')}`);
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end >= 0) return got.toString('latin1', 0, end).split('\r\n');
    }
  } finally {
    socket.destroy();
  }
}

/** A Predict through the real gRPC client. */
async function call(gw: TestGateway, seldon: string, extra: Record<string, string> = {}): Promise<Outcome> {
  const clients = grpcClients(`127.0.0.1:${gw.port}`);
  try {
    return await predict(clients, { strData: 'x' }, md({ seldon, namespace: NS, ...extra }));
  } finally {
    clients.close();
  }
}

describe('error_response_overrides', () => {
  it("Seldon's route: the model's 503 with the Module's body, type and length, its status and other fields kept; a status not listed as the model sent it", () =>
    withModule(OVERRIDES, async (gw) => {
      const before = model.requests.length;
      const r = await send(gw, IRIS, [['x-status', '503']]);
      expect(r.statusLine).toBe('HTTP/1.1 503 Model Says');
      expect(r.body.toString('latin1')).toBe('module says 503');
      expect(head(r)).toEqual(['server: model-server/1.0', 'x-model: yes', 'content-type: text/plain', 'content-length: 15']);
      expect(model.requests.length).toBe(before + 1);
      expect(model.requests.at(-1)!.target).toBe('/api/v1.0/predictions');
      const other = await send(gw, IRIS, [['x-status', '502']]);
      expect(other.status).toBe(502);
      expect(other.body.toString('latin1')).toBe(MODEL_BODY);
      expect(head(other)).toEqual(['content-type: application/json', 'server: model-server/1.0', 'x-model: yes', `content-length: ${MODEL_BODY.length}`]);
    }));

  it("the gateway's own answers: a 503 on a route whose model is down, and the 404 without a route", () =>
    withModule(OVERRIDES, async (gw) => {
      const down = await send(gw, `/seldon/${NS}/down/api/v1.0/predictions`);
      expect(down.status).toBe(503);
      expect(down.body.toString('latin1')).toBe('module says 503');
      expect(head(down)).toEqual(['content-type: text/plain', 'content-length: 15']);
      const none = await send(gw, `/seldon/${NS}/nothing-here/api/v1.0/predictions`);
      expect(none.status).toBe(404);
      expect(none.body.toString('latin1')).toBe('{"error":"no such route"}\n');
      expect(head(none)).toEqual(['content-type: application/json', 'content-length: 26']);
    }));

  it("custom Mappings: one without overrides takes the Module's; one with its own keeps only its own; bypass_error_response_overrides: none", () =>
    withModule(OVERRIDES, async (gw) => {
      const body = async (path: string, status: string): Promise<string> => (await send(gw, `/seldon/${NS}/${path}/`, [['x-status', status]])).body.toString('latin1');
      expect(await body('plain', '503')).toBe('module says 503');
      expect(await body('own', '404')).toBe('own 404');
      expect(await body('own', '503')).toBe(MODEL_BODY);
      expect(await body('bypass', '503')).toBe(MODEL_BODY);
      expect(await body('bypass', '404')).toBe(MODEL_BODY);
    }));

  it('over HTTP/2 the same: the model’s 503 and the no-route 404', () =>
    withModule(OVERRIDES, async (gw) => {
      const r = await h2(gw, IRIS, { 'x-status': '503' });
      expect([r.head[':status'], r.head['content-type'], r.head['content-length'], r.body]).toEqual([503, 'text/plain', '15', 'module says 503']);
      const none = await h2(gw, `/seldon/${NS}/nothing-here/`);
      expect([none.head[':status'], none.body]).toEqual([404, '{"error":"no such route"}\n']);
    }));

  it('gRPC: answers are HTTP 200 with a grpc-status, which no override names (as in Envoy): the gateway’s own statuses and messages as ever', () =>
    withModule(OVERRIDES, async (gw) => {
      const ok = await call(gw, 'iris');
      expect(ok.ok && ok.result.response.strData).toBe('from the model');
      const down = await call(gw, 'down');
      expect(!down.ok && [down.error.code, down.error.details]).toEqual([14, 'could not connect to the upstream of models/down/main: connection refused']);
      const none = await call(gw, 'nothing-here');
      expect(!none.ok && [none.error.code, none.error.details]).toEqual([12, expect.stringMatching(/^no route for gRPC \/seldon\.protos\.Seldon\/Predict/) as unknown]);
    }));

  it('a changed file is applied; one with a bad value leaves the one in use, logged and counted; one without the key removes them', () =>
    withModule(OVERRIDES, async (gw, file) => {
      const body = async (): Promise<string> => (await send(gw, IRIS, [['x-status', '503']])).body.toString('latin1');
      expect(await body()).toBe('module says 503');
      replaceFile(file, module('error_response_overrides:\n- on_status_code: 503\n  body: {text_format: "second"}'));
      await waitUntil(async () => (await body()) === 'second');
      replaceFile(file, module('error_response_overrides:\n- on_status_code: 200\n  body: {text_format: "never"}'));
      await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_ambassador_module_reloads_total{result="failure"}')) >= 1);
      expect(await body()).toBe('second');
      replaceFile(file, module('regex_max_size: 200'));
      await waitUntil(async () => (await body()) === MODEL_BODY);
      expect((await send(gw, `/seldon/${NS}/nothing-here/`)).body.toString('latin1')).toMatch(/^\{"status":\{"code":404/);
    }));
});

describe('server_name', () => {
  it.each(['gateway', 'node'] as const)("HTTP/1.1 (--http1-server %s): the model's Server replaced, its body as sent; the gateway's own answers carry it too", (server) =>
    withModule(
      'server_name: seldon-edge',
      async (gw) => {
        const r = await send(gw, IRIS);
        expect(r.status).toBe(200);
        expect(r.body.toString('latin1')).toBe(MODEL_BODY);
        expect(head(r)).toEqual(['content-type: application/json', 'x-model: yes', `content-length: ${MODEL_BODY.length}`, 'server: seldon-edge']);
        // A model that sends no Server of its own: the name after its fields (the lane writes them from the model's bytes).
        const bare = await send(gw, IRIS, [['x-no-server', '1']]);
        expect(head(bare)).toEqual(['content-type: application/json', `content-length: ${MODEL_BODY.length}`, 'server: seldon-edge']);
        expect(bare.body.toString('latin1')).toBe(MODEL_BODY);
        const none = await send(gw, `/seldon/${NS}/nothing-here/`);
        expect(none.status).toBe(404);
        expect(headerValue(none.headers, 'server')).toBe('seldon-edge');
        expect(none.headers.filter(([k]) => k.toLowerCase() === 'server')).toHaveLength(1);
      },
      ['--http1-server', server],
    ),
  );

  it('HTTP/2 REST and gRPC: the model’s answers and the gateway’s own', () =>
    withModule('server_name: seldon-edge', async (gw) => {
      const r = await h2(gw, IRIS);
      expect([r.head[':status'], r.head.server, r.body]).toEqual([200, 'seldon-edge', MODEL_BODY]);
      expect((await h2(gw, `/seldon/${NS}/nothing-here/`)).head.server).toBe('seldon-edge');
      const ok = await call(gw, 'iris');
      expect(ok.ok && [ok.result.response.strData, ok.result.headers.get('server')]).toEqual(['from the model', ['seldon-edge']]);
      const none = await call(gw, 'nothing-here');
      expect(!none.ok && [none.error.code, none.error.metadata.get('server')]).toEqual([12, ['seldon-edge']]);
    }));

  it("a WebSocket upgrade on a Mapping that allows it: the model's 101 with the name, and the gateway's own 503", () =>
    withModule('server_name: seldon-edge', async (gw) => {
      expect(await upgradeHead(gw, 'ws')).toEqual(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', 'X-Model: yes', 'server: seldon-edge']);
      const down = await upgradeHead(gw, 'ws-down');
      expect(down[0]).toBe('HTTP/1.1 503 Service Unavailable');
      expect(down).toContain('server: seldon-edge');
    }));

  it("a changed name is applied to the next answers; a Module without one gives the model's Server back", () =>
    withModule('server_name: seldon-edge', async (gw, file) => {
      const server = async (): Promise<string | undefined> => headerValue((await send(gw, IRIS)).headers, 'server');
      expect(await server()).toBe('seldon-edge');
      replaceFile(file, module('server_name: other-name'));
      await waitUntil(async () => (await server()) === 'other-name');
      const ok = await call(gw, 'iris');
      expect(ok.ok && ok.result.headers.get('server')).toEqual(['other-name']);
      replaceFile(file, module('regex_max_size: 200'));
      await waitUntil(async () => (await server()) === 'model-server/1.0');
      expect(headerValue((await send(gw, `/seldon/${NS}/nothing-here/`)).headers, 'server')).toBeUndefined();
      const back = await call(gw, 'iris');
      expect(back.ok && back.result.headers.get('server')).toEqual(['model-grpc/1.0']);
    }));
});

describe('circuit_breakers', () => {
  /** Sends `n` held requests to `path` and waits until the model has them all: the answers, once released. */
  async function holding(gw: TestGateway, path: string, n: number): Promise<Promise<RawResponse>[]> {
    const before = model.requests.length;
    const answers = Array.from({ length: n }, () => send(gw, path, [['x-hold', '1']]));
    await waitUntil(async () => model.requests.length >= before + n);
    return answers;
  }

  it("max_requests on Seldon's routes without their own, REST and gRPC: the next request is the breaker's 503; a route with breaker annotations keeps its own", () =>
    withModule('circuit_breakers:\n- max_requests: 1', async (gw) => {
      const [first] = await holding(gw, IRIS, 1);
      const over = await send(gw, IRIS);
      expect(over.status).toBe(503);
      expect(headerValue(over.headers, 'x-envoy-overloaded')).toBe('true');
      release();
      expect((await first!).status).toBe(200);
      // seldon.io/ambassador-circuit-breakers-max-requests: 5 is the route's own: two at once reach the model.
      const two = await holding(gw, `/seldon/${NS}/limited/api/v1.0/predictions`, 2);
      release();
      expect((await Promise.all(two)).map((r) => r.status)).toEqual([200, 200]);
      // gRPC: one call held at the model, the next is UNAVAILABLE, overloaded.
      const streams = grpcModel.streams.length;
      const heldCall = call(gw, 'iris', { 'x-hold': '1' });
      await waitUntil(async () => grpcModel.streams.length > streams);
      const refused = await call(gw, 'iris');
      expect(!refused.ok && [refused.error.code, refused.error.metadata.get('x-envoy-overloaded')]).toEqual([14, ['true']]);
      release();
      expect((await heldCall).ok).toBe(true);
    }));

  it('a changed file is applied (the route listing shows the new limits, two requests reach the model at once)', () =>
    withModule('circuit_breakers:\n- max_requests: 1', async (gw, file) => {
      // Its REST and gRPC routes.
      const limits = async (): Promise<number[]> => {
        const table = (await (await fetch(`${gw.adminUrl}/routes`)).json()) as TableJson;
        const members = table.deployments.find((d) => d.name === 'iris')!.routes.flatMap((r) => r.members);
        return members.map((m) => m.circuitBreakers.maxRequests);
      };
      expect(await limits()).toEqual([1, 1]);
      replaceFile(file, module('circuit_breakers:\n- max_requests: 2\n  max_connections: 4'));
      await waitUntil(async () => JSON.stringify(await limits()) === '[2,2]');
      const two = await holding(gw, IRIS, 2);
      release();
      expect((await Promise.all(two)).map((r) => r.status)).toEqual([200, 200]);
    }));
});

describe('defaults', () => {
  const DEFAULTS = 'defaults:\n  httpmapping:\n    add_request_headers: {fruit: orange}\n    remove_request_headers: [x-evil-header]\n  add_response_headers: {x-served: by-default}';
  /** What the model received for the request with `x-case: <id>`, and what the client received. */
  const through = async (gw: TestGateway, target: string, id: string): Promise<{ model: HeaderLine[]; client: RawResponse }> => {
    const client = await send(gw, target, [
      ['x-case', id],
      ['x-evil-header', 'evilness'],
    ]);
    const got = model.byCase(id);
    expect(got).toHaveLength(1);
    return { model: got[0]!.headers, client };
  };

  it("Seldon's route and a custom Mapping take them: fruit orange added, x-evil-header removed, the answer's header added", () =>
    withModule(DEFAULTS, async (gw) => {
      for (const [id, target] of [
        ['seldon', IRIS],
        ['custom', `/seldon/${NS}/plain/`],
      ] as const) {
        const { model: m, client } = await through(gw, target, `defaults-${id}`);
        expect(client.status).toBe(200);
        expect([headerValue(m, 'fruit'), headerValue(m, 'x-evil-header')]).toEqual(['orange', undefined]);
        expect(headerValue(client.headers, 'x-served')).toBe('by-default');
        expect(client.body.toString('latin1')).toBe(MODEL_BODY);
      }
    }));

  it('a changed file is applied (the defaults replaced, then gone); a bad default leaves the Module in use, counted', () =>
    withModule(DEFAULTS, async (gw, file) => {
      const fruit = async (id: string): Promise<string | undefined> => headerValue((await through(gw, IRIS, id)).model, 'fruit');
      expect(await fruit('reload-0')).toBe('orange');
      replaceFile(file, module('defaults:\n  add_request_headers: {fruit: lemon}'));
      let n = 0;
      await waitUntil(async () => (await fruit(`reload-1-${n++}`)) === 'lemon');
      replaceFile(file, module('defaults:\n  add_request_headers: {"bad name": x}'));
      await waitUntil(async () => (await metric(gw.adminUrl, 'seldon_gateway_ambassador_module_reloads_total{result="failure"}')) >= 1);
      expect(await fruit('reload-2')).toBe('lemon');
      replaceFile(file, module('regex_max_size: 200'));
      await waitUntil(async () => (await fruit(`reload-3-${n++}`)) === undefined);
    }));
});

describe('a bad value refuses the Module at start: exit 2, the key named', () => {
  it.each([
    ['error_response_overrides', 'error_response_overrides:\n- on_status_code: 302\n  body: {text_format: x}', 'on_status_code must be a status from 400 to 599'],
    ['load_balancer', 'load_balancer:\n  policy: random', 'load_balancer.policy "random" is not one of'],
    ['circuit_breakers', 'circuit_breakers:\n- max_requests: -1', '[0].max_requests: -1 is not a whole number of at least 0'],
    ['server_name', 'server_name: ""', '"" is not a header value'],
  ])('%s', (key, config, why) => {
    const file = join(dir, `bad-${key}.yaml`);
    writeFileSync(file, module(config));
    const r = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), 'serve', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--ambassador-module', file], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--ambassador-module ${file}: config.${key}: not honoured: `);
    expect(r.stderr).toContain(why);
  });
});
