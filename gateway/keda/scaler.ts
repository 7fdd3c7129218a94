/**
 * KEDA's external scaler (`externalscaler.ExternalScaler`, the vendored externalscaler.proto),
 * served over gRPC by the control plane on its own port (--keda-port), never on the public one.
 *
 * A ScaledObject's trigger names a predictor in its metadata: `deployment`, `predictor`, optional
 * `targetPendingRequests` (default 100); the namespace is the ScaledObject's. The metric is that
 * predictor's queued plus in-flight requests over every replica of the gateway that shares Redis
 * (replica-demand.ts); `IsActive` is true while it is above zero, and `StreamIsActive` (KEDA's
 * `external-push` trigger) sends each change as it happens. Metadata KEDA cannot use is refused
 * with INVALID_ARGUMENT and words that say what to fix.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';

/** What the scaler reads: a predictor's demand over the replicas, and when it changes. */
export interface DemandTotals {
  /** Queued + in flight for the predictor over every replica; undefined when it is under no flow control here. */
  total(namespace: string, deployment: string, predictor: string): number | undefined;
  /** `listener` runs whenever a total may have changed. Returns an unsubscribe. */
  onChange(listener: () => void): () => void;
}

/** The HPA's target per replica of the model when the ScaledObject does not set one. */
export const DEFAULT_TARGET_PENDING_REQUESTS = 100;

/** The predictor a ScaledObject's trigger scales on. */
export interface ScaledPredictor {
  readonly namespace: string;
  readonly deployment: string;
  readonly predictor: string;
  readonly target: number;
  /** Stable per predictor, and valid as an HPA external metric name (lower-case alphanumerics and '-'). */
  readonly metricName: string;
}

interface ScaledObjectRef {
  name?: string;
  namespace?: string;
  scalerMetadata?: Record<string, string>;
}
interface GetMetricsRequest {
  scaledObjectRef?: ScaledObjectRef;
  metricName?: string;
}

/** A Kubernetes object name (DNS-1123 subdomain), as SeldonDeployments and namespaces have. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export class BadScalerMetadata extends Error {}

/** The metric's name for a predictor: its coordinates, lower-cased, anything else as '-'. */
export function metricNameFor(namespace: string, deployment: string, predictor: string): string {
  return `seldon-gateway-pending-${namespace}-${deployment}-${predictor}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
}

/** The predictor a ScaledObjectRef names, or BadScalerMetadata saying what is wrong. */
export function scaledPredictor(ref: ScaledObjectRef | undefined): ScaledPredictor {
  const who = `ScaledObject ${ref?.namespace || '?'}/${ref?.name || '?'}`;
  const namespace = ref?.namespace ?? '';
  if (!OBJECT_NAME.test(namespace)) throw new BadScalerMetadata(`${who}: the ScaledObjectRef has no valid namespace (got "${namespace}")`);
  const meta = ref?.scalerMetadata ?? {};
  const deployment = (meta.deployment ?? '').trim();
  if (!deployment) throw new BadScalerMetadata(`${who}: metadata "deployment" (the SeldonDeployment's name) is missing`);
  if (!OBJECT_NAME.test(deployment)) throw new BadScalerMetadata(`${who}: metadata "deployment" is not a Kubernetes object name (got "${deployment}")`);
  const predictor = (meta.predictor ?? '').trim();
  if (!predictor) throw new BadScalerMetadata(`${who}: metadata "predictor" (the predictor's name in the SeldonDeployment) is missing`);
  const raw = meta.targetPendingRequests?.trim();
  let target = DEFAULT_TARGET_PENDING_REQUESTS;
  if (raw !== undefined && raw !== '') {
    target = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
    if (!(target > 0)) throw new BadScalerMetadata(`${who}: metadata "targetPendingRequests" must be a number above 0 (got "${raw}")`);
  }
  return { namespace, deployment, predictor, target, metricName: metricNameFor(namespace, deployment, predictor) };
}

const PROTO = fileURLToPath(new URL('./externalscaler.proto', import.meta.url));

function scalerService(): grpc.ServiceDefinition {
  const loaded = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(loaded) as unknown as { externalscaler: { ExternalScaler: { service: grpc.ServiceDefinition } } };
  return pkg.externalscaler.ExternalScaler.service;
}

export interface KedaScaler {
  readonly port: number;
  close(): Promise<void>;
}

/** Serve the external scaler on `host:port` (0: the OS chooses) from `totals`. */
export async function startKedaScaler(options: { host: string; port: number; totals: DemandTotals; log?: Logger }): Promise<KedaScaler> {
  const { totals, log } = options;
  const server = new grpc.Server();
  const streams = new Set<grpc.ServerWritableStream<ScaledObjectRef, unknown>>();

  /** The predictor and its total now, or the gRPC error to answer. */
  const measure = (ref: ScaledObjectRef | undefined): { scaled: ScaledPredictor; total: number } | grpc.ServiceError => {
    let scaled: ScaledPredictor;
    try {
      scaled = scaledPredictor(ref);
    } catch (err) {
      if (!(err instanceof BadScalerMetadata)) throw err;
      return failure(grpc.status.INVALID_ARGUMENT, err.message);
    }
    const total = totals.total(scaled.namespace, scaled.deployment, scaled.predictor);
    if (total === undefined) {
      return failure(
        grpc.status.FAILED_PRECONDITION,
        `predictor "${scaled.predictor}" of SeldonDeployment ${scaled.namespace}/${scaled.deployment} is not under flow control in this gateway (no such predictor, or no seldon.io/gateway-flow annotation): its demand is not counted`,
      );
    }
    return { scaled, total };
  };
  const answer = <T>(callback: grpc.sendUnaryData<T>, ref: ScaledObjectRef | undefined, make: (m: { scaled: ScaledPredictor; total: number }) => T): void => {
    const m = measure(ref);
    if ('code' in m) callback(m);
    else callback(null, make(m));
  };

  server.addService(scalerService(), {
    IsActive: (call: grpc.ServerUnaryCall<ScaledObjectRef, unknown>, callback: grpc.sendUnaryData<unknown>) => answer(callback, call.request, ({ total }) => ({ result: total > 0 })),
    GetMetricSpec: (call: grpc.ServerUnaryCall<ScaledObjectRef, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      answer(callback, call.request, ({ scaled }) => ({
        // targetSize (int64) for KEDA releases before targetSizeFloat.
        metricSpecs: [{ metricName: scaled.metricName, targetSizeFloat: scaled.target, targetSize: Math.max(1, Math.round(scaled.target)) }],
      })),
    GetMetrics: (call: grpc.ServerUnaryCall<GetMetricsRequest, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      answer(callback, call.request.scaledObjectRef, ({ scaled, total }) => ({
        metricValues: [{ metricName: scaled.metricName, metricValueFloat: total, metricValue: Math.round(total) }],
      })),
    StreamIsActive: (call: grpc.ServerWritableStream<ScaledObjectRef, unknown>) => {
      const first = measure(call.request);
      if ('code' in first) {
        call.emit('error', first);
        return;
      }
      const { scaled } = first;
      let last = first.total > 0;
      call.write({ result: last });
      streams.add(call);
      const unsubscribe = totals.onChange(() => {
        const now = (totals.total(scaled.namespace, scaled.deployment, scaled.predictor) ?? 0) > 0;
        if (now === last) return;
        last = now;
        call.write({ result: now });
      });
      const end = (): void => {
        unsubscribe();
        streams.delete(call);
      };
      call.on('cancelled', end);
      call.on('close', end);
      call.on('error', end);
    },
    // The target never changes while the ScaledObject stays the same: sent once, the stream kept open.
    StreamMetricSpec: (call: grpc.ServerWritableStream<ScaledObjectRef, unknown>) => {
      const m = measure(call.request);
      if ('code' in m) {
        call.emit('error', m);
        return;
      }
      call.write({ metricSpecs: [{ metricName: m.scaled.metricName, targetSizeFloat: m.scaled.target, targetSize: Math.max(1, Math.round(m.scaled.target)) }] });
      streams.add(call);
      const end = (): void => void streams.delete(call);
      call.on('cancelled', end);
      call.on('close', end);
    },
  });

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(new Error(`--keda-port: cannot listen on ${options.host}:${options.port}: ${err.message}`)) : resolve(bound),
    ),
  );
  log?.info({ kedaPort: port }, 'KEDA external scaler listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // Open streams would hold tryShutdown for ever: they end now, KEDA reconnects to another replica.
        for (const s of streams) s.end();
        streams.clear();
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}

function failure(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}
