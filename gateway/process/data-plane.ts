/**
 * The data plane of one process: the public listener (REST + h2c gRPC), the optional gRPC-only
 * port, upstream pools, mirrors and the proxies, all reading one `RouteState`; the OAuth front
 * end and the gate (auth, rate limits) with their stores.
 *
 * The HTTP/1.1 edge is hardened: Node's parser refuses smuggling shapes (Content-Length with
 * Transfer-Encoding, differing or repeated Content-Length, obsolete line folding, bad methods,
 * malformed chunked bodies) with 400; the gateway adds 400 for a repeated Host, a Transfer-Encoding
 * that does not end in chunked or a Content_Length / Transfer_Encoding field, 405 for TRACE and
 * CONNECT, 413 over --max-body, 431 over --max-header-size, 408 for headers or requests slower
 * than --client-header-timeout / --client-request-timeout, and 503 for connections over
 * --max-connections. A connection that sends nothing is closed after the header timeout. Each is
 * answered on that connection only, with a JSON body, and closed; requests pipelined behind it
 * are never served (edge/http1-pipeline.ts). Nothing on the public port answers in fastify's words.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import cluster from 'node:cluster';
import net from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AcceptGuard, type AcceptFailure } from '../edge/accept-guard.js';
import { addTrustedProxy, type EdgeConfig, type GatewayConfig, type UpstreamConfig } from '../config.js';
import { errorBody, type GatewayReason } from '../edge/errors.js';
import { rawAnswer, sendError } from '../edge/http-answer.js';
import { isLingering, lingerOnClose, lingeringClose } from '../edge/lingering-close.js';
import { GrpcProxy } from '../grpc/proxy.js';
import { sniffingServer, type Http1Target } from '../edge/listener.js';
import { Http1Lane, type LaneHandler } from '../edge/http1-lane.js';
import { Http1Pipelines } from '../edge/http1-pipeline.js';
import { FRAMING_LOOKALIKE } from '../edge/http1-syntax.js';
import { TlsTermination } from '../edge/tls.js';
import { GatewayMetrics } from '../observe/metrics.js';
import { OAuth } from '../auth/oauth.js';
import { Gatekeeper } from '../auth/gate.js';
import { externalAuth } from '../auth/ext-auth-service.js';
import { createStores, type Stores } from '../auth/stores.js';
import { RateLimiter } from '../auth/rate-limit.js';
import { RestProxy, SMALL_BODY_BYTES } from '../rest/proxy.js';
import { H2Rest } from '../rest/h2.js';
import type { DataPlaneObservers } from '../observe/observed.js';
import { RouteState } from './route-state.js';
import { RestMirrors } from '../rest/mirrors.js';
import { MirrorBudget } from '../upstream/mirror-budget.js';
import { Upstreams, type EndpointSource } from '../upstream/pools.js';
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

/**
 * An absolute-form request target (`POST http://host/seldon/...`, RFC 9112 §3.2.2) is served as
 * its origin form, with the target's authority as the Host (the received Host is ignored).
 */
function absoluteForm(req: IncomingMessage): void {
  const m = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(req.url!);
  if (m === null) return;
  const authority = m[1]!.slice(m[1]!.lastIndexOf('@') + 1);
  const path = m[2]!;
  req.url = path.startsWith('/') ? path : `/${path}`;
  const raw = req.rawHeaders;
  let replaced = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') {
      if (replaced) {
        raw.splice(i, 2);
        i -= 2;
      } else raw[i + 1] = authority;
      replaced = true;
    }
  }
  if (!replaced) raw.push('Host', authority);
  req.headers.host = authority;
}

/** How long an idle client connection is kept between requests (longer than common client pools' own idle timeouts). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const CLIENT_ERRORS: Record<string, [number, GatewayReason, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'HEADERS_TOO_LARGE', 'headers_too_large', 'the request head is larger than the gateway accepts'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'REQUEST_TIMEOUT', 'request_timeout', 'the request was not received in time'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'PAYLOAD_TOO_LARGE', 'body_too_large', 'chunk extensions are too large'],
};

const UPSTREAM_SWEEP_MS = 60_000;
/** The paths fastify serves (the OAuth front end's token endpoint and probes), with any query. */
const OWN_ROUTES = /^\/(?:oauth\/token|ping|ready)(?:\?|$)/;

/** How a data plane is set up beyond its configuration (all optional). */
export interface DataPlaneOptions {
  /** Listen with SO_REUSEPORT (cluster.ts decides, where Node supports it): each worker its own socket. */
  readonly reusePort?: boolean;
  /** Told when accepting starts or stops failing (a cluster worker tells the primary's /readyz). */
  readonly changed?: (failing: AcceptFailure | undefined) => void;
  /** Predictor header, access log, shadow comparison (observe/observed.ts), built first; none when absent. */
  readonly observers?: DataPlaneObservers;
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
  private http1: HttpServer | undefined;
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
    /** Ready pod endpoints per Service (EndpointSlices), when endpoint routing is on. */
    endpoints?: EndpointSource,
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
    });
  }

  /**
   * Requests refused before routing: repeated Host, a Transfer-Encoding not ending in chunked,
   * a framing field's look-alike, TRACE, a body over --max-body (by Content-Length at once, or as
   * a chunked body streams).
   */
  private refused(req: IncomingMessage, res: ServerResponse): boolean {
    const refuse = (status: number, reason: GatewayReason, label: string, info: string, extra?: Record<string, string>): true => {
      this.metrics.clientErrors.labels(label).inc();
      sendError(req, res, status, reason, info, { connection: 'close', ...extra });
      return true;
    };
    if (req.method === 'TRACE') return refuse(405, 'METHOD_NOT_ALLOWED', 'method_not_allowed', 'TRACE is not allowed', { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' });
    const raw = req.rawHeaders;
    let hosts = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return refuse(400, 'BAD_REQUEST', 'bad_request', 'more than one Host header');
      if ((name.length === 14 || name.length === 17) && FRAMING_LOOKALIKE.test(name)) {
        return refuse(400, 'BAD_REQUEST', 'bad_request', `a "${name}" header is refused: a server that reads "_" as "-" would frame the body by it`);
      }
    }
    if (hosts === 0 && req.httpVersionMinor === 1) return refuse(400, 'BAD_REQUEST', 'bad_request', 'an HTTP/1.1 request needs a Host header');
    // Node's parser stops keeping header lines past maxHeadersCount (set one over the limit): refuse, never truncate.
    if (raw.length / 2 > this.config.edge.maxHeadersCount) {
      return refuse(431, 'HEADERS_TOO_LARGE', 'headers_too_large', `the request has more than ${this.config.edge.maxHeadersCount} header lines`);
    }
    const te = req.headers['transfer-encoding'];
    if (te !== undefined) {
      if (!/(?:^|,)[ \t]*chunked[ \t]*$/i.test(te)) return refuse(400, 'BAD_REQUEST', 'bad_request', `Transfer-Encoding "${te}" does not end in chunked`);
      // Like Envoy and nginx: a transfer coding other than chunked is not implemented (never forwarded as if plain).
      if (!/^[ \t]*chunked[ \t]*$/i.test(te)) return refuse(501, 'NOT_IMPLEMENTED', 'not_implemented', `Transfer-Encoding "${te}" is not implemented: only chunked is`);
    }
    const max = this.config.edge.maxBodyBytes;
    if (max === 0) return false;
    const cl = req.headers['content-length'];
    if (cl !== undefined) return Number(cl) > max ? refuse(413, 'PAYLOAD_TOO_LARGE', 'body_too_large', `the request body (${cl} bytes) is larger than ${max} bytes`) : false;
    if (te !== undefined) {
      // A chunked body is counted as Node's parser hands it over; over the limit, it is answered
      // 413 (unless an answer has started: then it is cut) and nothing more of it is passed on,
      // not even its end: what was already streamed to the model never arrives whole (the
      // upstream request is aborted when the answer closes). The rest is read and dropped.
      let size = 0;
      let over = false;
      const push = req.push;
      req.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
        if (over) return true;
        if (chunk !== null && chunk !== undefined) {
          size += (chunk as Buffer).length;
          if (size > max) {
            over = true;
            if (res.headersSent) res.destroy();
            else refuse(413, 'PAYLOAD_TOO_LARGE', 'body_too_large', `the request body is larger than ${max} bytes`);
            return true;
          }
        }
        return push.call(req, chunk, encoding);
      };
    }
    return false;
  }

  /** fastify's handler: the gateway's own routes (the token endpoint, /ping, /ready), set when listen() builds it. */
  private handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  /**
   * A REST request of either HTTP version (HTTP/2 through rest/h2.ts): the edge checks, then the
   * proxy, the OAuth front end or the gateway's own routes.
   */
  private readonly serve = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.refused(req, res)) {
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
   * already passed the edge checks of `refused`; the gateway's own routes stay with fastify.
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
      timedOut: (socket) => this.clientError(Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket),
    }));
    return (socket) => {
      this.taken(socket);
      lane.connection(socket);
    };
  }

  /** A request the gateway's own routes answer (the token endpoint, /ping): in the access log too. */
  private served(req: IncomingMessage, res: ServerResponse, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
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

  /**
   * Node's parser refused what it read (or a request timed out): the edge's answer, then the
   * connection closes. Where the answer goes (the request being served, after the answers before
   * it, or the bare socket now) is the pipeline's call (edge/http1-pipeline.ts).
   */
  private readonly clientError = (err: Error & { code?: string }, socket: net.Socket): void => {
    // Its lingering close reads and drops the rest: the parser's end-of-input error is no request's.
    if (isLingering(socket)) return;
    if (err.code === 'HPE_CLOSED_CONNECTION') {
      // Bytes after `Connection: close`: nothing to serve or answer; an answer still coming goes first.
      if (!this.pipelines.refuse(socket, null)) lingeringClose(socket);
      return;
    }
    const known = err.code ? CLIENT_ERRORS[err.code] : undefined;
    if (known === undefined && err.code?.startsWith('HPE_') !== true) {
      socket.destroy();
      return;
    }
    const [status, reason, label, info] = known ?? [400, 'BAD_REQUEST', 'bad_request', `malformed request (${err.code})`];
    this.metrics.clientErrors.labels(label).inc();
    const refusal = { status, reason, info };
    if (this.pipelines.refuse(socket, refusal)) return;
    if (socket.writable) rawAnswer(socket, status, reason, info);
    else socket.destroy();
  };

  /** Without Redis, in one process: rewards go to the control plane's memory store. */
  rewardsTo(sink: RewardSink): void {
    if (!this.stores.redis && !cluster.isWorker) this.rewardSink = sink;
  }

  /** Node's server's requests, one at a time per connection, none after an answer that closes it. */
  private readonly pipelines = new Http1Pipelines({
    serve: (req, res) => {
      if (req.url !== undefined && req.url.charCodeAt(0) !== 47 /* / */) absoluteForm(req);
      this.serve(req, res);
    },
    // The request's own exchange (the proxy's, fastify's) logs it and sees its answer close. No
    // Date: the answer reads as the lane's and the bare socket's (rawAnswer) do.
    respond: (req, res, r) => {
      res.sendDate = false;
      sendError(req, res, r.status, r.reason, r.info, { connection: 'close' });
    },
    answer: (socket, r) => rawAnswer(socket, r.status, r.reason, r.info),
  });

  async listen(): Promise<void> {
    const rest = this.rest;
    // fastify owns the HTTP/1.1 server and its lifecycle; proxied paths bypass its router and
    // body parsing (a proxy must not parse or buffer what it forwards).
    this.app = Fastify({
      logger: false,
      // The gateway answers parse errors itself (fastify's default would answer 400 on top of an answer in flight).
      clientErrorHandler: this.clientError,
      // Nothing on the public port answers in fastify's words: a URL its router cannot decode
      // is the proxy's to answer (a 404 or 400 in the gateway's JSON, as without the front end).
      frameworkErrors: (_err, req, reply) => {
        reply.hijack();
        rest.handle(req.raw, reply.raw);
      },
      // While it closes, fastify would answer 503 with a body of its own: requests are served as before.
      return503OnClosing: false,
      serverFactory: (handler) => {
        const c = this.config.edge;
        this.http1 = createHttpServer(
          {
            keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
            // Checked in refused(), so that the 400 has the gateway's JSON body.
            requireHostHeader: false,
            headersTimeout: c.clientHeaderTimeoutMs,
            requestTimeout: c.clientRequestTimeoutMs,
            maxHeaderSize: c.maxHeaderBytes,
            // How often Node checks the two timeouts above (its default, 30 s, would blur them).
            connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(c.clientHeaderTimeoutMs / 4))),
          },
          this.pipelines.request,
        );
        this.handler = handler;
        // One over the limit, so that refused() can tell a request that reached it (Node drops the rest silently).
        this.http1.maxHeadersCount = c.maxHeadersCount + 1;
        this.http1.on('connect', (_req: IncomingMessage, socket: net.Socket) => {
          this.metrics.clientErrors.labels('method_not_allowed').inc();
          rawAnswer(socket, 405, 'METHOD_NOT_ALLOWED', 'CONNECT is not allowed: this is a reverse proxy', 'allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n');
        });
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
        rest.handle(req.raw, reply.raw);
      };
      scope.all('*', toProxy);
      scope.setNotFoundHandler(toProxy);
    });
    // Whatever else fails in fastify: the gateway's JSON error, never fastify's text.
    this.app.setErrorHandler(async (err: { statusCode?: number }, _req, reply) => {
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      const [reason, info]: [GatewayReason, string] =
        status === 413 ? ['PAYLOAD_TOO_LARGE', 'the request body is larger than this endpoint accepts'] : status < 500 ? ['BAD_REQUEST', 'malformed request'] : ['INTERNAL_ERROR', 'the gateway failed to handle this request'];
      return reply.code(status).type('application/json').send(errorBody(status, reason, info));
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
    const closed = Promise.all(
      [this.publicServer, this.grpcServer, this.oauthServer].filter((s): s is net.Server => s !== undefined).map((s) => new Promise<void>((r) => s.close(() => r()))),
    );
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
