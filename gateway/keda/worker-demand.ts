/**
 * Flow demand between a cluster's workers and its primary, over the cluster IPC (one-way messages).
 *
 * Each worker's data plane has its own flow controller (a `FlowDemandSource`); the primary, which
 * answers KEDA and writes this replica's record in Redis (replica-demand.ts), needs their sum. A
 * worker sends its snapshot at most 100 ms after a count changes (one message for a burst of
 * changes) and every second regardless, so a lost or late message is repaired within a second.
 * The primary keeps each worker's last snapshot (dropped when the worker exits) and sums them.
 * The other way, the primary tells every worker how many replicas share the fixed limits.
 */
import cluster, { type Worker } from 'node:cluster';
import type { FlowDemandSource, PredictorDemand, ReplicaCount, ReplicaTally } from '../flow/demand.js';

interface DemandMessage {
  readonly type: 'sgw-flow-demand';
  readonly demand: PredictorDemand[];
}
export interface ReplicasMessage {
  readonly type: 'sgw-replicas';
  readonly tally: ReplicaTally;
}

/** The longest a worker waits after a change before it reports. */
export const REPORT_DEBOUNCE_MS = 100;
/** A worker reports at least this often, changed or not. */
export const REPORT_EVERY_MS = 1000;

/** `ns/deployment/predictor` */
export function predictorKey(d: Pick<PredictorDemand, 'namespace' | 'deployment' | 'predictor'>): string {
  return `${d.namespace}/${d.deployment}/${d.predictor}`;
}

/** Runs `listener` at most once per `ms`, `ms` after the first call of a burst. */
export function debounced(ms: number, listener: () => void): { (): void; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const call = (): void => {
    timer ??= setTimeout(() => {
      timer = undefined;
      listener();
    }, ms);
  };
  return Object.assign(call, { cancel: () => clearTimeout(timer) });
}

/** A worker's side: report `source` to the primary. Returns a stop function. */
export function reportDemandToPrimary(source: FlowDemandSource, send: (msg: DemandMessage) => void = sendToPrimary): () => void {
  const report = (): void => send({ type: 'sgw-flow-demand', demand: source.snapshot() });
  const soon = debounced(REPORT_DEBOUNCE_MS, report);
  const unsubscribe = source.onChange(soon);
  const every = setInterval(report, REPORT_EVERY_MS);
  every.unref();
  report();
  return () => {
    unsubscribe();
    soon.cancel();
    clearInterval(every);
  };
}

function sendToPrimary(msg: DemandMessage): void {
  if (process.connected) process.send?.(msg);
}

/** Sum snapshots by predictor: every predictor any of them names, at 0 too. */
export function sumDemand(snapshots: Iterable<readonly PredictorDemand[]>): PredictorDemand[] {
  const sum = new Map<string, PredictorDemand>();
  for (const snapshot of snapshots) {
    for (const d of snapshot) {
      const key = predictorKey(d);
      const seen = sum.get(key);
      sum.set(key, seen ? { ...seen, queued: seen.queued + d.queued, inflight: seen.inflight + d.inflight } : { ...d });
    }
  }
  return [...sum.values()];
}

/** The primary's side: every worker's last report, summed. Listens from construction; `stop()` ends it. */
export class WorkerDemand implements FlowDemandSource {
  private readonly reports = new Map<number, PredictorDemand[]>();
  private readonly listeners = new Set<() => void>();
  private readonly onMessage = (w: Worker, msg: DemandMessage): void => {
    if (msg?.type !== 'sgw-flow-demand' || !Array.isArray(msg.demand)) return;
    this.reports.set(w.id, msg.demand);
    this.changed();
  };
  private readonly onExit = (w: Worker): void => {
    if (this.reports.delete(w.id)) this.changed();
  };

  constructor() {
    cluster.on('message', this.onMessage);
    cluster.on('exit', this.onExit);
  }

  snapshot(): PredictorDemand[] {
    return sumDemand(this.reports.values());
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  stop(): void {
    cluster.off('message', this.onMessage);
    cluster.off('exit', this.onExit);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}

/**
 * A data plane's replica count, as the control plane last set it (until then: this replica alone, its
 * own workers): one count, read two ways while Redis is away. `replicas()` splits fixed flow limits (1
 * during an outage: each replica admits the whole limit); `processes()` stays as last counted and gives
 * a rate limit decided locally its share.
 */
export class SettableReplicaCount implements ReplicaCount {
  private tally: ReplicaTally;
  constructor(workers = 1) {
    this.tally = { replicas: 1, processes: Math.max(1, workers) };
  }
  replicas(): number {
    return this.tally.replicas;
  }
  processes(): number {
    return this.tally.processes;
  }
  set(tally: ReplicaTally): void {
    this.tally = { replicas: Math.max(1, Math.floor(tally.replicas)), processes: Math.max(1, Math.floor(tally.processes)) };
  }
}
