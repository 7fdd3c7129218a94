/**
 * The data plane of one process: the public listener (REST + h2c gRPC), the optional gRPC-only
 * port, upstream pools, mirrors and the proxies, all reading one `RouteState`.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type net from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { GatewayConfig } from './config.js';
import { GrpcProxy } from './grpc-proxy.js';
import { sniffingServer } from './listener.js';
import { GatewayMetrics } from './metrics.js';
import { RestProxy } from './rest-proxy.js';
import { RouteState } from './route-state.js';
import { MirrorBudget, RestMirrors } from './shadow.js';
import { Upstreams } from './upstreams.js';
import { randomPicker, roundRobinPicker, seededRandom } from '../routing/pick.js';
import type { Picker } from '../routing/types.js';

export function pickerFor(config: Pick<GatewayConfig, 'balance' | 'randomSeed'>): Picker {
  const random = config.randomSeed === undefined ? Math.random : seededRandom(config.randomSeed);
  return config.balance === 'round-robin' ? roundRobinPicker(random) : randomPicker(random);
}

function listen(server: net.Server | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

export class DataPlane {
  readonly state: RouteState;
  readonly metrics: GatewayMetrics;
  readonly upstreams: Upstreams;
  readonly rest: RestProxy;
  readonly grpc: GrpcProxy;
  private app: FastifyInstance | undefined;
  private http1: HttpServer | undefined;
  private publicServer: net.Server | undefined;
  private grpcServer: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  grpcPort: number | undefined;

  constructor(
    private readonly config: GatewayConfig,
    metrics?: GatewayMetrics,
  ) {
    this.state = new RouteState(config.compile);
    this.metrics = metrics ?? new GatewayMetrics();
    const ca = config.upstreamCa ? readFileSync(config.upstreamCa) : undefined;
    this.upstreams = new Upstreams({ resolve: config.resolve, connectTimeoutMs: config.connectTimeoutMs, tlsVerify: config.upstreamTlsVerify, caFile: config.upstreamCa });
    const budget = new MirrorBudget(config.shadowMaxInFlight);
    const picker = pickerFor(config);
    this.rest = new RestProxy({
      state: this.state,
      picker,
      upstreams: this.upstreams,
      mirrors: new RestMirrors(this.upstreams, budget, config.shadowMaxBodyBytes, this.metrics),
      metrics: this.metrics,
      retryBufferBytes: config.retryBufferBytes,
    });
    this.grpc = new GrpcProxy({
      state: this.state,
      picker,
      metrics: this.metrics,
      budget,
      resolve: config.resolve,
      connectTimeoutMs: config.connectTimeoutMs,
      tlsVerify: config.upstreamTlsVerify,
      ...(ca ? { ca } : {}),
      shadowMaxBodyBytes: config.shadowMaxBodyBytes,
      retryBufferBytes: config.retryBufferBytes,
    });
  }

  async listen(): Promise<void> {
    const rest = this.rest;
    // fastify owns the HTTP/1.1 server and its lifecycle; proxied paths bypass its router and
    // body parsing (a proxy must not parse or buffer what it forwards).
    this.app = Fastify({
      logger: false,
      serverFactory: (handler) => {
        this.http1 = createHttpServer({ keepAliveTimeout: 65_000, headersTimeout: 60_000, requestTimeout: 0 }, (req, res) => {
          if (req.url !== undefined && req.url.charCodeAt(0) === 47 /* / */ && !req.url.startsWith('/oauth/')) rest.handle(req, res);
          else handler(req, res);
        });
        return this.http1;
      },
    });
    this.app.all('*', async (req, reply) => {
      reply.hijack();
      rest.handle(req.raw, reply.raw);
    });
    await this.app.ready();
    this.publicServer = sniffingServer(this.http1!, this.grpc.server, (s) => this.track(s));
    this.port = await listen(this.publicServer, this.config.port, this.config.host);
    if (this.config.grpcPort !== undefined) {
      const grpcOnly = this.grpc.server;
      this.grpcServer = (await import('node:net')).createServer((s) => {
        this.track(s);
        grpcOnly.emit('connection', s);
      });
      this.grpcPort = await listen(this.grpcServer, this.config.grpcPort, this.config.host);
    }
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
    this.rest.draining = true;
    this.grpc.drain();
    const closed = Promise.all(
      [this.publicServer, this.grpcServer].filter((s): s is net.Server => s !== undefined).map((s) => new Promise<void>((r) => s.close(() => r()))),
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

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.publicServer?.close();
    this.grpcServer?.close();
    await this.grpc.close();
    this.upstreams.destroy();
    await this.app?.close().catch(() => undefined);
  }
}
