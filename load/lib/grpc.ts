/**
 * The gRPC benchmark's two ends, written for the benchmark: a seldon.protos.Seldon client (one
 * grpc-js channel each) and a backend that serves Predict alone, echoing the request's data with
 * a `backend` tag and an x-backend header, keeping no record of the calls. The protos are the
 * Seldon copies in test/protos, read as data (as the k6 scripts do).
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ROOT } from './children.js';

const PROTO_DIR = join(ROOT, 'test', 'protos');
const SELDON_SERVICE = 'seldon.protos.Seldon';

/** The SeldonMessage fields the benchmark sends and echoes, as @grpc/proto-loader hands them over. */
export interface SeldonMessage {
  meta?: { puid?: string; tags?: Record<string, { stringValue: string }> } | null;
  data?: { names?: string[]; tensor?: { shape?: number[]; values?: number[] } };
  strData?: string;
  /** Set on decoded messages: which member of the oneof is present. */
  data_oneof?: 'data' | 'binData' | 'strData' | 'jsonData' | 'customData';
}

export interface SeldonClient extends grpc.Client {
  Predict(req: SeldonMessage, metadata: grpc.Metadata, callback: grpc.requestCallback<SeldonMessage>): grpc.ClientUnaryCall;
}

let seldon: grpc.ServiceDefinition | undefined;

/** seldon.protos.Seldon, loaded once (same loader options as the gateway's tests: keepCase, oneofs). */
function seldonService(): grpc.ServiceDefinition {
  if (seldon) return seldon;
  const def = protoLoader.loadSync(['seldon.proto'], { includeDirs: [PROTO_DIR], keepCase: true, defaults: true, oneofs: true, longs: Number });
  const s = def[SELDON_SERVICE];
  // Message entries carry `format`; services are plain maps of method definitions.
  if (!s || 'format' in s) throw new Error(`${SELDON_SERVICE} is not a service in ${PROTO_DIR}`);
  seldon = s as grpc.ServiceDefinition;
  return seldon;
}

/** Serve seldon.protos.Seldon/Predict on 127.0.0.1 (port 0: any free one). */
export async function startBenchBackend(name: string, port = 0): Promise<{ readonly port: number; close(): void }> {
  const server = new grpc.Server();
  const header = new grpc.Metadata();
  header.set('x-backend', name);
  const tags = { backend: { stringValue: name } };
  const predict: grpc.handleUnaryCall<SeldonMessage, SeldonMessage> = (call, callback) => {
    const req = call.request;
    const out: SeldonMessage = { meta: { puid: req.meta?.puid ?? '', tags } };
    if (req.data_oneof === 'data') out.data = req.data;
    else if (req.data_oneof === 'strData') out.strData = req.strData;
    call.sendMetadata(header.clone());
    callback(null, out);
  };
  server.addService(seldonService(), { Predict: predict });
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port: bound, close: () => server.forceShutdown() };
}

/** A Predict the benchmarks send: the four iris features as a tensor. */
export const PREDICT_REQUEST: SeldonMessage = { data: { names: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'], tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } };

/** `seldon: <deployment>` and `namespace: <namespace>`: what routes a gRPC call through the gateway. */
export function routeMetadata(deployment: string, namespace: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('seldon', deployment);
  m.set('namespace', namespace);
  return m;
}

/** `n` Seldon clients (h2c) to 127.0.0.1:`port`, each on a subchannel pool of its own: n real TCP connections, not one shared. */
export function connect(port: number, n: number): SeldonClient[] {
  const Ctor = grpc.makeGenericClientConstructor(seldonService(), SELDON_SERVICE);
  return Array.from(
    { length: n },
    (_, i) => new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.bench_channel': i }) as unknown as SeldonClient,
  );
}

export interface CallsResult {
  readonly calls: number;
  readonly errors: number;
  readonly seconds: number;
  /** Each answered call's latency, ms. */
  readonly latenciesMs: Float64Array;
}

/** `loops` call loops (closed: each sends its next call when the last is answered) spread over `clients`, until `seconds` pass or `maxCalls` are answered. */
export async function callLoops(clients: readonly SeldonClient[], metadata: grpc.Metadata, loops: number, seconds: number, maxCalls = 2_000_000): Promise<CallsResult> {
  const latencies = new Float64Array(maxCalls);
  let calls = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const loop = (c: SeldonClient): Promise<void> =>
    new Promise((resolve) => {
      const once = (): void => {
        if (calls >= maxCalls || performance.now() >= end) return resolve();
        const t0 = performance.now();
        c.Predict(PREDICT_REQUEST, metadata, (err) => {
          if (err) errors++;
          else if (calls < maxCalls) latencies[calls++] = performance.now() - t0;
          once();
        });
      };
      once();
    });
  await Promise.all(Array.from({ length: loops }, (_, i) => loop(clients[i % clients.length]!)));
  return { calls, errors, seconds: (performance.now() - start) / 1000, latenciesMs: latencies.subarray(0, calls) };
}

/**
 * A Predict request carrying a tensor of about `bytes` (doubles, `bytes / 8` of them) as it goes on the wire: the
 * 5-byte gRPC prefix, then the protobuf. What the large scenario's h2load sends; the backend echoes the tensor.
 */
export function predictFrame(bytes: number): Buffer {
  const values = Array.from({ length: Math.floor(bytes / 8) }, (_, i) => (i % 1000) / 1000);
  const message = seldonService().Predict!.requestSerialize({ data: { names: ['t'], tensor: { shape: [1, values.length], values } } });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}
