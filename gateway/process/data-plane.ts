/**
 * The data plane of one process: the public listener (REST + h2c gRPC), the optional gRPC-only
 * port, upstream pools, mirrors and the proxies, all reading one `RouteState`; the OAuth front
 * end and the gate (auth, rate limits) with their stores.
 *
 * It composes and decides nothing of the edge itself: the HTTP/1.1 edge is hardened in edge/ —
 * Node's parser refuses smuggling shapes (Content-Length with Transfer-Encoding, differing or
 * repeated Content-Length, obsolete line folding, bad methods, malformed chunked bodies) with 400
 * (edge/http1-edge.ts answers them, and 431, 408, 405 for CONNECT); edge/refusals.ts adds 400 for
 * a repeated Host, a Transfer-Encoding that does not end in chunked or a Content_Length /
 * Transfer_Encoding field, 405 for TRACE, 413 over --max-body, 431 over --max-headers-count; 503
 * for connections over --max-connections is the listener's (`accept`, here). A connection that
 * sends nothing is closed after the header timeout. Each is answered on that connection only,
 * with a JSON body, and closed; requests pipelined behind it are never served
 * (edge/http1-pipeline.ts). Nothing on the public port answers in fastify's words.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import cluster from 'node:cluster';
import net from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AcceptGuard, type AcceptFailure } from '../edge/accept-guard.js';
import type { EdgeConfig } from '../config/edge.js';
import type { GatewayConfig } from '../config/parse.js';
import type { UpstreamConfig } from '../config/upstream.js';
import { addTrustedProxy } from '../config/values.js';
import { errorBody, type GatewayReason } from '../edge/errors.js';
import type { RestRequest, RestResponse } from '../edge/exchange.js';
import type { H2Request, H2Response } from '../edge/h2-exchange.js';
import { rawAnswer } from '../edge/http-answer.js';
import { Http1Edge } from '../edge/http1-edge.js';
import { lingerOnClose } from '../edge/lingering-close.js';
import { GrpcProxy } from '../grpc/proxy.js';
import { sniffingServer, type Http1Target } from '../edge/listener.js';
import { Http1Lane, type LaneHandler } from '../edge/http1-lane.js';
import { NODE_EXCHANGE, type NodeRequest, type NodeResponse } from '../edge/node-exchange.js';
import { EdgeRefusals } from '../edge/refusals.js';
import { TlsTermination } from '../edge/tls.js';
import { GatewayMetrics } from '../observe/metrics.js';
import { OAuth } from '../auth/oauth.js';
import { Gatekeeper } from '../auth/gate.js';
import { externalAuth } from '../ext-auth/service.js';
import { createStores, type Stores } from '../auth/stores.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { RestProxy, SMALL_BODY_BYTES } from '../rest/proxy.js';
import { H2Rest } from '../rest/h2.js';
import type { DataPlaneObservers } from '../observe/observed.js';
import { RouteState } from './route-state.js';
import { RestMirrors } from '../rest/mirrors.js';
import { MirrorBudget } from '../upstream/mirror-budget.js';
import { Upstreams } from '../upstream/pools.js';
import type { EndpointSource } from '../upstream/endpoints.js';
import type { WatchedEndpoints } from '../observe/route-gauges.js';
import { registerFlowMetrics } from '../observe/flow-metrics.js';
import { FlowController } from '../flow/controller.js';
import type { ReplicaCount } from '../flow/demand.js';
import { randomPicker, roundRobinPicker, seededRandom } from '../../routing/pick.js';
import { SteerOverrides, steeredPicker } from '../steer/overrides.js';
import { StickyKeys } from '../steer/sticky.js';
import { BanditEdge, type RewardSink } from '../steer/bandit-edge.js';
import { IpcRewardSink } from '../steer/reward-ipc.js';
import { RedisSteerStore } from '../steer/store.js';
import type { Picker } from '../../routing/types.js';

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

/** How long an idle client connection is kept between requests (longer than common client pools' own idle timeouts). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

const UPSTREAM_SWEEP_MS = 60_000;
/** The paths fastify serves (the OAuth front end's token endpoint and probes), with any query. */
const OWN_ROUTES = /^\/(?:oauth\/token|ping|ready)(?:\?|$)/;

/** fastify's handler, given the REST requests that are the gateway's own routes (of either HTTP version). */
type NodeServer = HttpServer<typeof NodeRequest, typeof NodeResponse>;
type OwnRoutes = (req: NodeRequest | H2Request, res: NodeResponse | H2Response) => void;

/**
 * The exchange fastify hands back to the proxy: its raw objects are the ones its handler was given,
 * made by edge/node-exchange.ts (or edge/h2-exchange.ts); its types name Node's base classes.
 */
const fromFastify = (req: FastifyRequest, reply: FastifyReply): [RestRequest, RestResponse] => [req.raw as NodeRequest, reply.raw as NodeResponse];

/** How a data plane is set up beyond its configuration (all optional). */
export interface DataPlaneOptions {
  /** Listen with SO_REUSEPORT (cluster.ts decides, where Node supports it): each worker its own socket. */
  readonly reusePort?: boolean;
  /** Told when accepting starts or stops failing (a cluster worker tells the primary's /readyz). */
  readonly changed?: (failing: AcceptFailure | undefined) => void;
  /** Predictor header, access log, shadow comparison (observe/observed.ts), built first; none when absent. */
  readonly observers?: DataPlaneObservers;
  /** The gateway's replicas sharing fixed flow limits (gateway/flow/demand.ts); one when absent. */
  readonly replicas?: ReplicaCount;
}

export class DataPlane {
  readonly state: RouteState;
  readonly metrics: GatewayMetrics;
  readonly upstreams: Upstreams;
  readonly rest: RestProxy;
  readonly grpc: GrpcProxy;
  /** TLS on the public ports (--tls-cert / --tls-dir): certificates loaded (or a UsageError) at construction. */
  readonly tls: TlsTermination | undefined;
  private app: FastifyInstance | undefined;
  private http1: NodeServer | undefined;
  private publicServer: net.Server | undefined;
  private grpcServer: net.Server | undefined;
  private oauthServer: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Open connections on the public port (for --max-connections). */
  private publicConnections = 0;
  readonly stores: Stores;
  /** Live shares of rollouts and bandits, as the control plane sends them (gateway/steer/). */
  readonly steering = new SteerOverrides();
  /** The keys that sign sticky cookies (and attribution tokens), as the control plane sends them. */
  readonly sticky = new StickyKeys();
  /** Bandits: attribution tokens on answers, feedback to the arm that earned it (gateway/steer/bandit-edge.ts). */
  readonly bandits: BanditEdge;
  /** Flow control of predictors with `seldon.io/gateway-flow` (gateway/flow/); its demand is what KEDA is told. */
  readonly flow: FlowController;
  /** REST requests refused before routing (Node's HTTP/1.1 server's and HTTP/2's). */
  private readonly refusals: EdgeRefusals;
  /** Node's HTTP/1.1 server's edge: pipelining, absolute-form, parse errors, CONNECT. */
  private readonly http1Edge: Http1Edge;
  /** Where this process records bandit rewards: Redis, the primary (a worker without Redis), or the control plane's memory (`rewardsTo`). */
  private rewardSink: RewardSink | undefined;
  readonly oauth: OAuth;
  readonly gate: Gatekeeper;
  /** Whether a peer may set X-Forwarded-For/-Proto (--trusted-proxies): REST, gRPC and the token endpoint. */
  private readonly trusts: (socket: net.Socket) => boolean;
  port = 0;
  grpcPort: number | undefined;
  oauthPort: number | undefined;

  constructor(
    private readonly config: GatewayConfig,
    metrics?: GatewayMetrics,
    log?: Logger,
    /** Ready pod endpoints per Service (EndpointSlices), when endpoint routing is on: dialled, and followed by flow control. */
    endpoints?: EndpointSource & WatchedEndpoints,
    /** How a cluster worker accepts (cluster.ts), and the observers (local-plane.ts). */
    options: DataPlaneOptions = {},
  ) {
    // Everything a component needs is built before it and handed to its constructor: the
    // state, the CA (read once), the stores and the gate, the observers; nothing is set afterwards.
    this.logger = log;
    this.reusePort = options.reusePort ?? false;
    this.acceptChanged = options.changed ?? (() => undefined);
    this.state = new RouteState(config.compile);
    this.metrics = metrics ?? new GatewayMetrics();
    this.refusals = new EdgeRefusals(config.edge, this.metrics);
    this.http1Edge = new Http1Edge({ metrics: this.metrics, serve: this.serve });
    // First: bad certificate files stop start-up before anything else is opened.
    this.tls = config.tls ? new TlsTermination(config.tls, { metrics: this.metrics, log, handshakeTimeoutMs: config.edge.clientHeaderTimeoutMs }) : undefined;
    const observers = options.observers;
    const ca = config.upstream.caFile ? readFileSync(config.upstream.caFile) : undefined;
    this.upstreams = new Upstreams({ ...config.upstream, ca, replayed: () => this.metrics.upstreamReplays.inc() }, endpoints);
    const budget = new MirrorBudget(config.shadow.maxInFlight);
    const picker = steeredPicker(pickerFor(config.upstream), this.steering);
    this.trusts = trustFor(config.edge);
    this.stores = createStores(config.auth, config.process.workers, this.metrics, log);
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
    });
    const limiter = new RateLimiter({ shared: this.stores.limits, timeoutMs: config.auth.redisTimeoutMs, metrics: this.metrics });
    const external = config.extAuth && externalAuth(config.extAuth, config.upstream, this.metrics, log, config.edge.errorDetail === 'internal');
    this.gate = new Gatekeeper({ oauth: this.oauth, limiter, state: this.state, picker, metrics: this.metrics, external, trusts: this.trusts });
    // A worker's share of fixed flow limits follows its place among the workers (docs/flow-control.md#limits).
    const worker = cluster.isWorker ? { workers: config.process.workers, index: (cluster.worker?.id ?? 1) - 1 } : {};
    this.flow = new FlowController({ endpoints, replicas: options.replicas, ...worker });
    this.state.onChange((table) => this.flow.tableChanged(table));
    registerFlowMetrics(this.metrics.registry, () => this.flow.stats());
    this.rest = new RestProxy({
      state: this.state,
      picker,
      upstreams: this.upstreams,
      eligible: endpoints ? this.upstreams.eligible : undefined,
      mirrors: new RestMirrors(this.upstreams, budget, config.shadow.maxBodyBytes, this.metrics, observers?.comparer),
      metrics: this.metrics,
      upstream: config.upstream,
      errorDetail: config.edge.errorDetail,
      log,
      gate: this.gate,
      trusts: this.trusts,
      observe: observers?.rest,
      sticky: this.sticky,
      bandits: this.bandits,
      flow: this.flow,
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
      rest: h2rest.stream,
      restHead: config.edge,
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
    });
  }

  /** fastify's handler: the gateway's own routes (the token endpoint, /ping, /ready), set when listen() builds it. */
  private handler: OwnRoutes | undefined;

  /**
   * A REST request of either HTTP version (HTTP/2 through rest/h2.ts): the edge checks, then the
   * proxy, the OAuth front end or the gateway's own routes.
   */
  private readonly serve = (req: NodeRequest | H2Request, res: NodeResponse | H2Response): void => {
    if (this.refusals.refused(req, res)) {
      // Refused at the edge: in the access log too (a body refused later, as it streams, is its exchange's line).
      this.rest.deps.observe?.answered(req, res);
      return;
    }
    const to = this.destination(req.url);
    if (to === 'proxy') this.rest.handle(req, res);
    else if (to === 'front') this.rest.frontEnd(req, res);
    else this.served(req, res, this.handler!);
  };

  /**
   * Who serves a request the HTTP/1.1 lane read (edge/http1-lane.ts), by its target: its shape
   * already passed the edge checks of edge/refusals.ts; the gateway's own routes stay with fastify.
   */
  private laneRoute(target: string): LaneHandler | undefined {
    const to = this.destination(target);
    return to === 'proxy' ? this.laneProxy : to === 'front' ? this.laneFrontEnd : undefined;
  }

  private readonly laneProxy: LaneHandler = (req, res) => this.rest.handle(req, res);
  private readonly laneFrontEnd: LaneHandler = (req, res) => this.rest.frontEnd(req, res);

  /**
   * Who serves a request for `url`: the proxy, the OAuth front end, or the gateway's own routes
   * (fastify: exactly /oauth/token, /ping and /ready; any other path, under /oauth/ too, is the
   * proxy's, whose 404 is the gateway's JSON).
   */
  private destination(url: string | undefined): 'proxy' | 'front' | 'own' {
    if (url === undefined || url.charCodeAt(1) === 115 /* s: /seldon/ */ || !this.gate.frontEndActive) return 'proxy';
    if (url.startsWith('/api/v0.1/') || url.startsWith('/api/v1.0/')) return 'front';
    if (OWN_ROUTES.test(url)) return 'own';
    return 'proxy';
  }

  /** The HTTP/1.1 lane in front of `node:http` (--http1-server gateway), which takes the connections it leaves. */
  private lane: Http1Lane | undefined;

  private http1Target(): Http1Target {
    const server = this.http1!;
    const toNode: Http1Target = (socket) => server.emit('connection', socket);
    const edge = this.config.edge;
    if (edge.http1Server === 'node') return toNode;
    const lane = (this.lane = new Http1Lane({
      maxHeadBytes: edge.maxHeaderBytes,
      maxHeaders: edge.maxHeadersCount,
      maxBodyBytes: edge.maxBodyBytes > 0 ? Math.min(SMALL_BODY_BYTES, edge.maxBodyBytes) : SMALL_BODY_BYTES,
      keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
      headerTimeoutMs: edge.clientHeaderTimeoutMs,
      requestTimeoutMs: edge.clientRequestTimeoutMs,
      route: (target) => this.laneRoute(target),
      handOff: (socket, reason) => {
        this.metrics.http1Handoffs.labels(reason).inc();
        toNode(socket);
      },
      timedOut: this.http1Edge.timedOut,
    }));
    return (socket) => {
      this.taken(socket);
      lane.connection(socket);
    };
  }

  /** A request the gateway's own routes answer (the token endpoint, /ping): in the access log too. */
  private served(req: NodeRequest | H2Request, res: NodeResponse | H2Response, handler: OwnRoutes): void {
    this.rest.deps.observe?.answered(req, res);
    handler(req, res);
  }

  /** Public-port connections: refused over --max-connections; closed if silent for the header timeout. */
  private accept(socket: net.Socket, dispatch: net.Server, listener: 'public' | 'oauth'): void {
    lingerOnClose(socket, this.config.edge.lingering);
    const max = this.config.edge.maxConnections;
    if (max > 0 && this.publicConnections >= max) {
      this.metrics.clientErrors.labels('too_many_connections').inc();
      socket.on('error', () => socket.destroy());
      socket.resume();
      rawAnswer(socket, 503, 'TOO_MANY_CONNECTIONS', `this gateway process has ${max} open connections, its limit`, 'retry-after: 1\r\n');
      return;
    }
    this.publicConnections++;
    socket.once('close', () => this.publicConnections--);
    this.metrics.connections.accepted(socket, listener);
    this.acceptGuard?.poke();
    // Until a server takes it (first bytes), no HTTP timeout covers the connection.
    socket.setTimeout(this.config.edge.clientHeaderTimeoutMs, this.silent);
    dispatch.emit('connection', socket);
  }

  private readonly silent = function (this: net.Socket): void {
    this.destroy();
  };

  /** A server took the connection: its own timeouts apply from now on. */
  private readonly taken = (socket: net.Socket): void => {
    // A TLS connection's socket is another than the one accepted: it lingers too.
    lingerOnClose(socket, this.config.edge.lingering);
    socket.off('timeout', this.silent);
    socket.setTimeout(0);
  };

  /** Without Redis, in one process: rewards go to the control plane's memory store. */
  rewardsTo(sink: RewardSink): void {
    if (!this.stores.redis && !cluster.isWorker) this.rewardSink = sink;
  }

  async listen(): Promise<void> {
    const rest = this.rest;
    // fastify owns the HTTP/1.1 server and its lifecycle; proxied paths bypass its router and
    // body parsing (a proxy must not parse or buffer what it forwards).
    this.app = Fastify({
      logger: false,
      // The gateway answers parse errors itself (fastify's default would answer 400 on top of an answer in flight).
      clientErrorHandler: this.http1Edge.clientError,
      // Nothing on the public port answers in fastify's words: a URL its router cannot decode
      // is the proxy's to answer (a 404 or 400 in the gateway's JSON, as without the front end).
      frameworkErrors: (_err, req, reply) => {
        reply.hijack();
        rest.handle(...fromFastify(req, reply));
      },
      // While it closes, fastify would answer 503 with a body of its own: requests are served as before.
      return503OnClosing: false,
      serverFactory: (handler) => {
        const c = this.config.edge;
        this.http1 = createHttpServer(
          {
            // Its requests and responses are the REST exchange's (edge/node-exchange.ts).
            ...NODE_EXCHANGE,
            keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
            // Checked in edge/refusals.ts, so that the 400 has the gateway's JSON body.
            requireHostHeader: false,
            headersTimeout: c.clientHeaderTimeoutMs,
            requestTimeout: c.clientRequestTimeoutMs,
            maxHeaderSize: c.maxHeaderBytes,
            // How often Node checks the two timeouts above (its default, 30 s, would blur them).
            connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(c.clientHeaderTimeoutMs / 4))),
          },
          this.http1Edge.request,
        );
        // fastify serves HTTP/2 compatibility objects as it serves Node's (its types name Node's only).
        this.handler = handler as OwnRoutes;
        // One over the limit, so that edge/refusals.ts can tell a request that reached it (Node drops the rest silently).
        this.http1.maxHeadersCount = c.maxHeadersCount + 1;
        this.http1.on('connect', this.http1Edge.connect);
        return this.http1;
      },
    });
    const oauth = this.oauth;
    // The OAuth front end (docs/routing.md#oauth-front-end), routed here only while some client is registered.
    await this.app.register(async (scope) => {
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      });
      scope.addHook('onClose', async () => oauth.close());
      // Body and content-type problems: an OAuth-style 4xx, never fastify's codes or text.
      scope.setErrorHandler(async (err: { statusCode?: number; code?: string; message?: string }, _req, reply) => {
        const answer = oauth.requestError(err);
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
      });
      scope.post('/oauth/token', async (req, reply) => {
        const body = req.body as Record<string, unknown> | undefined;
        const query = req.query as Record<string, unknown>;
        const grant = body?.['grant_type'] ?? query['grant_type'];
        const answer = await oauth.token(req.headers.authorization, typeof grant === 'string' ? grant : undefined, oauth.clientAddress(req.raw, this.trusts));
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
      });
      scope.get('/ping', async (_req, reply) => reply.type('text/plain').send('pong'));
      scope.get('/ready', async (_req, reply) => reply.type('text/plain').send('ready'));
    });
    // Other methods and paths on fastify's server are the proxy's, their bodies unread (a no-op
    // content-type parser: fastify's would answer 415 or a JSON parse error in its own words).
    await this.app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
      const toProxy = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
        reply.hijack();
        rest.handle(...fromFastify(req, reply));
      };
      scope.all('*', toProxy);
      scope.setNotFoundHandler(toProxy);
    });
    // Whatever else fails in fastify: the gateway's JSON error, never fastify's text.
    this.app.setErrorHandler(async (err: { statusCode?: number }, _req, reply) => {
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      const [reason, info]: [GatewayReason, string] =
        status === 413
          ? ['PAYLOAD_TOO_LARGE', 'the request body is larger than this endpoint accepts']
          : status < 500
            ? ['BAD_REQUEST', 'malformed request']
            : ['INTERNAL_ERROR', 'the gateway failed to handle this request'];
      return reply
        .code(status)
        .type('application/json')
        .send(errorBody(status, reason, info));
    });
    await this.app.ready();
    // This server never listens itself (the public listener hands it sockets), so Node would never
    // start what 'listening' starts: connection tracking and the checks behind headersTimeout and
    // requestTimeout (and closeIdleConnections, used by drain). Say it is listening: it is, through
    // the public listener. (test/edges.test.ts's slow-client cases fail if this stops working.)
    this.http1!.emit('listening');
    this.http1!.on('connection', this.taken);
    this.grpc.server.on('connection', this.taken);
    const dispatch = sniffingServer(this.http1Target(), this.grpc.server, (s) => this.track(s), {
      tls: this.tls,
      refused: (reason) => this.metrics.clientErrors.labels(reason).inc(),
      headerTimeoutMs: this.config.edge.clientHeaderTimeoutMs,
      spoke: (socket, protocol) => this.metrics.connections.spoke(socket, protocol),
    });
    this.publicServer = net.createServer((s) => this.accept(s, dispatch, 'public'));
    this.port = await this.bindPublic(this.publicServer, this.config.listen.port);
    if (this.config.listen.oauthPort !== undefined) {
      // Old API front end clients dial their own port; it takes the same connections as the public one.
      this.oauthServer = net.createServer((s) => this.accept(s, dispatch, 'oauth'));
      this.oauthPort = await this.bindPublic(this.oauthServer, this.config.listen.oauthPort);
    }
    // Pools of deployments that went away must not pile up over thousands of changes.
    this.sweeper = setInterval(() => this.sweepUpstreams(), UPSTREAM_SWEEP_MS);
    this.sweeper.unref();
    if (this.config.listen.grpcPort !== undefined) {
      const grpcOnly = this.grpc.server;
      this.grpcServer = net.createServer((s) => {
        this.track(s);
        this.metrics.connections.accepted(s, 'grpc', 'http2');
        grpcOnly.emit('connection', s);
      });
      this.grpcPort = await this.bindPublic(this.grpcServer, this.config.listen.grpcPort);
    }
    this.guardAccepting().start();
  }

  // ---- accepting under descriptor exhaustion (edge/accept-guard.ts) --------------------------------

  /** Where the data plane logs. */
  readonly logger: Logger | undefined;
  /** Listen with SO_REUSEPORT (cluster.ts decides, where Node supports it): each worker its own socket. */
  readonly reusePort: boolean;
  /** Told when accepting starts or stops failing (a cluster worker tells the primary's /readyz). */
  private readonly acceptChanged: (failing: AcceptFailure | undefined) => void;

  private acceptGuard: AcceptGuard | undefined;

  private guardAccepting(): AcceptGuard {
    return (this.acceptGuard ??= new AcceptGuard({
      metrics: this.metrics,
      log: () => this.logger,
      pause: () => {
        for (const s of this.publicListeners()) if (s.listening) s.close();
      },
      resume: async () => {
        for (const [server, port] of this.publicListenerPorts()) if (!server.listening) await this.bindPublic(server, port);
      },
      changed: (failing) => this.acceptChanged(failing),
      alive: () => !this.rest.draining && !this.grpc.closing,
    }));
  }

  /** Why this process cannot accept connections now (out of descriptors), or undefined. */
  get acceptFailing(): AcceptFailure | undefined {
    return this.acceptGuard?.failing;
  }

  private publicListeners(): net.Server[] {
    return [this.publicServer, this.oauthServer, this.grpcServer].filter((s): s is net.Server => s !== undefined);
  }

  /**
   * Each listener and the port to listen on again: as configured in a cluster worker (port 0 then
   * finds the handle the other workers share), else the one it had.
   */
  private publicListenerPorts(): [net.Server, number][] {
    const again = (configured: number, bound: number | undefined): number => (cluster.isWorker ? configured : (bound ?? configured));
    const out: [net.Server, number][] = [];
    if (this.publicServer) out.push([this.publicServer, again(this.config.listen.port, this.port)]);
    if (this.oauthServer && this.config.listen.oauthPort !== undefined) out.push([this.oauthServer, again(this.config.listen.oauthPort, this.oauthPort)]);
    if (this.grpcServer && this.config.listen.grpcPort !== undefined) out.push([this.grpcServer, again(this.config.listen.grpcPort, this.grpcPort)]);
    return out;
  }

  /** Listen on a public port (again, after a pause); accept errors go to the guard. */
  private bindPublic(server: net.Server, port: number): Promise<number> {
    // Once listening, an 'error' is an accept failure (EMFILE when libuv's reserve is gone too).
    if (server.listenerCount('error') === 0) server.on('error', (err: NodeJS.ErrnoException) => server.listening && this.guardAccepting().noteError(err));
    return new Promise((resolve, reject) => {
      const failed = (err: Error): void => reject(err);
      server.prependOnceListener('error', failed);
      const options: net.ListenOptions & { reusePort?: boolean } = { port, host: this.config.listen.host, ...(this.reusePort ? { reusePort: true } : {}) };
      server.listen(options, () => {
        server.off('error', failed);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  /**
   * Graceful stop: refuse new connections, answer in-flight requests with `connection: close`
   * (HTTP/1) or after GOAWAY (h2), wait up to `graceMs`, then cut what is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.rest.drain();
    this.lane?.drain();
    this.grpc.drain();
    const closed = Promise.all([this.publicServer, this.grpcServer, this.oauthServer].filter((s): s is net.Server => s !== undefined).map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.http1?.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      this.http1?.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const s of this.sockets) s.destroy();
    await closed;
    await this.close();
  }

  /** Close idle upstream pools that no route names any more (deleted or moved deployments). */
  sweepUpstreams(): number {
    const table = this.state.current;
    return this.upstreams.sweep(table) + this.grpc.sweep(table);
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.sockets) s.destroy();
    this.publicServer?.close();
    this.grpcServer?.close();
    this.oauthServer?.close();
    await this.grpc.close();
    this.upstreams.destroy();
    this.gate.close();
    this.stores.close();
    this.tls?.close();
    // Stops Node's connection checks (started by hand in listen()).
    this.http1?.close();
    await this.app?.close().catch(() => undefined);
  }
}
