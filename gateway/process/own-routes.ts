/**
 * The gateway's own routes on the public port, and Node's HTTP/1.1 server that carries them:
 * fastify serves exactly the OAuth front end's token endpoint (`/oauth/token`) and the probes
 * (`/ping`, `/ready`); every other method and path on its router goes to the proxy, bodies unread,
 * and nothing on the public port answers in fastify's words (the proxy's JSON, or the gateway's
 * own error body).
 *
 * fastify is loaded at the first request for one of these routes, not before: with ajv, avvio and
 * find-my-way it is about 5.5 MB of a worker's live heap, which every full collection marks again
 * (load/README.md, large: on gRPC's 1 MiB row the collector's threads are the gateway's largest
 * excess over a Node floor), and Kubernetes probes the admin port, not these. Node's HTTP/1.1 server
 * is the gateway's own from the start; fastify gets one that never listens.
 */
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpServer } from '../wire/node-http.js';
import type net from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EdgeConfig } from '../config/edge.js';
import { errorBody, type GatewayReason } from '../edge/errors.js';
import { sendError } from '../edge/http-answer.js';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import type { H2Request, H2Response } from '../edge/h2-exchange.js';
import type { Http1Edge } from '../edge/http1-edge.js';
import { NODE_EXCHANGE, type NodeRequest, type NodeResponse } from '../edge/node-exchange.js';
import type { OAuth } from '../auth/oauth.js';
import type { WebSocketRelay } from '../rest/websocket-relay.js';

/** How long an idle client connection is kept between requests (longer than common client pools' own idle timeouts). */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Node's HTTP/1.1 server, whose requests and responses are the REST exchange's (edge/node-exchange.ts). */
export type NodeServer = HttpServer<typeof NodeRequest, typeof NodeResponse>;
/** fastify's handler, given the REST requests that are the gateway's own routes (of either HTTP version). */
export type OwnRoutesHandler = (req: NodeRequest | H2Request, res: NodeResponse | H2Response) => void;

/**
 * The exchange fastify hands back to the proxy: its raw objects are the ones its handler was given,
 * made by edge/node-exchange.ts (or edge/h2-exchange.ts); its types name Node's base classes.
 */
const fromFastify = (req: FastifyRequest, reply: FastifyReply): [RestRequest, RestResponse] => [req.raw as NodeRequest, reply.raw as NodeResponse];

export interface OwnRoutesDeps {
  readonly edge: EdgeConfig;
  /** The edge policy of Node's HTTP/1.1 server (parse errors, CONNECT, its request handler). */
  readonly http1Edge: Http1Edge;
  readonly oauth: OAuth;
  /** Whether a peer may set X-Forwarded-For (the token endpoint's throttle reads the client's address). */
  readonly trusts: (socket: net.Socket) => boolean;
  /** The REST proxy, for everything that is not an own route. */
  readonly proxy: (req: RestRequest, res: RestResponse) => void;
  /** WebSocket upgrades on the routes that allow them (rest/websocket-relay.ts); every other upgrade request is served as a request. */
  readonly upgrades: WebSocketRelay;
}

export class OwnRoutes {
  /** Node's HTTP/1.1 server (it never listens itself: the public listener hands it sockets). */
  readonly http1: NodeServer;
  /** fastify's handler, once loaded. */
  private served: OwnRoutesHandler | undefined;
  private loading: Promise<FastifyInstance> | undefined;

  constructor(private readonly d: OwnRoutesDeps) {
    const c = d.edge;
    this.http1 = createHttpServer(
      {
        // Its requests and responses are the REST exchange's (edge/node-exchange.ts).
        ...NODE_EXCHANGE,
        keepAliveTimeout: c.connectionIdleMs ?? KEEP_ALIVE_TIMEOUT_MS,
        // Checked in edge/refusals.ts, so that the 400 has the gateway's JSON body.
        requireHostHeader: false,
        headersTimeout: c.clientHeaderTimeoutMs,
        requestTimeout: c.clientRequestTimeoutMs,
        maxHeaderSize: c.maxHeaderBytes,
        // How often Node checks the two timeouts above (its default, 30 s, would blur them).
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(c.clientHeaderTimeoutMs / 4))),
        shouldUpgradeCallback: d.upgrades.should,
      },
      d.http1Edge.request,
    );
    // One over the limit, so that edge/refusals.ts can tell a request that reached it (Node drops the rest silently).
    this.http1.maxHeadersCount = c.maxHeadersCount + 1;
    // The gateway answers parse errors itself (Node's default would answer 400 on top of an answer in flight).
    this.http1.on('clientError', d.http1Edge.clientError);
    this.http1.on('connect', d.http1Edge.connect);
    this.http1.on('upgrade', d.upgrades.upgrade);
  }

  /** The own routes, for HTTP/1.1 and HTTP/2 requests alike: fastify's handler, loaded at the first. */
  readonly handler: OwnRoutesHandler = (req, res) => {
    if (this.served !== undefined) return this.served(req, res);
    // Node keeps the body until it is read, over either HTTP version: the request waits whole.
    this.app().then(
      () => this.served!(req, res),
      () => sendError(req, res, 500, 'INTERNAL_ERROR', 'the gateway failed to handle this request'),
    );
  };

  private app(): Promise<FastifyInstance> {
    return (this.loading ??= this.load());
  }

  private async load(): Promise<FastifyInstance> {
    const { default: Fastify } = await import('fastify');
    const d = this.d;
    const app = Fastify({
      logger: false,
      // Nothing on the public port answers in fastify's words: a URL its router cannot decode
      // is the proxy's to answer (a 404 or 400 in the gateway's JSON, as without the front end).
      frameworkErrors: (_err, req, reply) => {
        reply.hijack();
        d.proxy(...fromFastify(req, reply));
      },
      // While it closes, fastify would answer 503 with a body of its own: requests are served as before.
      return503OnClosing: false,
      // fastify routes what the gateway's server hands it; its own server never listens.
      serverFactory: (h) => {
        // fastify serves HTTP/2 compatibility objects as it serves Node's (its types name Node's only).
        this.served = h as OwnRoutesHandler;
        return createHttpServer();
      },
    });
    this.oauthRoutes(app, d.oauth, d.trusts);
    this.proxied(app, d.proxy);
    // Whatever else fails in fastify: the gateway's JSON error, never fastify's text.
    app.setErrorHandler(async (err: { statusCode?: number }, _req, reply) => {
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
    await app.ready();
    return app;
  }

  /** The OAuth front end (docs/routing.md#oauth-front-end), routed here only while some client is registered; and the probes. */
  private oauthRoutes(app: FastifyInstance, oauth: OAuth, trusts: (socket: net.Socket) => boolean): void {
    void app.register(async (scope) => {
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
        const answer = await oauth.token(req.headers.authorization, typeof grant === 'string' ? grant : undefined, oauth.clientAddress(req.raw, trusts));
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
      });
      scope.get('/ping', async (_req, reply) => reply.type('text/plain').send('pong'));
      scope.get('/ready', async (_req, reply) => reply.type('text/plain').send('ready'));
    });
  }

  /**
   * Other methods and paths on fastify's server are the proxy's, their bodies unread (a no-op
   * content-type parser: fastify's would answer 415 or a JSON parse error in its own words).
   */
  private proxied(app: FastifyInstance, proxy: (req: RestRequest, res: RestResponse) => void): void {
    void app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
      const toProxy = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
        reply.hijack();
        proxy(...fromFastify(req, reply));
      };
      scope.all('*', toProxy);
      scope.setNotFoundHandler(toProxy);
    });
  }

  /** Say Node's server is listening (it is, through the public listener). */
  ready(): void {
    // This server never listens itself (the public listener hands it sockets), so Node would never
    // start what 'listening' starts: connection tracking and the checks behind headersTimeout and
    // requestTimeout (and closeIdleConnections, used by drain). Say it is listening: it is, through
    // the public listener. (test/gateway/edge/hardened-edge.test.ts's slow-client cases fail if this stops working.)
    this.http1.emit('listening');
  }

  async close(): Promise<void> {
    // Stops Node's connection checks (started by hand in ready()).
    this.http1.close();
    const app = await this.loading?.catch(() => undefined);
    // fastify's onClose closes the OAuth front end; without fastify it is closed here.
    if (app === undefined) this.d.oauth.close();
    else await app.close().catch(() => undefined);
  }
}
