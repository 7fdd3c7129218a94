/**
 * Observation across cluster workers: the primary asks every worker for its metrics (as JSON)
 * and its kept shadow disagreements in one IPC round trip, and answers `/metrics` and the
 * admin page from the sum. (prom-client's own cluster aggregation answers only text, and only
 * for workers that construct an AggregatorRegistry; this replaces it.)
 *
 * A worker that does not answer within the timeout is left out of that gather.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Registry } from 'prom-client';
import { metricsJson, type Gathered } from './observed.js';
import { latestDisagreements } from './shadow-compare.js';

interface ObserveRequest {
  readonly type: 'observe';
  readonly id: number;
  /** Only these metrics (a traffic sample); all when absent (/metrics). */
  readonly names?: readonly string[];
}
interface ObserveReply {
  readonly type: 'observed';
  readonly id: number;
  /** What the worker's data plane gathered (the same `gather` the single process answers from). */
  readonly gathered: Gathered;
}

const GATHER_TIMEOUT_MS = 2000;
let nextId = 0;

/** Worker side: answer the primary's observe requests with what this worker's data plane gathers. */
export function answerObserveRequests(gather: (names?: readonly string[]) => Promise<Gathered>): void {
  process.on('message', (msg: ObserveRequest) => {
    if (msg?.type !== 'observe') return;
    void gather(msg.names).then((gathered) => {
      const reply: ObserveReply = { type: 'observed', id: msg.id, gathered };
      if (process.connected) process.send?.(reply);
    });
  });
}

/** Replies by request id; one 'message' listener on the cluster for every gather. */
const pending = new Map<number, (workerId: number, reply: ObserveReply) => void>();
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  cluster.on('message', (w: Worker, msg: ObserveReply) => {
    if (msg?.type === 'observed') pending.get(msg.id)?.(w.id, msg);
  });
}

function askWorkers(workers: readonly Worker[], names: readonly string[] | undefined, timeoutMs: number): Promise<ObserveReply[]> {
  listen();
  const id = nextId++;
  return new Promise((resolve) => {
    const replies = new Map<number, ObserveReply>();
    const waiting = new Set<number>();
    const done = (): void => {
      clearTimeout(timer);
      pending.delete(id);
      resolve([...replies.values()]);
    };
    const timer = setTimeout(done, timeoutMs);
    pending.set(id, (workerId, reply) => {
      if (!waiting.delete(workerId)) return;
      replies.set(workerId, reply);
      if (waiting.size === 0) done();
    });
    for (const w of workers) {
      try {
        w.send({ type: 'observe', id, ...(names ? { names } : {}) } satisfies ObserveRequest);
        waiting.add(w.id);
      } catch {
        // exiting: left out
      }
    }
    if (waiting.size === 0) done();
  });
}

/** Primary side: gather the primary's own metrics and every connected worker's (`names` only, when given). */
export async function gatherCluster(own: Registry, names?: readonly string[], timeoutMs = GATHER_TIMEOUT_MS): Promise<Gathered> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const [mine, answered] = await Promise.all([metricsJson(own, names), askWorkers(workers, names, timeoutMs)]);
  return { metrics: [mine, ...answered.flatMap((r) => r.gathered.metrics)], disagreements: latestDisagreements(answered.map((r) => r.gathered.disagreements)) };
}
