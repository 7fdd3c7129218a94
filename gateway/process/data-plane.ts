/**
 * The data plane of one process: the public listener (REST + h2c gRPC), the optional gRPC-only
 * port, upstream pools, mirrors and the proxies, all reading one `RouteState`; the OAuth front
 * end and the gate (auth, rate limits) with their stores.
 *
 * It decides nothing of the edge: the HTTP/1.1 refusals (smuggling shapes, 400/405/408/413/431, each
 * answered on its connection only, then closed) are edge/http1-edge.ts, refusals.ts and http1-serial.ts';
 * 503 over --max-connections is process/public-listeners.ts `accept`.
 */
import { readFileSync } from 'node:fs';
import { ModelMetadata } from '../model-metadata/model-metadata.js';
import cluster from 'node:cluster';
import net from 'node:net';
import type { Logger } from 'pino';
import type { AcceptFailure } from '../edge/accept-guard.js';
import type { EdgeConfig } from '../config/edge.js';
import type { GatewayConfig } from '../config/parse.js';
import type { UpstreamConfig } from '../config/upstream.js';
import { addTrustedProxy } from '../config/values.js';
import type { H2Request, H2Response } from '../edge/h2-exchange.js';
import { restEntry, type RestEntry } from '../edge/entry.js';
import { Http1Edge } from '../edge/http1-edge.js';
import { IpFilter } from '../pipeline/ip-policy.js';
import { GrpcProxy } from '../grpc/proxy.js';
import { H2Server } from '../edge/h2-server.js';
import { healthReporter, type EjectionNotice } from '../upstream/health-reports.js';
import { sniffingServer, type Http1Target } from '../edge/listener.js';
import { Http1Lane, type LaneHandler } from '../edge/http1-lane.js';
import type { NodeRequest, NodeResponse } from '../edge/node-exchange.js';
import { EdgeRefusals } from '../edge/refusals.js';
import { TlsTermination } from '../edge/tls.js';
import { GatewayMetrics } from '../observe/metrics.js';
import { OAuth } from '../auth/oauth.js';
import { Gatekeeper } from '../auth/gate.js';
import { externalAuth } from '../ext-auth/service.js';
import { JwtVerifier } from '../auth/jwt.js';
import { ProviderKeySets } from '../auth/jwt-keys.js';
import { createStores, type Stores } from '../auth/stores.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { WebSocketRelay } from '../rest/websocket-relay.js';
import { RestProxy } from '../rest/proxy.js';
import { SMALL_BODY_BYTES } from '../edge/small-body.js';
import { H2Rest } from '../rest/h2.js';
import type { DataPlaneObservers } from '../observe/observed.js';
import { RouteState } from './route-state.js';
import { RestMirrors } from '../rest/mirrors.js';
import { MirrorBudget } from '../upstream/mirror-budget.js';
import { Upstreams, type EndpointSource } from '../upstream/pools.js';
import type { WatchedEndpoints } from '../observe/route-gauges.js';
import { registerFlowMetrics } from '../observe/flow-metrics.js';
import { FlowController } from '../flow/controller.js';
import type { Clock } from '../upstream/clock.js';
import type { SettableReplicaCount } from '../keda/worker-demand.js';
import { KEEP_ALIVE_TIMEOUT_MS, OwnRoutes } from './own-routes.js';
import { PublicListeners } from './public-listeners.js';
import { randomPicker, roundRobinPicker, seededRandom } from '../../routing/table/pick.js';
import { SteerOverrides, steeredPicker } from '../steer/overrides.js';
import { StickyKeys } from '../steer/sticky-keys.js';
import { BanditEdge, type RewardSink } from '../steer/bandit-edge.js';
import { IpcRewardSink } from '../steer/reward-ipc.js';
import { ServerName } from '../edge/server-name.js';
import type { RestResponse } from '../edge/rest-exchange.js';
import { RedisSteerStore } from '../steer/store.js';
import type { Backend, Picker } from '../../routing/types.js';
import { targetBackend } from '../../routing/fallback/route.js';
import type { FallbackDeps } from '../pipeline/fallback.js';

export function pickerFor(config: Pick<UpstreamConfig, 'balance' | 'randomSeed'>): Picker {
  const random = config.randomSeed === undefined ? Math.random : seededRandom(config.randomSeed);
  return config.balance === 'round-robin' ? roundRobinPicker(random) : randomPicker(random);
}

/** Whether a peer may set X-Forwarded-For/-Proto: decided once per connection. */
function trustFor(config: Pick<EdgeConfig, 'trustForwardedHeaders' | 'trustedProxies'>): (socket: net.Socket) => boolean {
  if (config.trustForwardedHeaders) return () => true;
  if (config.trustedProxies.length === 0) return () => false;
  const list = new net.BlockList();
  for (const entry of config.trustedProxies) addTrustedProxy(list, entry);
  const known = new WeakMap<net.Socket, boolean>();
  return (socket) => {
    let t = known.get(socket);
    if (t === undefined) {
      const a = socket.remoteAddress ?? '';
      const v4 = a.startsWith('::ffff:') && net.isIP(a.slice(7)) === 4 ? a.slice(7) : undefined;
      t = v4 !== undefined ? list.check(v4, 'ipv4') : net.isIP(a) === 6 ? list.check(a, 'ipv6') : net.isIP(a) === 4 && list.check(a, 'ipv4');
      known.set(socket, t);
    }
    return t;
  };
}

/** The least a start waits for the shared store to be warm (else five --redis-timeout). */
const WARM_MIN_MS = 5_000;

/** How a data plane is set up beyond its configuration (all optional). */
export interface DataPlaneOptions {
  /** Listen with SO_REUSEPORT (cluster.ts decides, where Node supports it): each worker its own socket. */
  readonly reusePort?: boolean;
  /** Told when accepting starts or stops failing (a cluster worker tells the primary's /readyz). */
  readonly changed?: (failing: AcceptFailure | undefined) => void;
  /** Predictor header, access log, shadow comparison (observe/observed.ts), built first; none when absent. */
  readonly observers?: DataPlaneObservers;
  /** What tests move instead of sleeping: `now`, OAuth token expiry's (default Date.now); `clock`, the request path's time and timers (upstream/clock.ts: flow waits, route timeouts). */
  readonly now?: () => number;
  readonly clock?: Clock | undefined;
  /** The gateway's replicas as the control plane last counted them (gateway/keda/): fixed flow limits and local rate-limit shares; this replica alone when absent. */
  readonly replicas?: Pick<SettableReplicaCount, 'replicas' | 'processes'>;
  /** An endpoint was ejected (upstream/health-reports.ts): the control plane posts a Warning Event. */
  readonly ejected?: (notice: EjectionNotice) => void;
}

export class DataPlane {
  readonly state: RouteState;
  readonly metrics: GatewayMetrics;
  readonly upstreams: Upstreams;
  readonly rest: RestProxy;
  readonly grpc: GrpcProxy;
  /** The public HTTP/2 server (gRPC, and REST over HTTP/2). */
  readonly h2: H2Server;
  /** TLS on the public ports (--tls-cert / --tls-dir): certificates loaded (or a UsageError) at construction. */
  readonly tls: TlsTermination | undefined;
  /** fastify's own routes (the token endpoint, /ping, /ready) and Node's HTTP/1.1 server. */
  private readonly own: OwnRoutes;
  /** The HTTP/1.1 lane in front of `node:http` (--http1-server gateway), which takes the connections it leaves. */
  private readonly lane: Http1Lane | undefined;
  /** The listening sockets, accepting, and the connections a drain waits for. */
  private readonly listeners: PublicListeners;
  /** Where the public port's connections go once sniffed (edge/listener.ts). */
  private readonly dispatch: net.Server;
  readonly stores: Stores;
  /** Live shares of rollouts and bandits, as the control plane sends them (gateway/steer/). */
  readonly steering = new SteerOverrides();
  /** The keys that sign sticky cookies (and attribution tokens), as the control plane sends them. */
  readonly sticky = new StickyKeys();
  /** Bandits: attribution tokens on answers, feedback to the arm that earned it (gateway/steer/bandit-edge.ts). */
  readonly bandits: BanditEdge;
  /** The v2 models' metadata for translated requests (gateway/model-metadata/); forgotten at the table change that drops a model. */
  readonly metadata: ModelMetadata;
  /** Flow control of predictors with `seldon.io/gateway-flow` (gateway/flow/); its demand is what KEDA is told. */
  readonly flow: FlowController;
  /** The operator's fallback targets (--fallback-target): their upstreams outlive every table, as the flags do. */
  private readonly fallbackTargets: readonly Backend[];
  /** REST requests refused before routing (Node's HTTP/1.1 server's and HTTP/2's). */
  private readonly refusals: EdgeRefusals;
  /** Node's HTTP/1.1 server's edge: pipelining, absolute-form, parse errors, CONNECT. */
  private readonly http1Edge: Http1Edge;
  /** Where this process records bandit rewards: Redis, the primary (a worker without Redis), or the control plane's memory (`rewardsTo`). */
  private rewardSink: RewardSink | undefined;
  readonly oauth: OAuth;
  readonly gate: Gatekeeper;
  /** The ambassador Module's ip_allow / ip_deny (undefined without --ambassador-module); a Module read again replaces its policy. */
  readonly ipFilter: IpFilter | undefined;
  /** The ambassador Module's server_name (edge/server-name.ts): REST exchanges are marked with it, gRPC answers carry it; a Module read again replaces it. */
  readonly serverName: ServerName;
  /** --jwt-providers: the key sets and verified tokens of this process (undefined: none configured). */
  readonly jwt: JwtVerifier | undefined;
  /** Whether a peer may set X-Forwarded-For/-Proto (--trusted-proxies): REST, gRPC and the token endpoint. */
  private readonly trusts: (socket: net.Socket) => boolean;

  constructor(
    private readonly config: GatewayConfig,
    metrics?: GatewayMetrics,
    private readonly log?: Logger,
    /** Ready pod endpoints per Service (EndpointSlices), when endpoint routing is on: dialled, and followed by flow control. */
    endpoints?: EndpointSource & WatchedEndpoints,
    /** How a cluster worker accepts (cluster.ts), and the observers (local-plane.ts). */
    options: DataPlaneOptions = {},
  ) {
    // Everything a component needs is built before it and handed to its constructor: the state, the CA (read once), the stores and the gate, the observers; nothing is set afterwards.
    this.state = new RouteState(config.compile);
    this.metrics = metrics ?? new GatewayMetrics();
    this.refusals = new EdgeRefusals(config.edge, this.metrics);
    this.http1Edge = new Http1Edge({ metrics: this.metrics, serve: this.serve });
    // First: bad certificate files stop start-up before anything else is opened.
    this.tls = config.tls ? new TlsTermination(config.tls, { metrics: this.metrics, log, handshakeTimeoutMs: config.edge.clientHeaderTimeoutMs }) : undefined;
    const observers = options.observers;
    const ca = config.upstream.caFile ? readFileSync(config.upstream.caFile) : undefined;
    const healthFor = healthReporter({ upstream: config.upstream, metrics: this.metrics, log, posted: options.ejected });
    this.upstreams = new Upstreams({ ...config.upstream, ca, replayed: () => this.metrics.upstreamReplays.inc(), healthFor }, endpoints);
    const budget = new MirrorBudget(config.shadow.maxInFlight);
    const picker = steeredPicker(pickerFor(config.upstream), this.steering);
    this.trusts = trustFor(config.edge);
    this.stores = createStores(config.auth, this.metrics, log, options.now);
    this.rewardSink = this.stores.redis ? new RedisSteerStore(this.stores.redis) : cluster.isWorker ? new IpcRewardSink() : undefined;
    this.bandits = new BanditEdge(
      () => this.rewardSink,
      (deployment, arm, outcome) => {
        const slash = deployment.indexOf('/');
        this.metrics.banditFeedback.labels(deployment.slice(0, slash), deployment.slice(slash + 1), arm, outcome).inc();
      },
      log,
    );
    // Failed logins are throttled in the shared store; --error-detail decides what bodies say.
    this.oauth = new OAuth({
      store: this.stores.tokens,
      state: this.state,
      ttlMs: config.auth.oauthTokenTtlMs,
      timeoutMs: config.auth.redisTimeoutMs,
      metrics: this.metrics,
      log,
      errorDetail: config.edge.errorDetail,
      limits: this.stores.limits,
      now: options.now,
      clientHops: config.edge.rules?.clientHops,
    });
    const replicas = options.replicas;
    const processes = replicas ? () => replicas.processes() : () => Math.max(1, config.process.workers);
    const limiter = new RateLimiter({ shared: this.stores.limits, processes, timeoutMs: config.auth.redisTimeoutMs, metrics: this.metrics });
    const external = config.extAuth && externalAuth(config.extAuth, config.upstream, this.metrics, log, config.edge.errorDetail === 'internal');
    const now = options.now ?? Date.now;
    this.jwt = config.jwtProvidersFile !== undefined ? new JwtVerifier(new ProviderKeySets(config.jwtProviders, { now, log }), { now, metrics: this.metrics }) : undefined;
    this.ipFilter = config.module.file !== undefined ? new IpFilter(config.module.module?.ipPolicy, config.edge.rules?.clientHops) : undefined;
    this.serverName = new ServerName(config.module.module?.serverName);
    this.gate = new Gatekeeper({ oauth: this.oauth, limiter, state: this.state, picker, external, jwt: this.jwt, trusts: this.trusts });
    // A worker's share of fixed flow limits follows its place among the workers (docs/flow-control.md#limits).
    const worker = cluster.isWorker ? { workers: config.process.workers, index: (cluster.worker?.id ?? 1) - 1 } : {};
    this.flow = new FlowController({ endpoints, replicas: options.replicas, clock: options.clock, ...worker });
    this.state.onChange((table) => this.flow.tableChanged(table));
    registerFlowMetrics(this.metrics.registry, () => this.flow.stats());
    // Fallbacks (docs/routing.md#fallback-models): each proxy adds its own upstreams' `unready`.
    const targets = new Map([...config.fallbackTargets].map(([name, t]) => [name, targetBackend(name, t, config.compile)] as const));
    this.fallbackTargets = [...targets.values()];
    const fallback: FallbackDeps = { targets, metrics: this.metrics.fallbacks, coldDemand: (b) => this.flow.coldFallback(b) };
    this.metadata = new ModelMetadata({ rest: this.upstreams, grpc: () => this.grpc.upstreams, now, log });
    this.rest = new RestProxy({
      metadata: this.metadata,
      state: this.state,
      picker,
      upstreams: this.upstreams,
      eligible: endpoints ? this.upstreams.eligible : undefined,
      mirrors: new RestMirrors(this.upstreams, budget, config.shadow.maxBodyBytes, this.metrics, observers?.comparer),
      metrics: this.metrics,
      upstream: config.upstream,
      maxBodyBytes: config.edge.maxBodyBytes,
      errorDetail: config.edge.errorDetail,
      log,
      gate: this.gate,
      trusts: this.trusts,
      observe: observers?.rest,
      sticky: this.sticky,
      bandits: this.bandits,
      flow: this.flow,
      fallback: { ...fallback, unready: endpoints ? this.upstreams.unready : undefined },
      ipFilter: this.ipFilter,
      rules: config.edge.rules,
      clock: options.clock,
    });
    // REST over HTTP/2: the HTTP/2 server's non-gRPC streams enter the same REST path as HTTP/1.1's (`serve`).
    const h2rest = new H2Rest({
      edge: config.edge,
      metrics: this.metrics,
      serve: this.serve,
      grpcOnly: (socket) => this.grpcPort !== undefined && socket.localPort === this.grpcPort,
      answered: (req, res) => this.rest.deps.observe?.answered(req, res),
      failed: (err) => this.rest.internalError('request', err),
    });
    this.grpc = new GrpcProxy({
      clock: options.clock,
      metadata: this.metadata,
      healthFor,
      endpoints,
      state: this.state,
      picker,
      metrics: this.metrics,
      budget,
      upstream: config.upstream,
      ca,
      shadow: config.shadow,
      gate: this.gate,
      log,
      errorDetail: config.edge.errorDetail,
      trusts: this.trusts,
      predictorHeader: observers?.predictorHeader ?? false,
      observe: observers?.grpc,
      sticky: this.sticky,
      bandits: this.bandits,
      flow: this.flow,
      fallback,
      ipFilter: this.ipFilter,
      server: this.serverName,
      rules: config.edge.rules,
    });
    // Lifetimes (docs/architecture.md#lifetimes): an upstream leaves with the last route that names it, an endpoint with its ready set,
    // a predictor's rollout and bandit tally with its deployment's steering.
    this.state.onChange((table) => {
      this.sweepUpstreams();
      this.metadata.retain(table);
      this.metrics.steering.retain(new Set(table.steering.keys()));
    });
    endpoints?.onChange(() => {
      this.upstreams.refreshEndpoints();
      this.grpc.upstreams.refreshEndpoints();
    });
    // The public HTTP/2 server: gRPC calls to the gRPC proxy, other streams to REST over HTTP/2.
    this.h2 = new H2Server({
      grpc: this.grpc.stream,
      rest: (stream, headers, rawHeaders) => h2rest.stream(stream, headers, rawHeaders),
      restHead: config.edge,
      idleMs: config.edge.connectionIdleMs,
      metrics: this.metrics,
      log,
      trusts: this.trusts,
      rules: config.edge.rules,
    });
    const rest = this.rest;
    const upgrades = new WebSocketRelay({
      state: this.state,
      picker,
      eligible: endpoints ? this.upstreams.eligible : undefined,
      upstreams: this.upstreams,
      metrics: this.metrics,
      trusts: this.trusts,
      connectTimeoutMs: config.upstream.connectTimeoutMs,
      maxResponseHeaderBytes: config.upstream.maxResponseHeaderBytes,
      server: this.serverName,
      gate: this.gate,
      observe: observers?.rest,
      ipFilter: this.ipFilter,
      rules: config.edge.rules,
    });
    this.own = new OwnRoutes({ edge: config.edge, http1Edge: this.http1Edge, oauth: this.oauth, trusts: this.trusts, proxy: (req, res) => rest.handle(req, res), upgrades });
    this.listeners = new PublicListeners({
      listen: config.listen,
      edge: config.edge,
      metrics: this.metrics,
      log,
      reusePort: options.reusePort ?? false,
      changed: options.changed ?? (() => undefined),
      alive: () => !this.rest.draining && !this.h2.closing,
    });
    this.lane = config.edge.http1Server === 'gateway' ? this.newLane() : undefined;
    this.own.http1.on('connection', this.listeners.taken);
    this.h2.server.on('connection', this.listeners.taken);
    this.dispatch = sniffingServer(this.http1Target(), this.h2.server, this.listeners.track, {
      tls: this.tls,
      refused: (reason) => this.metrics.clientErrors.labels(reason).inc(),
      headerTimeoutMs: config.edge.clientHeaderTimeoutMs,
      spoke: (socket, protocol) => this.metrics.connections.spoke(socket, protocol),
    });
  }

  /** The public port's bound port, and --grpc-port's and --oauth-port's (once listening). */
  get port(): number {
    return this.listeners.port;
  }

  get grpcPort(): number | undefined {
    return this.listeners.grpcPort;
  }

  get oauthPort(): number | undefined {
    return this.listeners.oauthPort;
  }

  /** A REST request of either HTTP version (HTTP/2 through rest/h2.ts): the edge checks, then the proxy, the OAuth front end or the gateway's own routes. */
  private readonly serve = (req: NodeRequest | H2Request, res: NodeResponse | H2Response): void => {
    this.named(res);
    if (this.refusals.refused(req, res)) {
      // Refused at the edge: in the access log too (a body refused later, as it streams, is its exchange's line).
      this.rest.deps.observe?.answered(req, res);
      return;
    }
    const to = this.destination(req.url);
    if (to === 'proxy') this.rest.handle(req, res);
    else if (to === 'front') this.rest.frontEnd(req, res);
    else this.served(req, res);
  };

  /**
   * Who serves a request the HTTP/1.1 lane read (edge/http1-lane.ts), by its target: its shape
   * already passed the edge checks of edge/refusals.ts; the gateway's own routes stay with fastify.
   */
  private laneRoute(target: string): LaneHandler | undefined {
    const to = this.destination(target);
    return to === 'proxy' ? this.laneProxy : to === 'front' ? this.laneFrontEnd : undefined;
  }

  private readonly laneProxy: LaneHandler = (req, res) => {
    this.named(res);
    this.rest.handle(req, res);
  };
  private readonly laneFrontEnd: LaneHandler = (req, res) => {
    this.named(res);
    this.rest.frontEnd(req, res);
  };

  /** An exchange marked with the Module's server_name when there is one (its heads then carry it): without one, a property check. */
  private named(res: RestResponse): void {
    const server = this.serverName.value;
    if (server !== undefined) res.serverName = server;
  }

  /** Who serves a request for `url` (edge/entry.ts). */
  private destination(url: string | undefined): RestEntry {
    return restEntry(url, this.gate.frontEndActive);
  }

  /** The HTTP/1.1 lane (edge/http1-lane.ts): the hot path's requests; it hands the others' connections to Node's server. */
  private newLane(): Http1Lane {
    const edge = this.config.edge;
    return new Http1Lane({
      maxHeadBytes: edge.maxHeaderBytes,
      maxHeaders: edge.maxHeadersCount,
      maxBodyBytes: SMALL_BODY_BYTES,
      bodyLimitBytes: edge.maxBodyBytes,
      keepAliveTimeoutMs: edge.connectionIdleMs ?? KEEP_ALIVE_TIMEOUT_MS,
      headerTimeoutMs: edge.clientHeaderTimeoutMs,
      requestTimeoutMs: edge.clientRequestTimeoutMs,
      route: (target) => this.laneRoute(target),
      handOff: (socket, reason) => {
        this.metrics.http1Handoffs.labels(reason).inc();
        this.own.http1.emit('connection', socket);
      },
      timedOut: this.http1Edge.timedOut,
      bodyRefused: this.http1Edge.bodyRefused,
    });
  }

  /** Where a cleartext or TLS HTTP/1.1 connection goes: the lane, or Node's server. */
  private http1Target(): Http1Target {
    const server = this.own.http1;
    const lane = this.lane;
    if (lane === undefined) return (socket) => server.emit('connection', socket);
    return (socket) => {
      this.listeners.taken(socket);
      lane.connection(socket);
    };
  }

  /** A request the gateway's own routes answer (the token endpoint, /ping): in the access log too. */
  private served(req: NodeRequest | H2Request, res: NodeResponse | H2Response): void {
    this.rest.deps.observe?.answered(req, res);
    this.own.handler(req, res);
  }

  /** Without Redis, in one process: rewards go to the control plane's memory store. */
  rewardsTo(sink: RewardSink): void {
    if (!this.stores.redis && !cluster.isWorker) this.rewardSink = sink;
  }

  /** Say Node's server listens, then listen: the public port (and --oauth-port), --grpc-port. */
  async listen(): Promise<void> {
    this.own.ready();
    // Ready only when warm: the shared store connected with its scripts on every primary, so the first requests decide through it (or known down: fallback, as ever; docs/redis.md#readiness).
    const redis = this.stores.redis;
    if (redis !== undefined) {
      const warm = await redis.warm(Math.max(WARM_MIN_MS, 5 * this.config.auth.redisTimeoutMs));
      if (!warm) this.log?.warn({ redis: redis.status() }, 'redis not ready at start: serving with rate limits in fallback until it is');
    }
    // JWT providers' keys fetched once before the first request (a provider down: its tokens get 503 until a refresh succeeds).
    await this.jwt?.providers.start();
    await this.listeners.listenPublic(this.dispatch);
    await this.listeners.listenGrpc(this.h2.server);
    this.listeners.guard();
  }

  /** Why this process cannot accept connections now (out of descriptors), or undefined. */
  get acceptFailing(): AcceptFailure | undefined {
    return this.listeners.acceptFailing;
  }

  /**
   * Graceful stop: refuse new connections, answer in-flight requests with `connection: close`
   * (HTTP/1) or after GOAWAY (h2), wait up to `graceMs`, then cut what is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.rest.drain();
    this.lane?.drain();
    this.h2.drain();
    const closed = this.listeners.stopAccepting();
    const http1 = this.own.http1;
    http1.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.listeners.open > 0 && Date.now() < deadline) {
      http1.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    this.listeners.cut();
    await closed;
    await this.close();
  }

  /** Retire the upstreams no route names any more (deleted deployments, renamed predictors, moved Services): run at every table change. */
  sweepUpstreams(): number {
    const table = this.state.current;
    return this.upstreams.sweep(table, this.fallbackTargets) + this.grpc.upstreams.sweep(table, this.fallbackTargets);
  }

  async close(): Promise<void> {
    this.listeners.close();
    await this.h2.close();
    this.grpc.close();
    this.upstreams.destroy();
    this.gate.close();
    this.jwt?.providers.close();
    this.stores.close();
    this.tls?.close();
    await this.own.close();
  }
}
