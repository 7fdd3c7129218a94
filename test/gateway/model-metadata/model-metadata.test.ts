/**
 * A v2 model's metadata, fetched beside translated traffic (docs/protocol-translation.md#the-models-metadata),
 * over real sockets: a real gateway whose cache runs on a test clock, a v2 model stand-in on
 * `node:http` serving `GET /v2/models/<m>` as each test says and recording every inference, a gRPC
 * one (@grpc/grpc-js) serving `ModelMetadata` and `ModelInfer`, raw HTTP/1.1 and @grpc/grpc-js clients.
 *
 * - the attacker's first: a 100 MB metadata answer (said, or chunked) is cut after a few of its bytes, a
 *   deeply nested one ignored; the requests beside them go by their values, unhindered;
 * - metadata declaring FP32: the translated request carries FP32 and the declared input's name (REST and gRPC);
 * - the metadata changes: picked up after the refresh (the test clock moves), not before;
 * - metadata slow, 500 or garbage: requests never wait, go by their values; a failure is logged once and retried after a backoff;
 * - the deployment gone: its model's entry goes with it (back again, it is fetched afresh).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../../fixtures/recording-upstream.js';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { TestClock } from '../../helpers/clock.js';
import { LogCapture } from '../../helpers/observability.js';

const PROTOCOL = 'seldon.io/gateway-protocol';
const MB = 1024 * 1024;

/** How the stand-in answers one model's metadata. */
type Meta = { kind: 'json'; body: string } | { kind: 'status'; code: number } | { kind: 'hang' } | { kind: 'huge'; said: boolean };

const declares = (name: string, datatype: string): Meta => ({
  kind: 'json',
  body: JSON.stringify({ name: 'm', versions: [], platform: 'mlserver', inputs: [{ name, datatype, shape: [-1, 2] }], outputs: [] }),
});

interface V2Stub {
  readonly port: number;
  /** Each model's metadata answer (a version's: `<model>/<version>`). */
  readonly meta: Map<string, Meta>;
  /** Metadata requests per model (a version's: `<model>/<version>`). */
  readonly asked: Map<string, number>;
  /** Inference bodies per model (a version's: `<model>/<version>`), as received. */
  readonly inferred: Map<string, Record<string, unknown>[]>;
  /** Bytes of a huge answer written before the gateway let go, and whether its connection closed. */
  readonly huge: { written: number; closed: boolean }[];
  close(): Promise<void>;
}

/** A v2 model stand-in: metadata as `meta` says, inference answered with its input echoed as `output-0`. */
async function startV2Stub(): Promise<V2Stub> {
  const meta = new Map<string, Meta>();
  const asked = new Map<string, number>();
  const inferred = new Map<string, Record<string, unknown>[]>();
  const huge: { written: number; closed: boolean }[] = [];
  const hanging: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/infer)?$/.exec(req.url ?? '');
    if (m === null) return void res.writeHead(404).end();
    const model = m[2] === undefined ? m[1]! : `${m[1]}/${m[2]}`;
    if (m[3] !== undefined) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { id?: string; inputs: Record<string, unknown>[] };
        inferred.set(model, [...(inferred.get(model) ?? []), body]);
        const out = { model_name: m[1], outputs: [{ ...body.inputs[0], name: 'output-0' }] };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
      });
      return;
    }
    asked.set(model, (asked.get(model) ?? 0) + 1);
    req.resume();
    const a = meta.get(model) ?? { kind: 'status', code: 404 };
    if (a.kind === 'json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(a.body);
    if (a.kind === 'status') return void res.writeHead(a.code, { 'content-type': 'application/json' }).end('{"error":"no"}');
    if (a.kind === 'hang') return void hanging.push(res);
    // 100 MB, written only as fast as the gateway reads it: what it took before letting go is counted.
    const record = { written: 0, closed: false };
    huge.push(record);
    res.writeHead(200, a.said ? { 'content-type': 'application/json', 'content-length': String(100 * MB) } : { 'content-type': 'application/json' });
    // `{`, then spaces: valid JSON's start, never its end.
    const spaces = Buffer.alloc(64 * 1024, 0x20);
    res.socket!.once('close', () => (record.closed = true));
    res.write('{');
    const pump = (): void => {
      while (!record.closed && record.written < 100 * MB) {
        record.written += spaces.length;
        if (!res.write(spaces)) return void res.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    meta,
    asked,
    inferred,
    huge,
    close: () =>
      new Promise<void>((r) => {
        for (const h of hanging) h.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function predict(port: number, name: string, body: string): Promise<{ status: number; body: string }> {
  const { res, x } = await rawRequest(port, {
    method: 'POST',
    target: `/seldon/m/${name}/api/v1.0/predictions`,
    headers: [
      ['Host', 'gw'],
      ['Content-Type', 'application/json'],
    ],
    body: Buffer.from(body),
  });
  x.socket.destroy();
  expect(res, 'an answer').not.toBeNull();
  return { status: res!.status, body: res!.body.toString() };
}

// gRPC: messages decoded as on the wire (int64 as strings).
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const seldonSvc = defs['seldon.protos.Seldon'] as unknown as Record<string, Method>;
const v2Svc = defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>;

describe('a v2 model’s metadata, fetched beside translated traffic', () => {
  let stub: V2Stub;
  let gw: TestGateway;
  const clock = new TestClock();
  const logs = new LogCapture();
  // gRPC's model: its metadata says `grpcDeclared`; what ModelMetadata and ModelInfer received is kept.
  let grpcServer: grpc.Server;
  let grpcDeclared = 'FP32';
  const grpcAsked: Msg[] = [];
  const grpcInferred: Msg[] = [];
  let client: grpc.Client;

  const deployments: Record<string, string> = {
    fp32: 'fp32',
    refresh: 'refresh',
    gone: 'gone',
    slow: 'slow',
    failing: 'failing',
    garbage: 'garbage',
    nested: 'nested',
    huge: 'huge',
    chunked: 'chunked',
    grpcfp32: 'grpcfp32',
    versioned: 'versioned',
    grpcversioned: 'grpcversioned',
    plain: 'plain',
  };
  /** The annotation of each deployment: the versioned ones ask version 2. */
  const annotation = (name: string): Record<string, string> | undefined => (name === 'plain' ? undefined : { [PROTOCOL]: name.endsWith('versioned') ? 'modelVersion: 2' : '{}' });
  const manifest = (name: string, annotations = annotation(name)): string => sdep(name, 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name } }] }, annotations);

  beforeAll(async () => {
    stub = await startV2Stub();
    grpcServer = new grpc.Server();
    grpcServer.addService(v2Svc as unknown as grpc.ServiceDefinition, {
      ModelMetadata: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        grpcAsked.push(call.request);
        // A version asked: its own declaration (INT32), the model's otherwise.
        const datatype = call.request.version === undefined ? grpcDeclared : 'INT32';
        cb(null, { name: call.request.name, platform: 'mlserver', inputs: [{ name: 'features', datatype, shape: ['-1', '2'] }] });
      },
      ModelInfer: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        grpcInferred.push(call.request);
        const inputs = (call.request.inputs as Msg[] | undefined) ?? [];
        cb(null, { model_name: call.request.model_name, outputs: inputs.map((i) => ({ ...i, name: 'output-0' })) });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    gw = await startTestGateway({
      manifests: Object.fromEntries(Object.keys(deployments).map((d) => [`${d}.yaml`, manifest(d)])),
      resolve: Object.fromEntries(Object.keys(deployments).flatMap((d) => [[`${d}-main.m:8000`, stub.port] as const, [`${d}-main.m:5001`, grpcPort] as const])),
      now: clock.now,
      logger: pino({ level: 'warn' }, logs),
    });
    client = new grpc.Client(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await gw?.stop();
    grpcServer?.forceShutdown();
    await stub?.close();
  });

  const TENSOR = '{"data":{"tensor":{"shape":[1,2],"values":[0.5,1.25]}}}';
  const lastInput = (model: string): Record<string, unknown> => (stub.inferred.get(model)!.at(-1)!.inputs as Record<string, unknown>[])[0]!;
  /** Requests until the model receives `datatype` (the metadata's answer taken): the fetch runs beside them, so a few may go before it. */
  async function untilDatatype(model: string, datatype: string, deployment = model, body = TENSOR): Promise<void> {
    for (let i = 0; i < 200; i++) {
      expect((await predict(gw.port, deployment, body)).status).toBe(200);
      if (lastInput(model).datatype === datatype) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`${model} never received ${datatype}`);
  }

  describe('the attacker’s answers first', () => {
    it('a metadata answer that says it is 100 MB is cut at its head: a few of its bytes written, its connection closed; requests go by their values', async () => {
      stub.meta.set('huge', { kind: 'huge', said: true });
      expect((await predict(gw.port, 'huge', TENSOR)).status).toBe(200);
      await waitFor(() => stub.huge.length === 1 && stub.huge[0]!.closed);
      // Socket buffers on both sides hold a few MB at most: nothing near 100 MB was taken.
      expect(stub.huge[0]!.written).toBeLessThan(16 * MB);
      expect(lastInput('huge')).toEqual({ name: 'input-0', shape: [1, 2], datatype: 'FP64', data: [0.5, 1.25] });
      await waitFor(() => logs.text.includes('"model":"huge"'));
      expect(logs.lines().find((l) => l.model === 'huge')!.reason).toMatch(/more than 65536/);
      expect((await predict(gw.port, 'huge', TENSOR)).status).toBe(200);
      expect(lastInput('huge').datatype).toBe('FP64');
    });

    it('a chunked metadata answer that runs on is cut once it passes 64 KiB, never buffered whole', async () => {
      stub.meta.set('chunked', { kind: 'huge', said: false });
      const before = stub.huge.length;
      expect((await predict(gw.port, 'chunked', TENSOR)).status).toBe(200);
      await waitFor(() => stub.huge.length === before + 1 && stub.huge[before]!.closed);
      expect(stub.huge[before]!.written).toBeLessThan(16 * MB);
      await waitFor(() => logs.text.includes('"model":"chunked"'));
      expect(logs.lines().find((l) => l.model === 'chunked')!.reason).toMatch(/more than 65536 bytes/);
      expect(lastInput('chunked').datatype).toBe('FP64');
    });

    it('a deeply nested metadata answer is ignored with a reason; the requests go by their values', async () => {
      const depth = 30_000;
      stub.meta.set('nested', { kind: 'json', body: `{"inputs":${'['.repeat(depth)}${']'.repeat(depth)}}` });
      expect((await predict(gw.port, 'nested', TENSOR)).status).toBe(200);
      await waitFor(() => logs.text.includes('"model":"nested"'));
      expect(logs.lines().find((l) => l.model === 'nested')!.reason).toMatch(/inputs\[0\] has no name|not JSON/);
      expect((await predict(gw.port, 'nested', TENSOR)).status).toBe(200);
      expect(lastInput('nested')).toEqual({ name: 'input-0', shape: [1, 2], datatype: 'FP64', data: [0.5, 1.25] });
    });
  });

  it('a v2 deployment without the annotation: its requests go as they came, and its metadata is never asked', async () => {
    stub.meta.set('plain', declares('features', 'FP32'));
    const sent = '{"inputs":[{"name":"z","shape":[2],"datatype":"INT64","data":[1,2]}]}';
    const { res, x } = await rawRequest(gw.port, {
      method: 'POST',
      target: '/seldon/m/plain/v2/models/plain/infer',
      headers: [
        ['Host', 'gw'],
        ['Content-Type', 'application/json'],
      ],
      body: Buffer.from(sent),
    });
    x.socket.destroy();
    expect(res!.status).toBe(200);
    expect(stub.inferred.get('plain')).toEqual([JSON.parse(sent)]);
    expect(stub.asked.get('plain')).toBeUndefined();
  });

  it('metadata declaring FP32: the first request goes by its values (the fetch runs beside it), the next carry FP32 and the declared name', async () => {
    stub.meta.set('fp32', declares('features', 'FP32'));
    expect((await predict(gw.port, 'fp32', TENSOR)).status).toBe(200);
    expect(lastInput('fp32')).toEqual({ name: 'input-0', shape: [1, 2], datatype: 'FP64', data: [0.5, 1.25] });
    await untilDatatype('fp32', 'FP32');
    expect(lastInput('fp32')).toEqual({ name: 'features', shape: [1, 2], datatype: 'FP32', data: [0.5, 1.25] });
    // Whole numbers, declared FP32: FP32 too (by their values they would be INT64).
    const res = await predict(gw.port, 'fp32', '{"data":{"ndarray":[[1,2]]}}');
    expect(res.status).toBe(200);
    expect(lastInput('fp32')).toEqual({ name: 'features', shape: [1, 2], datatype: 'FP32', data: [1, 2] });
    expect(stub.asked.get('fp32')).toBe(1);
  });

  it('the metadata changes: the old answer holds until the refresh, then the new one is taken', async () => {
    stub.meta.set('refresh', declares('x', 'FP32'));
    await untilDatatype('refresh', 'FP32');
    stub.meta.set('refresh', declares('y', 'FP64'));
    expect((await predict(gw.port, 'refresh', TENSOR)).status).toBe(200);
    expect(lastInput('refresh')).toMatchObject({ name: 'x', datatype: 'FP32' });
    expect(stub.asked.get('refresh')).toBe(1);
    clock.advance(61_000);
    await untilDatatype('refresh', 'FP64');
    expect(lastInput('refresh')).toMatchObject({ name: 'y', datatype: 'FP64' });
    expect(stub.asked.get('refresh')).toBe(2);
  });

  it('metadata that never answers: requests never wait for it, and go by their values', async () => {
    stub.meta.set('slow', { kind: 'hang' });
    for (let i = 0; i < 3; i++) {
      expect((await predict(gw.port, 'slow', TENSOR)).status).toBe(200);
      expect(lastInput('slow').datatype).toBe('FP64');
    }
    await waitFor(() => stub.asked.get('slow') === 1);
  });

  it('metadata answering 500: requests go by their values; logged once, retried after a backoff, not before', async () => {
    stub.meta.set('failing', { kind: 'status', code: 500 });
    expect((await predict(gw.port, 'failing', TENSOR)).status).toBe(200);
    await waitFor(() => logs.text.includes('"model":"failing"'));
    expect((await predict(gw.port, 'failing', TENSOR)).status).toBe(200);
    expect(stub.asked.get('failing')).toBe(1);
    clock.advance(1_100);
    expect((await predict(gw.port, 'failing', TENSOR)).status).toBe(200);
    await waitFor(() => stub.asked.get('failing') === 2);
    expect(lastInput('failing').datatype).toBe('FP64');
    // The second failure's backoff is longer (2 s): 1.1 s on, not yet.
    clock.advance(1_100);
    await new Promise((r) => setImmediate(r));
    expect((await predict(gw.port, 'failing', TENSOR)).status).toBe(200);
    expect(stub.asked.get('failing')).toBe(2);
    expect(logs.lines().filter((l) => l.model === 'failing')).toHaveLength(1);
    expect(logs.lines().find((l) => l.model === 'failing')!.reason).toBe('it answered 500');
  });

  it('metadata that is not JSON: ignored with a reason; requests go by their values', async () => {
    stub.meta.set('garbage', { kind: 'json', body: '<html>oops' });
    expect((await predict(gw.port, 'garbage', TENSOR)).status).toBe(200);
    await waitFor(() => logs.text.includes('"model":"garbage"'));
    expect(logs.lines().find((l) => l.model === 'garbage')!.reason).toMatch(/not JSON/);
    expect((await predict(gw.port, 'garbage', TENSOR)).status).toBe(200);
    expect(lastInput('garbage').datatype).toBe('FP64');
  });

  it('the deployment gone: its model’s entry goes with it; back again, its metadata is fetched afresh', async () => {
    stub.meta.set('gone', declares('g', 'FP32'));
    await untilDatatype('gone', 'FP32');
    expect(stub.asked.get('gone')).toBe(1);
    await gw.write('gone.yaml', sdep('other', 'm', { predictors: [{ name: 'main' }] }));
    stub.meta.set('gone', declares('g', 'INT32'));
    await gw.write('gone.yaml', manifest('gone'));
    // No refresh is due (the clock did not move): only a forgotten entry is fetched again, and its first request goes by its values.
    expect((await predict(gw.port, 'gone', '{"data":{"ndarray":[[1,2]]}}')).status).toBe(200);
    expect(lastInput('gone')).toEqual({ name: 'input-0', shape: [1, 2], datatype: 'INT64', data: [1, 2] });
    await waitFor(() => stub.asked.get('gone') === 2);
  });

  it('gRPC: ModelMetadata is asked over gRPC; declaring FP32, the ModelInfer carries FP32 in fp32_contents and the declared name', async () => {
    const call = (): Promise<Msg> =>
      new Promise((resolve, reject) => {
        const md = new grpc.Metadata();
        md.set('seldon', 'grpcfp32');
        md.set('namespace', 'm');
        client.makeUnaryRequest(
          '/seldon.protos.Seldon/Predict',
          (b: Buffer) => b,
          (b: Buffer) => seldonSvc.Predict!.responseDeserialize(b),
          seldonSvc.Predict!.requestSerialize({ data: { tensor: { shape: [1, 2], values: [0.5, 1.25] } } }),
          md,
          (err, res) => (err ? reject(err) : resolve(res!)),
        );
      });
    expect(await call()).toEqual({ meta: {}, data: { names: ['t:0', 't:1'], tensor: { shape: [1, 2], values: [0.5, 1.25] } } });
    expect(grpcInferred.at(-1)!.inputs).toEqual([{ name: 'input-0', datatype: 'FP64', shape: ['1', '2'], contents: { fp64_contents: [0.5, 1.25] } }]);
    let got: Msg[] = [];
    for (let i = 0; i < 200 && got.length === 0; i++) {
      await call();
      if ((grpcInferred.at(-1)!.inputs as Msg[])[0]!.datatype === 'FP32') got = grpcInferred.at(-1)!.inputs as Msg[];
      else await new Promise((r) => setTimeout(r, 10));
    }
    expect(got).toEqual([{ name: 'features', datatype: 'FP32', shape: ['1', '2'], contents: { fp32_contents: [0.5, 1.25] } }]);
    expect(grpcAsked).toEqual([{ name: 'grpcfp32' }]);
    grpcDeclared = 'FP64';
  });

  it('a version named (modelVersion): the model is asked /versions/<v>/infer, typed by that version’s metadata, never the model’s; another version forgets the last one’s', async () => {
    // The model's own metadata says otherwise: only the version's may type its requests.
    stub.meta.set('versioned', declares('other', 'FP64'));
    stub.meta.set('versioned/2', declares('features', 'FP32'));
    stub.meta.set('versioned/3', declares('features', 'INT32'));
    expect((await predict(gw.port, 'versioned', TENSOR)).status).toBe(200);
    expect(stub.inferred.get('versioned')).toBeUndefined();
    const v2 = (): Record<string, unknown> => (stub.inferred.get('versioned/2')!.at(-1)!.inputs as Record<string, unknown>[])[0]!;
    expect(v2()).toEqual({ name: 'input-0', shape: [1, 2], datatype: 'FP64', data: [0.5, 1.25] });
    await untilDatatype('versioned/2', 'FP32', 'versioned');
    expect(v2()).toEqual({ name: 'features', shape: [1, 2], datatype: 'FP32', data: [0.5, 1.25] });
    expect(stub.asked.get('versioned/2')).toBe(1);
    expect(stub.asked.get('versioned')).toBeUndefined();

    // Version 3 now: its own metadata, fetched afresh; back to 2, version 2's entry was forgotten at the change, fetched again though no refresh is due.
    await gw.write('versioned.yaml', manifest('versioned', { [PROTOCOL]: 'modelVersion: "3"' }));
    await untilDatatype('versioned/3', 'INT32', 'versioned', '{"data":{"ndarray":[[1,2]]}}');
    expect(stub.asked.get('versioned/3')).toBe(1);
    await gw.write('versioned.yaml', manifest('versioned'));
    expect((await predict(gw.port, 'versioned', '{"data":{"ndarray":[[1,2]]}}')).status).toBe(200);
    expect(v2()).toEqual({ name: 'input-0', shape: [1, 2], datatype: 'INT64', data: [1, 2] });
    await waitFor(() => stub.asked.get('versioned/2') === 2);
    expect(stub.asked.get('versioned')).toBeUndefined();
  });

  it('gRPC, a version named: ModelInfer carries model_version, ModelMetadata asks that version, whose declaration types the input', async () => {
    const call = (): Promise<Msg> =>
      new Promise((resolve, reject) => {
        const md = new grpc.Metadata();
        md.set('seldon', 'grpcversioned');
        md.set('namespace', 'm');
        client.makeUnaryRequest(
          '/seldon.protos.Seldon/Predict',
          (b: Buffer) => b,
          (b: Buffer) => seldonSvc.Predict!.responseDeserialize(b),
          seldonSvc.Predict!.requestSerialize({ data: { tensor: { shape: [1, 2], values: [3, 4] } } }),
          md,
          (err, res) => (err ? reject(err) : resolve(res!)),
        );
      });
    let last: Msg | undefined;
    for (let i = 0; i < 200; i++) {
      expect(await call()).toEqual({ meta: {}, data: { names: ['t:0', 't:1'], tensor: { shape: [1, 2], values: [3, 4] } } });
      last = grpcInferred.at(-1)!;
      expect(last.model_name).toBe('grpcversioned');
      expect(last.model_version).toBe('2');
      if ((last.inputs as Msg[])[0]!.datatype === 'INT32') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(last!.inputs).toEqual([{ name: 'features', datatype: 'INT32', shape: ['1', '2'], contents: { int_contents: [3, 4] } }]);
    expect(grpcAsked.filter((r) => r.name === 'grpcversioned')).toEqual([{ name: 'grpcversioned', version: '2' }]);
  });
});
