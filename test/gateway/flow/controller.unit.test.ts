/**
 * The per-process flow controller (gateway/flow/controller.ts) without sockets: one state per
 * predictor, kept across table swaps while its policy is unchanged (its counts and refusals too),
 * a new one when the policy changes (refusals carried on), the fixed limit following the ready
 * endpoints, held requests let go in order once an endpoint is ready, the demand KEDA reads.
 */
import { describe, expect, it, vi } from 'vitest';
import { FlowController, type FlowExchange, type FlowRefusal, type FlowSlot } from '../../../gateway/flow/controller.js';
import { REAL_CLOCK } from '../../../gateway/upstream/clock.js';
import type { WatchedEndpoints } from '../../../gateway/observe/route-gauges.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type RouteTable } from '../../../routing/types.js';

const table = (flow: string, traffic = 100): RouteTable =>
  buildTable(
    [
      {
        metadata: { name: 'iris', namespace: 'models', annotations: { 'seldon.io/gateway-flow': flow } },
        spec: { predictors: [{ name: 'main', traffic, graph: { name: 'm' } }] },
      } as SeldonDeployment,
    ],
    DEFAULT_COMPILE_OPTIONS,
  );
const restBackend = (t: RouteTable): Backend => t.groups.find((g) => g.kind === 'rest')!.members[0]!.backend;

/** A request that records what became of it. */
class Request implements FlowExchange {
  slot: FlowSlot | undefined;
  refusal: FlowRefusal | undefined;
  constructor(
    readonly backend: Backend,
    readonly name: string,
    readonly order: string[],
    /** The client's own deadline (clock ms), as gRPC's grpc-timeout gives one. */
    readonly deadline = Infinity,
  ) {}
  header(): string | undefined {
    return undefined;
  }
  deadlineMs(now: number): number {
    return this.deadline - now;
  }
  onGone(): void {}
  refuse(r: FlowRefusal): void {
    this.refusal = r;
  }
  forward(slot: FlowSlot): void {
    this.slot = slot;
    this.order.push(this.name);
  }
}

/** EndpointSlices as the test sets them, telling the controller when they change. */
class Endpoints implements WatchedEndpoints {
  ready = new Map<string, number>();
  private listeners: ((s: ReadonlySet<string>) => void)[] = [];
  endpointsOf(service: string, namespace: string) {
    const n = this.ready.get(`${namespace}/${service}`);
    return n === undefined ? undefined : Array.from({ length: n }, (_, i) => ({ host: `10.0.0.${i + 1}`, port: 8000 }));
  }
  onChange(l: (s: ReadonlySet<string>) => void) {
    this.listeners.push(l);
    return () => undefined;
  }
  set(key: string, n: number): void {
    this.ready.set(key, n);
    for (const l of this.listeners) l(new Set([key]));
  }
}

describe('the flow controller', () => {
  it('keeps a predictor’s state across table swaps while its policy is unchanged, and starts a new one (refusals carried) when it changes', () => {
    const flow = new FlowController();
    const order: string[] = [];
    const t1 = table('concurrency: 1\nqueue: 0');
    flow.tableChanged(t1);
    const a = new Request(restBackend(t1), 'a', order);
    flow.admit(a);
    const b = new Request(restBackend(t1), 'b', order);
    flow.admit(b);
    expect(b.refusal?.message).toBe('models/iris/main is overloaded: the queue is full');

    // Another table, same policy (another weight): the same state, its slot still held.
    const t2 = table('concurrency: 1\nqueue: 0', 90);
    expect(restBackend(t2)).not.toBe(restBackend(t1));
    flow.tableChanged(t2);
    const c = new Request(restBackend(t2), 'c', order);
    flow.admit(c);
    expect(c.refusal).toBeDefined();
    expect(flow.stats()).toEqual([{ namespace: 'models', deployment: 'iris', predictor: 'main', concurrency: 1, limit: 1, inflight: 1, queued: 0, refused: [0, 2, 0] }]);

    // A changed policy: a new state (nothing in flight in it), the refusals counted on.
    const t3 = table('concurrency: 2\nqueue: 0');
    flow.tableChanged(t3);
    expect(flow.stats()).toEqual([{ namespace: 'models', deployment: 'iris', predictor: 'main', concurrency: 2, limit: 2, inflight: 0, queued: 0, refused: [0, 2, 0] }]);
    a.slot!.release(true);
    expect(flow.snapshot()).toEqual([{ namespace: 'models', deployment: 'iris', predictor: 'main', queued: 0, inflight: 0 }]);

    // Gone from the table: gone from the demand.
    flow.tableChanged(buildTable([], DEFAULT_COMPILE_OPTIONS));
    expect(flow.snapshot()).toEqual([]);
  });

  it('follows the ready endpoints: the fixed limit is concurrency × endpoints, and requests held at zero go in order once one is ready', () => {
    const endpoints = new Endpoints();
    endpoints.set('models/iris-main', 0);
    const flow = new FlowController({ endpoints });
    const changes: number[] = [];
    flow.onChange(() => changes.push(flow.snapshot()[0]?.queued ?? -1));
    const t = table('concurrency: 2\nqueue: 10\nscaleFromZero: 1m');
    flow.tableChanged(t);
    const order: string[] = [];
    const held = ['h1', 'h2', 'h3'].map((n) => new Request(restBackend(t), n, order));
    for (const r of held) flow.admit(r);
    expect(order).toEqual([]);
    expect(flow.snapshot()).toEqual([{ namespace: 'models', deployment: 'iris', predictor: 'main', queued: 3, inflight: 0 }]);
    expect(changes.at(-1)).toBe(3);

    endpoints.set('models/iris-main', 1);
    expect(order).toEqual(['h1', 'h2']);
    expect(flow.stats()[0]!.limit).toBe(2);
    endpoints.set('models/iris-main', 3);
    expect(order).toEqual(['h1', 'h2', 'h3']);
    expect(flow.stats()[0]).toMatchObject({ limit: 6, inflight: 3, queued: 0 });
    for (const r of held) r.slot!.release(false);
    expect(flow.stats()[0]).toMatchObject({ inflight: 0 });
  });

  it('answers a wait that the client’s own deadline ended as a deadline, and one that scaleFromZero ended as an overload', () => {
    vi.useFakeTimers();
    try {
      let now = 0;
      const endpoints = new Endpoints();
      endpoints.set('models/iris-main', 0);
      const flow = new FlowController({ endpoints, clock: { ...REAL_CLOCK, now: () => now } });
      const t = table('concurrency: 2\nqueue: 10\nscaleFromZero: 1m');
      flow.tableChanged(t);
      const order: string[] = [];
      const short = new Request(restBackend(t), 'short', order, 300);
      const long = new Request(restBackend(t), 'long', order, 120_000);
      flow.admit(short);
      flow.admit(long);
      now = 300;
      vi.advanceTimersByTime(300);
      expect(short.refusal).toMatchObject({ clientDeadline: true });
      expect(short.refusal!.message).toMatch(/client's deadline expired while no endpoint was ready/);
      expect(long.refusal).toBeUndefined();
      now = 60_000;
      vi.advanceTimersByTime(59_700);
      expect(long.refusal!.clientDeadline).toBeUndefined();
      expect(long.refusal!.message).toMatch(/no endpoint became ready within 60000 ms \(scaleFromZero 60000 ms\)/);
      expect(order).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('shares a fixed limit between the replicas and this process’s place among the workers', () => {
    const replicas = { n: 2, replicas: () => replicas.n };
    const t = table('concurrency: 5');
    const first = new FlowController({ replicas, workers: 2, index: 0 });
    const second = new FlowController({ replicas, workers: 2, index: 1 });
    first.tableChanged(t);
    second.tableChanged(t);
    // 5 per replica of 2: round(2.5) = 3 here, split 2 + 1 between the workers.
    expect([first.stats()[0]!.limit, second.stats()[0]!.limit]).toEqual([2, 1]);
    first.close();
    second.close();
  });
});
