/**
 * Direct tests of the policy units REST and gRPC share (gateway/upstream/): the attempt/retry
 * state machine, the endpoint pick with avoid, the per-upstream registry's sweep and mirror
 * admission. They are pure state: no sockets, nothing mocked but the clock.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IMPLICIT_RETRIES, RetryState } from '../../../gateway/forward/retry-state.js';
import { perTryTimer } from '../../../gateway/forward/attempt-base.js';
import { REAL_CLOCK, type Timer } from '../../../gateway/upstream/clock.js';
import { Breaker } from '../../../gateway/upstream/breaker.js';
import { EndpointSet, type EndpointSource } from '../../../gateway/upstream/endpoints.js';
import type { EndpointHealth } from '../../../routing/health/endpoints.js';
import { MirrorAdmission } from '../../../gateway/upstream/mirror.js';
import { MirrorBudget } from '../../../gateway/upstream/mirror-budget.js';
import { UpstreamRegistry, upstreamKey } from '../../../gateway/upstream/registry.js';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import type { AttemptFailure } from '../../../gateway/forward/retry-rule.js';
import type { Backend, BreakerLimits, Protocol, RetryPolicy, RouteTable, Upstream } from '../../../routing/types.js';
import { hedgePolicy, type HedgePolicy } from '../../../routing/hedge/config.js';
import { UpstreamHedging } from '../../../gateway/upstream/hedging.js';
import { Upstreams } from '../../../gateway/upstream/pools.js';
import { retainedBytes } from '../../helpers/heap.js';

const LIMITS: BreakerLimits = { maxConnections: 10, maxPendingRequests: 10, maxRequests: 10, maxRetries: 3 };

function backend(o: { retry?: RetryPolicy | null; breaker?: BreakerLimits; host?: string; service?: Upstream['service']; hedge?: HedgePolicy } = {}): Backend {
  const upstream: Upstream = { host: o.host ?? 'model.ns', port: 8000, tls: false, ...(o.service ? { service: o.service } : {}) };
  return {
    hedge: o.hedge ?? null,
    id: 'ns/dep/pred',
    origin: { namespace: 'ns', deployment: 'dep', predictor: 'pred' },
    upstream,
    rewrite: null,
    timeoutMs: 0,
    idleTimeoutMs: 0,
    retry: o.retry ?? null,
    breaker: o.breaker ?? LIMITS,
    gate: null,
    mapping: null,
    translate: null,
  } as Backend;
}

/** Real metrics, with the calls the units make recorded. */
class RecordingMetrics extends GatewayMetrics {
  readonly calls: string[] = [];
  override retry(_b: Backend, protocol: Protocol): void {
    this.calls.push(`retry ${protocol}`);
  }
  override shadow(_b: Backend, protocol: Protocol, result: string): void {
    this.calls.push(`shadow ${protocol} ${result}`);
  }
  override request(_b: Backend, protocol: Protocol, kind: string, code: number, seconds: number | null): void {
    this.calls.push(`request ${protocol} ${kind} ${code} ${seconds}`);
  }
}

// ---- the attempt / retry state machine --------------------------------------------------------

class Up {
  constructor(readonly breaker: Breaker) {}
}

/** An exchange without a codec: counts its attempts and per-try expiries; its retry state is the shared one. */
class Probe {
  dispatched = 0;
  tryExpired = 0;
  private readonly state: RetryState;
  private tryTimer: Timer | undefined;
  constructor(
    private readonly b: Backend,
    up: Up,
    metrics: GatewayMetrics,
  ) {
    this.state = new RetryState(b, up.breaker, metrics, 'rest', { dispatch: () => this.dispatched++ }, REAL_CLOCK);
  }
  // The steps, as a protocol drives them.
  enter = () => this.state.admit();
  replay = (f: AttemptFailure, replayable: boolean) => this.state.replayNow(f, replayable);
  decide = (w: AttemptFailure, replayable: boolean) => this.state.retryDecided(w, replayable);
  later = () => this.state.retryLater();
  retryNow = (w: AttemptFailure, replayable: boolean) => this.state.retry(w, replayable);
  arm = () => (this.tryTimer = perTryTimer(this.b, REAL_CLOCK, (p: Probe) => p.tryExpired++, this));
  disarm = () => this.tryTimer && REAL_CLOCK.clearTimeout(this.tryTimer);
  end = () => this.state.settle();
  get left(): number {
    return this.state.left;
  }
  get pending(): boolean {
    return this.state.pending;
  }
}

function probe(retry: RetryPolicy | null, limits: BreakerLimits = LIMITS): { p: Probe; breaker: Breaker; metrics: RecordingMetrics } {
  const b = backend({ retry, breaker: limits });
  const breaker = new Breaker(limits);
  const metrics = new RecordingMetrics();
  return { p: new Probe(b, new Up(breaker), metrics), breaker, metrics };
}

describe('attempts: the shared retry state', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('admits through the breaker and settles its slot once', () => {
    const { p, breaker } = probe(null, { ...LIMITS, maxRequests: 1 });
    expect(p.enter()).toBeNull();
    expect(breaker.inFlight).toBe(1);
    expect(probe(null, { ...LIMITS, maxRequests: 0 }).p.enter()).toBe('max_requests');
    p.end();
    expect(breaker.inFlight).toBe(0);
    p.end();
    expect(breaker.inFlight).toBe(0);
  });

  it('gives back no slot it did not take: settled before admission (its client left while it waited), or refused by the breaker', () => {
    const { p: left, breaker } = probe(null, { ...LIMITS, maxRequests: 1 });
    left.end();
    expect(breaker.inFlight).toBe(0);
    const { p: held, breaker: full } = probe(null, { ...LIMITS, maxRequests: 1 });
    expect(held.enter()).toBeNull();
    const refused = new Probe(backend({ breaker: { ...LIMITS, maxRequests: 1 } }), new Up(full), new RecordingMetrics());
    expect(refused.enter()).toBe('max_requests');
    refused.end();
    expect(full.inFlight).toBe(1);
    // The one slot is still the admitted request's: the next is refused until it settles.
    expect(new Probe(backend(), new Up(full), new RecordingMetrics()).enter()).toBe('max_requests');
    held.end();
    expect(full.inFlight).toBe(0);
  });

  it('replays at once only what the upstream never saw, only when replayable, at most IMPLICIT_RETRIES times', () => {
    const { p } = probe(null);
    expect(p.replay('reset', true)).toBe(false);
    expect(p.replay('idle', true)).toBe(false);
    expect(p.replay(503, true)).toBe(false);
    expect(p.replay('connect', false)).toBe(false);
    expect(p.dispatched).toBe(0);
    for (let i = 0; i < IMPLICIT_RETRIES; i++) expect(p.replay(i % 2 ? 'refused' : 'connect', true)).toBe(true);
    expect(p.dispatched).toBe(IMPLICIT_RETRIES);
    expect(p.replay('connect', true)).toBe(false);
  });

  it('retries what retry_on covers, while retries, replayability and max_retries allow, with backoff', () => {
    vi.useFakeTimers();
    const { p, breaker, metrics } = probe({ retryOn: 'gateway-error', numRetries: 2, perTryTimeoutMs: 0 });
    expect(p.decide(500, true)).toBe(false); // gateway-error: 502/503/504 only
    expect(p.decide(503, false)).toBe(false); // the body cannot be sent again
    expect(p.retryNow(503, true)).toBe(true);
    expect(p.pending).toBe(true);
    expect(breaker.retriesInFlight).toBe(1); // held through the backoff
    expect(metrics.calls).toEqual(['retry rest']);
    expect(p.dispatched).toBe(0);
    vi.advanceTimersByTime(25); // first backoff: at most 25 ms
    expect(p.dispatched).toBe(1);
    expect(p.pending).toBe(false);
    expect(breaker.retriesInFlight).toBe(0);
    expect(p.retryNow('reset', true)).toBe(true);
    vi.advanceTimersByTime(50); // second: at most 50 ms
    expect(p.dispatched).toBe(2);
    expect(p.left).toBe(0);
    expect(p.retryNow(503, true)).toBe(false); // none left
    expect(metrics.calls).toEqual(['retry rest', 'retry rest']);
  });

  it('a per-try timeout retries under any policy, REST and gRPC alike; none without one', () => {
    expect(probe({ retryOn: 'retriable-4xx', numRetries: 1, perTryTimeoutMs: 10 }).p.decide('per-try-timeout', true)).toBe(true);
    expect(probe({ retryOn: 'retriable-4xx', numRetries: 1, perTryTimeoutMs: 10 }).p.decide('timeout', true)).toBe(false);
    expect(probe(null).p.decide('per-try-timeout', true)).toBe(false);
  });

  it("a retry the breaker's max_retries refuses is not counted", () => {
    const { p, breaker, metrics } = probe({ retryOn: '5xx', numRetries: 3, perTryTimeoutMs: 0 }, { ...LIMITS, maxRetries: 0 });
    expect(p.decide(500, true)).toBe(false);
    expect(breaker.retriesInFlight).toBe(0);
    expect(p.left).toBe(3);
    expect(metrics.calls).toEqual([]);
  });

  it('a decided retry holds its breaker slot until sent; settling first gives it back and cancels it', () => {
    vi.useFakeTimers();
    const { p, breaker } = probe({ retryOn: '5xx', numRetries: 1, perTryTimeoutMs: 0 });
    expect(p.enter()).toBeNull();
    expect(p.decide(500, true)).toBe(true); // decided at the head; sent once the answer is read
    expect(breaker.retriesInFlight).toBe(1);
    p.end(); // the client left meanwhile
    expect(breaker.retriesInFlight).toBe(0);
    expect(breaker.inFlight).toBe(0);
    p.later();
    vi.advanceTimersByTime(1000);
    expect(p.dispatched).toBe(0);
    expect(breaker.retriesInFlight).toBe(0);
  });

  it('runs the per-try timer of an attempt, and stops it', () => {
    vi.useFakeTimers();
    const { p } = probe({ retryOn: '5xx', numRetries: 1, perTryTimeoutMs: 100 });
    p.arm();
    vi.advanceTimersByTime(99);
    expect(p.tryExpired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(p.tryExpired).toBe(1);
    p.arm();
    p.disarm();
    vi.advanceTimersByTime(200);
    expect(p.tryExpired).toBe(1);
    const none = probe(null).p;
    none.arm();
    vi.advanceTimersByTime(10_000);
    expect(none.tryExpired).toBe(0);
  });
});

// ---- the endpoint set and its pick ------------------------------------------------------------

class Ep {
  outstanding = 0;
  retired = false;
  constructor(
    readonly address: string,
    readonly health: EndpointHealth,
  ) {}
}

type Addr = { host: string; port: number };

class Source implements EndpointSource {
  list: readonly Addr[] | undefined;
  endpointsOf(): readonly Addr[] | undefined {
    return this.list;
  }
}

function endpointSet(source: Source | undefined, refuse?: string): { set: EndpointSet<Ep>; opened: string[] } {
  const opened: string[] = [];
  const up: Upstream = { host: 'model.ns', port: 8000, tls: false, service: { name: 'model', namespace: 'ns', portName: 'http' } };
  const set = new EndpointSet<Ep>(up, new Map([['model.ns:8000', { host: '127.0.0.1', port: 9000 }]]), source, {
    open: (host, port, health) => {
      if (host === refuse) throw new Error('invalid address');
      opened.push(`${host}:${port}`);
      return new Ep(`${host}:${port}`, health);
    },
    retire: (e) => {
      e.retired = true;
    },
  });
  return { set, opened };
}

const addrs = (...hosts: string[]): Addr[] => hosts.map((host) => ({ host, port: 8000 }));

describe('endpoints: the set and the pick', () => {
  it('without endpoints, dials the Service address after --resolve, opened once', () => {
    const { set, opened } = endpointSet(undefined);
    const e = set.pick();
    expect(e?.address).toBe('127.0.0.1:9000');
    expect(set.pick([e!.health])).toBe(e); // nothing else to go to
    expect(opened).toEqual(['127.0.0.1:9000']);
    expect(set.hasReady()).toBe(true);
    const unknown = new Source(); // the source does not know the Service: the same
    expect(endpointSet(unknown).set.pick()?.address).toBe('127.0.0.1:9000');
  });

  it('an address that cannot be opened makes the upstream invalid; the pick never throws', () => {
    const { set } = endpointSet(undefined, '127.0.0.1');
    expect(set.pick()).toBeUndefined();
    expect(set.invalid).toBe('127.0.0.1:9000: invalid address');
    expect(set.pick()).toBeUndefined();
    const src = new Source();
    src.list = addrs('10.0.0.1', '10.0.0.2');
    const some = endpointSet(src, '10.0.0.1');
    expect(some.set.pick()?.address).toBe('10.0.0.2:8000'); // the other one still serves
    expect(some.set.invalid).toBe('10.0.0.1:8000: invalid address');
  });

  it('follows the ready endpoints: opens new ones, retires those that left, none ready: nothing to pick', () => {
    const src = new Source();
    src.list = addrs('10.0.0.1', '10.0.0.2');
    const { set, opened } = endpointSet(src);
    const first = new Set<string>();
    for (let i = 0; i < 200; i++) first.add(set.pick()!.address);
    expect([...first].sort()).toEqual(['10.0.0.1:8000', '10.0.0.2:8000']);
    const [one, two] = set.all();
    src.list = addrs('10.0.0.2', '10.0.0.3');
    for (let i = 0; i < 200; i++) expect(set.pick()!.address).not.toBe('10.0.0.1:8000');
    expect(one!.retired).toBe(true);
    expect(two!.retired).toBe(false);
    expect(opened).toEqual(['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000']); // 10.0.0.2 kept its entry
    src.list = [];
    expect(set.hasReady()).toBe(false);
    expect(set.pick()).toBeUndefined();
  });

  it('avoids the endpoints that failed this request while another is ready', () => {
    const src = new Source();
    src.list = addrs('10.0.0.1', '10.0.0.2', '10.0.0.3');
    const { set } = endpointSet(src);
    const failed = set.pick()!;
    for (let i = 0; i < 500; i++) expect(set.pick([failed.health])).not.toBe(failed);
    const second = set.pick([failed.health])!;
    const third = set.all().find((e) => e !== failed && e !== second)!;
    for (let i = 0; i < 100; i++) expect(set.pick([failed.health, second.health])).toBe(third);
    // All three failed: any of them rather than none.
    expect(set.pick([failed.health, second.health, third.health])).toBeDefined();
    src.list = addrs(failed.address.split(':')[0]!);
    expect(set.pick([failed.health])).toBe(failed); // the only one ready
  });

  it('prefers the less busy of two random picks', () => {
    const src = new Source();
    src.list = addrs('10.0.0.1', '10.0.0.2', '10.0.0.3');
    const { set } = endpointSet(src);
    set.pick();
    const [idle, some, busy] = set.all();
    some!.outstanding = 5;
    busy!.outstanding = 10;
    const n = new Map<Ep, number>();
    for (let i = 0; i < 9000; i++) {
      const e = set.pick()!;
      n.set(e, (n.get(e) ?? 0) + 1);
    }
    // Two distinct draws of three (equal latency): the idle one whenever drawn (2/3), the busiest never.
    expect(n.get(idle!)! / 9000).toBeGreaterThan(0.5);
    expect((n.get(busy!) ?? 0) / 9000).toBeLessThan(0.15);
  });
});

// ---- the registry and its sweep ---------------------------------------------------------------

class Entry {
  readonly breaker = new Breaker(LIMITS);
  closed = false;
  hasReady(): boolean {
    return true;
  }
  inService(): boolean {
    return true;
  }
}

class Registry extends UpstreamRegistry<Entry> {
  created = 0;
  constructor() {
    super('rest');
  }
  protected scheme(b: Backend): string {
    return b.upstream.tls ? 'https' : 'http';
  }
  protected create(): Entry {
    this.created++;
    return new Entry();
  }
  protected retire(e: Entry): void {
    e.closed = true;
  }
}

function table(kind: 'rest' | 'grpc', ...backends: Backend[]): RouteTable {
  return { groups: [{ kind, members: backends.map((b) => ({ backend: b, percent: 100 })), mirrors: [] }] } as unknown as RouteTable;
}

describe('registry: one entry per upstream key, retired when no route names it', () => {
  it('shares an entry between backends with the same key and retires it at the first table that names it no more, busy or not', () => {
    const reg = new Registry();
    const a = backend();
    const a2 = backend(); // another Backend object, same upstream and limits
    const b = backend({ host: 'other.ns' });
    expect(reg.for(a)).toBe(reg.for(a2));
    expect(reg.for(b)).not.toBe(reg.for(a));
    expect(reg.created).toBe(2);
    expect(upstreamKey(a, 'http')).toBe('http://model.ns:8000|10/10/10/3');
    const entryB = reg.for(b);
    entryB.breaker.enter();
    // Busy: retired all the same (its requests in flight finish on it; the entry drains, as Envoy's removed cluster).
    expect(reg.sweep(table('rest', a))).toBe(1);
    expect(entryB.closed).toBe(true);
    expect(reg.size).toBe(1);
    // A request that chose b before it left still reaches the retired entry through its Backend.
    expect(reg.for(b)).toBe(entryB);
    entryB.breaker.leave();
    expect(reg.sweep(table('grpc', a, b))).toBe(1); // gRPC routes do not keep REST entries
    expect(reg.size).toBe(0);
    expect(reg.sweep(table('rest', a))).toBe(0);
    // A new Backend of the same upstream (the deployment created again) gets a new entry.
    const b2 = backend({ host: 'other.ns' });
    expect(reg.for(b2)).not.toBe(entryB);
    expect(reg.created).toBe(3);
  });
});

describe('registry: the key it keeps for every backend of the table', () => {
  it('is one flat string, not a tree of its parts (1,000 keys keep at most 150 bytes each)', () => {
    // A worker's registries key every backend a sweep sees: 3,300 of them for the large scenario's table.
    // Built with a template literal, a key stayed a tree of a dozen strings, about 376 bytes.
    const backends = Array.from({ length: 1000 }, (_, i) => backend({ host: JSON.parse(`"model-${i}-main.team-${i % 50}"`) as string }));
    const keys: string[] = [];
    const perKey = retainedBytes(() => backends.map((b) => keys.push(upstreamKey(b, 'h2c')))) / backends.length;
    expect(keys[7]).toBe('h2c://model-7-main.team-7:8000|10/10/10/3');
    expect(perKey, `${Math.round(perKey)} bytes per key`).toBeLessThan(150);
  });
});

describe("registry: a hedged backend's upstream", () => {
  it('is its own (its estimate, budget and delay are its state), and when retired its delay metric goes with it and is not told again', async () => {
    const policy = hedgePolicy({ quantile: null, afterMs: 20 });
    const hedged = backend({ hedge: policy });
    expect(upstreamKey(hedged, 'http')).toBe('http://model.ns:8000|10/10/10/3|hedge after 20ms, min 0ms, max none, budget 5%, maxAttempts 2');
    const metrics = new GatewayMetrics({ processMetrics: false });
    const upstreams = new Upstreams({ resolve: new Map(), connectTimeoutMs: 1000, tlsVerify: true, maxResponseHeaderBytes: 65_536 });
    expect(upstreams.for(hedged)).not.toBe(upstreams.for(backend()));
    // What the forwarding core does for its first hedged request (gateway/forward/forwarded.ts `hedged`).
    const { track } = (upstreams.for(hedged).hedging = new UpstreamHedging({ ...REAL_CLOCK, now: () => 0 }, (ms) => metrics.hedging.delayIs(hedged, 'rest', ms)));
    track.delayMs(policy, 0);
    const series = async (): Promise<number> => (await metrics.hedging.delay.get()).values.length;
    expect(await series()).toBe(1);
    upstreams.sweep(table('rest', backend()));
    expect(await series()).toBe(0);
    // A straggler that still reads the retired entry's delay tells nothing: the series stays gone.
    track.delayMs(policy, 1000);
    expect(await series()).toBe(0);
    await upstreams.close();
  });
});

// ---- mirror admission -------------------------------------------------------------------------

describe('mirror admission: budget, breaker, settlement', () => {
  it('admits within the in-flight bound and the breaker; drops (counted) beyond either; settles once', () => {
    const metrics = new RecordingMetrics();
    const gate = new MirrorAdmission(new MirrorBudget(1), metrics, 'grpc', 1024);
    const b = backend();
    const up = { breaker: new Breaker(LIMITS) };
    expect(gate.admit(up, b)).toBe(true);
    expect(up.breaker.inFlight).toBe(1);
    expect(gate.admit(up, b)).toBe(false); // the bound of 1 is reached
    expect(up.breaker.inFlight).toBe(1);
    gate.settle(up, b, false, 0, 0.5);
    expect(up.breaker.inFlight).toBe(0);
    expect(gate.admit(up, b)).toBe(true); // the slot came back
    gate.settle(up, b, true, 0, null);
    const full = { breaker: new Breaker({ ...LIMITS, maxRequests: 0 }) };
    expect(gate.admit(full, b)).toBe(false);
    expect(gate.admit(full, b)).toBe(false); // the budget slot was given back on the breaker's refusal
    gate.tooLarge([{ backend: b, percent: 100 }]);
    expect(metrics.calls).toEqual([
      'shadow grpc dropped_in_flight',
      'shadow grpc mirrored',
      'request grpc shadow 0 0.5',
      'shadow grpc failed',
      'shadow grpc dropped_breaker',
      'shadow grpc dropped_breaker',
      'shadow grpc dropped_body_size',
    ]);
  });

  it('without --shadow-max-in-flight (unset or 0) the breaker alone bounds copies: max_connections + max_pending_requests, then max_requests', () => {
    for (const cap of [undefined, 0]) {
      const metrics = new RecordingMetrics();
      const gate = new MirrorAdmission(new MirrorBudget(cap), metrics, 'rest', 1024);
      const b = backend();
      // Envoy's defaults: far beyond the 64 the gateway once capped copies at.
      const pending = { breaker: new Breaker({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 }) };
      let admitted = 0;
      while (gate.admit(pending, b)) admitted++;
      expect(admitted).toBe(1024);
      const queued = { breaker: new Breaker({ maxConnections: 2, maxPendingRequests: 3, maxRequests: 1024, maxRetries: 3 }) };
      admitted = 0;
      while (gate.admit(queued, b)) admitted++;
      expect(admitted).toBe(5); // 2 on connections, 3 waiting for one
      gate.settle(queued, b, false, 200, 0.01);
      expect(gate.admit(queued, b)).toBe(true);
      expect(metrics.calls.filter((c) => c.startsWith('shadow')).sort()).toEqual(['shadow rest dropped_breaker', 'shadow rest dropped_breaker', 'shadow rest mirrored']);
    }
  });
});
