// The quick start's model server: answers the Seldon REST protocol the way Seldon's mock
// classifier (seldonio/mock_classifier, an iris-style SKLearn demo) does behind its Python wrapper,
// plus the v2 inference protocol. It exists so a person can run the gateway without a cluster:
//
//   node dist/examples/mock-model.js --port 9001 --name iris-main
//
// Every answer carries `x-seldon-model: <name>`, so curl -i shows which predictor answered.
// node:http only; the body is parsed here because this *is* the model, not the gateway.
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface MockModelOptions {
  port?: number;
  name?: string;
  host?: string;
}

export interface MockModel {
  name: string;
  port: number;
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const IMAGE = 'seldonio/mock_classifier:1.0';
const MAX_BODY = 16 * 1024 * 1024;

/** The Python wrapper's 400 for input it cannot use. */
class BadData extends Error {}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deterministic stand-in for the classifier: a logistic function of the row's sum. */
export function probability(row: number[]): number {
  const sum = row.reduce((a, b) => a + b, 0);
  return 1 / (1 + Math.exp(-0.1 * sum));
}

function numbersIn(v: Json): number[] {
  if (typeof v === 'number') return [v];
  if (typeof v === 'boolean') return [v ? 1 : 0];
  if (typeof v === 'string')
    return v
      .split(/[\s,]+/)
      .map(Number)
      .filter(Number.isFinite);
  if (Array.isArray(v)) return v.flatMap(numbersIn);
  if (isObject(v)) return Object.values(v).flatMap(numbersIn);
  return [];
}

/** A list of rows: a 2-D array gives one row per element, anything else is a single row. */
function rowsOf(v: Json): number[][] {
  if (Array.isArray(v) && v.length > 0 && v.every(Array.isArray)) return v.map(numbersIn);
  return [numbersIn(v)];
}

/** Rows from a SeldonMessage body: data.ndarray, data.tensor, jsonData or strData. */
function seldonRows(msg: Json): number[][] {
  if (!isObject(msg)) throw new BadData('Request must be a JSON object');
  const data = msg['data'];
  if (isObject(data)) {
    const ndarray = data['ndarray'];
    if (ndarray !== undefined) return rowsOf(ndarray);
    const tensor = data['tensor'];
    if (isObject(tensor)) {
      const values = numbersIn(tensor['values'] ?? []);
      const shape = Array.isArray(tensor['shape']) ? numbersIn(tensor['shape']) : [];
      const rows = shape.length > 1 && shape[0] ? shape[0] : 1;
      const width = Math.ceil(values.length / rows);
      return Array.from({ length: rows }, (_, i) => values.slice(i * width, (i + 1) * width));
    }
    throw new BadData('data must contain ndarray or tensor');
  }
  if (msg['jsonData'] !== undefined) return rowsOf(msg['jsonData']);
  if (typeof msg['strData'] === 'string') return [numbersIn(msg['strData'])];
  throw new BadData('Request must contain data, jsonData or strData');
}

/** Rows from a v2 request: the first input's data, split by its shape's first dimension. */
function v2Rows(body: Json): number[][] {
  if (!isObject(body) || !Array.isArray(body['inputs'])) throw new BadData('request must have inputs');
  const first = body['inputs'][0];
  if (!isObject(first)) throw new BadData('inputs[0] must be an object');
  const values = numbersIn(first['data'] ?? []);
  const shape = Array.isArray(first['shape']) ? numbersIn(first['shape']) : [];
  const rows = shape.length > 1 && shape[0] ? shape[0] : 1;
  const width = Math.ceil(values.length / rows);
  return Array.from({ length: rows }, (_, i) => values.slice(i * width, (i + 1) * width));
}

function modelMetadata(name: string): JsonObject {
  return {
    name,
    versions: ['1.0'],
    platform: 'seldon',
    inputs: [{ messagetype: 'ndarray', schema: { names: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'], shape: [4] } }],
    outputs: [{ messagetype: 'ndarray', schema: { names: ['proba'], shape: [1] } }],
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const chunk = c as Buffer;
    size += chunk.length;
    if (size > MAX_BODY) throw new BadData(`body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage): Promise<Json> {
  const text = await readBody(req);
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new BadData(`Invalid JSON: ${(e as Error).message}`);
  }
}

export async function startMockModel(opts: MockModelOptions = {}): Promise<MockModel> {
  const name = opts.name ?? 'mock-model';
  const host = opts.host ?? '127.0.0.1';

  const send = (res: ServerResponse, status: number, body: Json | string): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  };
  const seldonBadData = (res: ServerResponse, info: string): void => send(res, 400, { status: { status: 1, info, code: -1, reason: 'MICROSERVICE_BAD_DATA' } });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://model').pathname;
    const method = req.method ?? 'GET';
    res.setHeader('x-seldon-model', name);

    if (method === 'OPTIONS') {
      // The upstream answers CORS preflights (the gateway adds no CORS of its own).
      res.writeHead(200, {
        'access-control-allow-origin': req.headers.origin ?? '*',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type',
      });
      res.end();
      return;
    }

    // Seldon protocol (v0.1 and v1.0 paths are the same API).
    const seldon = /^\/api\/v[01]\.[01]\/(predictions|feedback|explain|metadata(?:\/[^/]+)?)\/?$/.exec(path);
    if (seldon) {
      const op = seldon[1] ?? '';
      if (op.startsWith('metadata') && method === 'GET') {
        const model = op.split('/')[1];
        if (model) return send(res, 200, modelMetadata(model));
        return send(res, 200, {
          name,
          models: { [name]: modelMetadata(name) },
          graphinputs: modelMetadata(name)['inputs'] ?? [],
          graphoutputs: modelMetadata(name)['outputs'] ?? [],
        });
      }
      if (method !== 'POST') return send(res, 405, { status: { code: 405, info: `${method} not allowed`, status: 'FAILURE' } });
      try {
        const body = await readJson(req);
        if (op === 'feedback') return send(res, 200, { data: { ndarray: [] }, meta: {} });
        const rows = seldonRows(body);
        if (op === 'explain') {
          return send(res, 200, {
            meta: { name: 'AnchorTabular', requestPath: { [name]: IMAGE } },
            data: {
              anchor: ['petal_width > 1.80'],
              precision: 0.97,
              coverage: 0.31,
              raw: { prediction: rows.map((r) => (probability(r) > 0.5 ? 1 : 0)) },
            },
          });
        }
        return send(res, 200, {
          data: { names: ['proba'], ndarray: rows.map((r) => [probability(r)]) },
          meta: { requestPath: { [name]: IMAGE } },
        });
      } catch (e) {
        if (e instanceof BadData) return seldonBadData(res, e.message);
        throw e;
      }
    }

    // v2 (KServe / MLServer) protocol.
    const infer = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?\/infer$/.exec(path);
    if (infer && method === 'POST') {
      const model = decodeURIComponent(infer[1] ?? '');
      try {
        const body = await readJson(req);
        const rows = v2Rows(body);
        const id = isObject(body) && typeof body['id'] === 'string' ? body['id'] : '';
        return send(res, 200, {
          model_name: model,
          model_version: '1',
          id,
          parameters: { served_by: name },
          outputs: [{ name: 'proba', shape: [rows.length, 1], datatype: 'FP64', data: rows.map(probability) }],
        });
      } catch (e) {
        if (e instanceof BadData) return send(res, 400, { error: e.message });
        throw e;
      }
    }
    if (method === 'GET') {
      if (path === '/v2/health/ready' || path === '/v2/health/live') return send(res, 200, {});
      const v2model = /^\/v2\/models\/([^/]+)(\/ready)?$/.exec(path);
      if (v2model) {
        const model = decodeURIComponent(v2model[1] ?? '');
        if (v2model[2]) return send(res, 200, {});
        return send(res, 200, {
          name: model,
          versions: ['1'],
          platform: 'seldon-gateway-mock',
          inputs: [{ name: 'input-0', datatype: 'FP64', shape: [-1, 4] }],
          outputs: [{ name: 'proba', datatype: 'FP64', shape: [-1, 1] }],
        });
      }
      // The Python wrapper answers its liveness probe with a bare "pong".
      if (path === '/health/ping') return send(res, 200, 'pong');
      if (path === '/health/status' || path === '/api/v1.0/health/status') return send(res, 200, { status: 'ok', model: name });
      if (path === '/ready') return send(res, 200, { ready: true });
      if (path === '/live') return send(res, 200, { live: true });
    }
    send(res, 404, { status: { code: 404, info: `no route for ${method} ${path}`, status: 'FAILURE' } });
  };

  const server = http.createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { status: { code: 500, info: String(e), status: 'FAILURE' } });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    url: `http://${host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parseArgs(argv: string[]): MockModelOptions {
  const opts: MockModelOptions = { port: 9000 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] ?? '').split('=', 2);
    const value = (): string => inline ?? argv[++i] ?? '';
    if (flag === '--port') opts.port = Number(value());
    else if (flag === '--name') opts.name = value();
    else if (flag === '--host') opts.host = value();
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: mock-model [--port 9000] [--name mock-model] [--host 127.0.0.1]');
      process.exit(0);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!Number.isInteger(opts.port) || (opts.port ?? -1) < 0) throw new Error('--port must be a number');
  return opts;
}

// Run as a script (node dist/examples/mock-model.js), not when imported by tests.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let opts: MockModelOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`mock-model: ${(e as Error).message}`);
    process.exit(2);
  }
  const model = await startMockModel(opts);
  console.log(`mock model ${model.name} listening on ${model.url}`);
  const stop = (): void => {
    void model.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
