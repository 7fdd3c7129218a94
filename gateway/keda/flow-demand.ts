/**
 * The control plane's side of flow demand: this replica's data planes' demand, summed with the
 * other replicas' through Redis (replica-demand.ts), answered to KEDA on --keda-port (scaler.ts),
 * and the replica count sent back to every data plane: fixed flow limits are split by it, and a
 * rate limit decided locally takes this process's share.
 * Without Redis and without --keda-port there is nothing to do: no timer, no listener.
 */
import type { Logger } from 'pino';
import type { RedisConnection } from '../auth/redis.js';
import type { FlowDemandSource, ReplicaTally } from '../flow/demand.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { ReplicaDemand } from './replica-demand.js';

export interface FlowDemandParts {
  /** This replica's demand: its data planes', summed. */
  readonly demand: FlowDemandSource;
  /** This replica's processes (its workers). */
  readonly processes: number;
  /** Every data plane counts the replicas so from now on. */
  replicaCount(tally: ReplicaTally): void;
}

export interface FlowDemandService {
  /** The KEDA port listened on (the OS's choice for 0), when --keda-port is set. */
  readonly kedaPort: number | undefined;
  stop(): Promise<void>;
}

export async function startFlowDemand(options: {
  readonly planes: FlowDemandParts;
  readonly redis: RedisConnection | undefined;
  readonly kedaPort: number | undefined;
  readonly host: string;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly timeoutMs?: number;
}): Promise<FlowDemandService> {
  const { planes, redis, kedaPort, metrics, log } = options;
  if (!redis && kedaPort === undefined) return { kedaPort: undefined, stop: async () => undefined };
  metrics.flowReplicas.set(1);
  metrics.rateLimitReplicas.set(planes.processes);
  const replicas = new ReplicaDemand({
    local: planes.demand,
    redis,
    log,
    workers: planes.processes,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    replicasChanged: (tally) => {
      metrics.flowReplicas.set(tally.replicas);
      metrics.rateLimitReplicas.set(tally.processes);
      planes.replicaCount(tally);
      log.info(tally, 'replicas counted: fixed flow limits split between the replicas, local rate-limit shares between the processes');
    },
  });
  replicas.start();
  const scaler =
    kedaPort === undefined
      ? undefined
      : // Loaded only with --keda-port: it brings gRPC and protobuf (5 MB of idle memory: docs/observability.md#memory).
        await (await import('./scaler.js')).startKedaScaler({ host: options.host, port: kedaPort, totals: replicas, log }).catch(async (err: unknown) => {
          await replicas.stop();
          throw err;
        });
  return {
    kedaPort: scaler?.port,
    async stop() {
      await scaler?.close();
      await replicas.stop();
    },
  };
}
