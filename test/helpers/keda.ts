/**
 * KEDA's side of the external scaler, for tests: a client over the vendored proto with
 * @grpc/grpc-js (as KEDA's Go client speaks it), and a flow demand source a test sets by hand
 * (the input the demand reporters read, in place of a data plane's flow controller).
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { FlowDemandSource, PredictorDemand } from '../../gateway/flow/demand.js';

const PROTO = fileURLToPath(new URL('../../gateway/keda/externalscaler.proto', import.meta.url));

export interface ScaledObjectRef {
  name: string;
  namespace: string;
  scalerMetadata: Record<string, string>;
}
export interface MetricSpec {
  metricName: string;
  targetSize: number;
  targetSizeFloat: number;
}
export interface MetricValue {
  metricName: string;
  metricValue: number;
  metricValueFloat: number;
}

type Unary<Req, Res> = (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
interface RawClient extends grpc.Client {
  IsActive: Unary<ScaledObjectRef, { result: boolean }>;
  GetMetricSpec: Unary<ScaledObjectRef, { metricSpecs: MetricSpec[] }>;
  GetMetrics: Unary<{ scaledObjectRef: ScaledObjectRef; metricName: string }, { metricValues: MetricValue[] }>;
  StreamIsActive(req: ScaledObjectRef): grpc.ClientReadableStream<{ result: boolean }>;
}

const promised =
  <Req, Res>(call: Unary<Req, Res>, self: grpc.Client) =>
  (req: Req): Promise<Res> =>
    new Promise((resolve, reject) => call.call(self, req, (err, res) => (err ? reject(err) : resolve(res))));

export interface KedaClient {
  isActive(ref: ScaledObjectRef): Promise<boolean>;
  metricSpec(ref: ScaledObjectRef): Promise<MetricSpec[]>;
  metrics(ref: ScaledObjectRef, metricName?: string): Promise<MetricValue[]>;
  /** StreamIsActive: every value the scaler sends, with when it arrived. */
  streamIsActive(ref: ScaledObjectRef): { values: { result: boolean; at: number }[]; error: Promise<grpc.ServiceError | undefined>; cancel(): void };
  close(): void;
}

export function kedaClient(port: number): KedaClient {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { externalscaler: { ExternalScaler: grpc.ServiceClientConstructor } };
  const client = new pkg.externalscaler.ExternalScaler(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as RawClient;
  return {
    isActive: async (ref) => (await promised(client.IsActive, client)(ref)).result,
    metricSpec: async (ref) => (await promised(client.GetMetricSpec, client)(ref)).metricSpecs,
    metrics: async (ref, metricName = '') => (await promised(client.GetMetrics, client)({ scaledObjectRef: ref, metricName })).metricValues,
    streamIsActive(ref) {
      const call = client.StreamIsActive(ref);
      const values: { result: boolean; at: number }[] = [];
      call.on('data', (v: { result: boolean }) => values.push({ result: v.result, at: Date.now() }));
      const error = new Promise<grpc.ServiceError | undefined>((resolve) => {
        call.on('error', (e: grpc.ServiceError) => resolve(e));
        call.on('end', () => resolve(undefined));
      });
      return { values, error, cancel: () => call.cancel() };
    },
    close: () => client.close(),
  };
}

/** A ScaledObjectRef for a predictor, as KEDA sends it (`scalerAddress` is in the trigger metadata too). */
export function scaledObject(namespace: string, deployment: string, predictor: string, extra: Record<string, string> = {}): ScaledObjectRef {
  return { name: `${deployment}-${predictor}`, namespace, scalerMetadata: { scalerAddress: 'seldon-gateway-keda:9095', deployment, predictor, ...extra } };
}

/** Flow demand set by the test: one process's counts per predictor. */
export class SetDemand implements FlowDemandSource {
  private readonly counts = new Map<string, PredictorDemand>();
  private readonly listeners = new Set<() => void>();

  /** Put a predictor under flow control (at 0) or set its counts. */
  set(namespace: string, deployment: string, predictor: string, queued = 0, inflight = 0): void {
    this.counts.set(`${namespace}/${deployment}/${predictor}`, { namespace, deployment, predictor, queued, inflight });
    for (const l of this.listeners) l();
  }

  snapshot(): PredictorDemand[] {
    return [...this.counts.values()];
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
}
