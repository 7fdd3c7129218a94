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
import { channel, fromParent, fromWorkers, Requester, serve, worker } from '../ipc/request-reply.js';
import { metricsJson, type Gathered } from './observed.js';
import { latestDisagreements } from './shadow-compare.js';

/**
 * Only these metrics (a traffic sample), all when absent (/metrics); the reply is what the
 * worker's data plane gathered (the same `gather` the single process answers from).
 */
type ObserveRequest = { readonly names?: readonly string[] };
const OBSERVE = channel<ObserveRequest, Gathered>('sgw-observe');
/** A scrape waits this long for a busy worker (the bundled ServiceMonitor allows 10 s): a worker left out drops its series from that scrape. */
const GATHER_TIMEOUT_MS = 5000;

/** Worker side: answer the primary's observe requests with what this worker's data plane gathers. */
export function answerObserveRequests(gather: (names?: readonly string[]) => Promise<Gathered>): void {
  serve(OBSERVE, fromParent, ({ names }) => gather(names));
}

let requester: Requester<ObserveRequest, Gathered> | undefined;

/** Every connected worker's answer; a worker that does not answer within the timeout is left out. */
async function askWorkers(workers: readonly Worker[], names: readonly string[] | undefined): Promise<Gathered[]> {
  requester ??= new Requester(OBSERVE, fromWorkers, GATHER_TIMEOUT_MS);
  const asked = workers.map((w) => requester!.request(worker(w), names ? { names } : {}).catch(() => null));
  return (await Promise.all(asked)).filter((g): g is Gathered => g !== null);
}

/** Primary side: gather the primary's own metrics and every connected worker's (`names` only, when given). */
export async function gatherCluster(own: Registry, names?: readonly string[]): Promise<Gathered> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const [mine, answered] = await Promise.all([metricsJson(own, names), askWorkers(workers, names)]);
  return { metrics: [mine, ...answered.flatMap((g) => g.metrics)], disagreements: latestDisagreements(answered.map((g) => g.disagreements)) };
}
