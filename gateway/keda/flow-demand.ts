/**
 * The control plane's side of flow demand: this replica's data planes' demand, summed with the
 * other replicas' through Redis (replica-demand.ts), answered to KEDA on --keda-port (scaler.ts),
 * and the replica count sent back to every data plane so fixed limits are split.
 * Without Redis and without --keda-port there is nothing to do: no timer, no listener.
 */
import type { Logger } from 'pino';
import type { RedisConnection } from '../auth/redis.js';
import type { FlowDemandSource } from '../flow/demand.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { ReplicaDemand } from './replica-demand.js';
import { startKedaScaler } from './scaler.js';

export interface FlowDemandParts {
  /** This replica's demand: its data planes', summed. */
  readonly demand: FlowDemandSource;
  /** Every data plane splits its fixed limits between this many replicas from now on. */
  replicaCount(n: number): void;
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
  const replicas = new ReplicaDemand({
    local: planes.demand,
    redis,
    log,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    replicasChanged: (n) => {
      metrics.flowReplicas.set(n);
      planes.replicaCount(n);
      log.info({ replicas: n }, 'flow control: replicas sharing the fixed limits');
    },
  });
  replicas.start();
  const scaler =
    kedaPort === undefined
      ? undefined
      : await startKedaScaler({ host: options.host, port: kedaPort, totals: replicas, log }).catch(async (err: unknown) => {
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
