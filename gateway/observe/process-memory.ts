/**
 * What each process of the gateway holds (the admin port's `/memory`, as Envoy's admin `/memory`):
 * resident memory, the JavaScript heap, external memory, open descriptors and, in a data plane, the
 * upstreams it keeps. With `gc` the heap is read after two full collections, so what is retained
 * shows apart from garbage not yet collected (what a trend over hours must read: docs/observability.md#memory).
 * In a cluster the primary asks every worker over IPC; a worker that does not answer in time is left out.
 */
import cluster, { type Worker } from 'node:cluster';
import { readdirSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { channel, fromParent, fromWorkers, Requester, serve, worker } from '../ipc/request-reply.js';

export interface ProcessMemory {
  /** `primary` and `worker` in a cluster; `process`: one process serving alone. */
  readonly role: 'primary' | 'worker' | 'process';
  readonly pid: number;
  /** The cluster worker's id. */
  readonly worker?: number | undefined;
  /** Resident set size, bytes. */
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** Memory of C++ objects bound to JavaScript ones (buffers included). */
  readonly external: number;
  readonly arrayBuffers: number;
  /** Open file descriptors (sockets included); null where /proc is not there. */
  readonly descriptors: number | null;
  /** The heap was read after forced full collections. */
  readonly collected: boolean;
  /** The upstreams a data plane keeps (REST pools, gRPC session pools): those of gone deployments leave at once. */
  readonly upstreams?: { readonly rest: number; readonly grpc: number } | undefined;
}

type Gc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;
let exposed: Gc | undefined;

/** V8's gc(), exposed to a new context only: nothing else in the process sees it. */
function gc(): Gc {
  if (exposed === undefined) {
    v8.setFlagsFromString('--expose-gc');
    exposed = runInNewContext('gc') as Gc;
  }
  return exposed;
}

/** Two full collections (the second takes what the first's finalizers let go). */
function collect(): void {
  gc()();
  gc()();
}

/**
 * Give back what starting up took and no longer holds: one memory-reducing collection, run once a
 * process is up and before it serves. Loading and compiling the gateway grows V8's young generation
 * to its full semispaces; ordinary collections keep those pages pooled, and a worker (whose memory
 * reducer is off for the hot path's sake: process/cluster.ts) would hold them for good: 22 MB of
 * each process's 110 MB idle (docs/observability.md#memory). A pause of 0.1 to 0.4 s, before traffic.
 */
export function trimHeap(): void {
  gc()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/**
 * Give back V8's pooled pages when resident memory has grown by `growthBytes` since the last trim,
 * at most every `minIntervalMs`. Ordinary collections return freed pages to V8's pool, not to the
 * system, and a process that is never idle (the primary gathers the workers' series for every scrape)
 * keeps the memory reducer from emptying it: in a one-hour soak the primary's resident memory climbed
 * 20 MB every 10 minutes with its heap flat, 70 MB of it pooled pages one memory-reducing collection
 * gave back (load/README.md#soak). Not for workers: the pause (0.1 to 0.4 s)
 * would hold every request on them.
 */
export class HeapTrimmer {
  private leftRss: number;
  private leftAt: number;

  constructor(
    private readonly growthBytes: number,
    private readonly minIntervalMs: number,
    private readonly now: () => number = Date.now,
    private readonly rss: () => number = () => process.memoryUsage.rss(),
    private readonly trim: () => void = trimHeap,
  ) {
    this.leftRss = this.rss();
    this.leftAt = this.now();
  }

  /** Trims if due; true when it did. */
  check(): boolean {
    const now = this.now();
    if (now - this.leftAt < this.minIntervalMs || this.rss() - this.leftRss < this.growthBytes) return false;
    this.trim();
    this.leftRss = this.rss();
    this.leftAt = now;
    return true;
  }

  /** Checks every `everyMs` for the life of the process (the timer does not hold it open). */
  start(everyMs: number): this {
    setInterval(() => this.check(), everyMs).unref();
    return this;
  }
}

/**
 * A worker's memory given back once it is idle: after `quietMs` in which its event loop was busy
 * less than `busyFraction` of the time (no traffic, a scrape now and then), one memory-reducing
 * collection (`trimHeap`), when resident memory grew by `growthBytes` since the last one. Under load a
 * worker's young generation grows to what its allocation rate asks for and V8 keeps it (the memory
 * reducer that would shrink it is off on workers: process/cluster.ts); an idle one has no request
 * for the pause to hold. A request that arrives during it waits for it (0.1 to 0.4 s), once, after
 * the quiet.
 */
export class IdleTrimmer {
  private quietSince: number;
  private leftRss: number;

  constructor(
    private readonly quietMs: number,
    private readonly growthBytes: number,
    private readonly busyFraction = 0.02,
    private readonly now: () => number = Date.now,
    /** The event loop's utilization since the previous call (0 to 1). */
    private readonly busy: () => number = loopUtilization(),
    private readonly rss: () => number = () => process.memoryUsage.rss(),
    private readonly trim: () => void = trimHeap,
  ) {
    this.quietSince = this.now();
    this.leftRss = this.rss();
  }

  /** Trims if the process has been quiet long enough and grew; true when it did. */
  check(): boolean {
    const now = this.now();
    if (this.busy() > this.busyFraction) {
      this.quietSince = now;
      return false;
    }
    if (now - this.quietSince < this.quietMs || this.rss() - this.leftRss < this.growthBytes) return false;
    this.trim();
    this.leftRss = this.rss();
    return true;
  }

  /** Checks every `everyMs` for the life of the process (the timer does not hold it open). */
  start(everyMs: number): this {
    setInterval(() => this.check(), everyMs).unref();
    return this;
  }
}

/** The event loop's utilization between one call and the next (perf_hooks' ELU). */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const u = performance.eventLoopUtilization(last);
    last = performance.eventLoopUtilization();
    return u.utilization;
  };
}

function descriptors(): number | null {
  try {
    // The directory's own descriptor is open while it is read.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return null;
  }
}

/** This process's memory, after forced collections when `collectFirst`. */
export function processMemory(role: ProcessMemory['role'], collectFirst: boolean, upstreams?: ProcessMemory['upstreams']): ProcessMemory {
  if (collectFirst) collect();
  const m = process.memoryUsage();
  return {
    role,
    pid: process.pid,
    worker: cluster.isWorker ? cluster.worker?.id : undefined,
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    descriptors: descriptors(),
    collected: collectFirst,
    upstreams,
  };
}

type MemoryRequest = { readonly gc: boolean };
const MEMORY = channel<MemoryRequest, ProcessMemory>('sgw-memory');
/** Two full collections of a large heap take a while on a busy machine. */
const MEMORY_TIMEOUT_MS = 10_000;

/** Worker side: answer the primary's memory requests. */
export function answerMemoryRequests(read: (gc: boolean) => ProcessMemory): void {
  serve(MEMORY, fromParent, ({ gc }) => read(gc));
}

let requester: Requester<MemoryRequest, ProcessMemory> | undefined;

/** Primary side: its own memory, then every connected worker's (one at a time, so their collections do not compete). */
export async function clusterMemory(gcFirst: boolean): Promise<ProcessMemory[]> {
  requester ??= new Requester(MEMORY, fromWorkers, MEMORY_TIMEOUT_MS);
  const out = [processMemory('primary', gcFirst)];
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  for (const w of workers) {
    const m = await requester.request(worker(w), { gc: gcFirst }).catch(() => undefined);
    if (m !== undefined) out.push(m);
  }
  return out;
}
