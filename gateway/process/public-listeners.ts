/**
 * The data plane's listening sockets: the public port (REST and h2c gRPC, sniffed by
 * edge/listener.ts), the old API front end's `--oauth-port`, and the gRPC-only `--grpc-port`.
 * Accepting: connections over --max-connections are answered 503 and closed; a connection that
 * sends nothing is closed after the header timeout, until a server takes it. Out of descriptors,
 * the accept guard (edge/accept-guard.ts) pauses the listeners and binds them again. Every socket
 * is tracked, so that a drain can wait for them and a close can cut them.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import type { Logger } from 'pino';
import { AcceptGuard, type AcceptFailure } from '../edge/accept-guard.js';
import { rawAnswer } from '../edge/http-answer.js';
import { lingerOnClose } from '../edge/lingering-close.js';
import type { EdgeConfig } from '../config/edge.js';
import type { ListenConfig } from '../config/listen.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { BODY_SOCKET_HIGH_WATER_MARK } from '../wire/socket-buffers.js';

export interface PublicListenersDeps {
  readonly listen: ListenConfig;
  readonly edge: EdgeConfig;
  readonly metrics: GatewayMetrics;
  readonly log: Logger | undefined;
  /** Listen with SO_REUSEPORT (cluster.ts decides, where Node supports it): each worker its own socket. */
  readonly reusePort: boolean;
  /** Told when accepting starts or stops failing (a cluster worker tells the primary's /readyz). */
  readonly changed: (failing: AcceptFailure | undefined) => void;
  /** Whether the data plane still serves (not draining): the guard resumes only then. */
  readonly alive: () => boolean;
}

export class PublicListeners {
  private publicServer: net.Server | undefined;
  private grpcServer: net.Server | undefined;
  private oauthServer: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Open connections on the public port (for --max-connections). */
  private publicConnections = 0;
  private acceptGuard: AcceptGuard | undefined;
  port = 0;
  grpcPort: number | undefined;
  oauthPort: number | undefined;

  constructor(private readonly d: PublicListenersDeps) {}

  /** Open connections (the public port's and --grpc-port's). */
  get open(): number {
    return this.sockets.size;
  }

  /** Listen on the public port (and --oauth-port), handing each accepted connection to `dispatch`. */
  async listenPublic(dispatch: net.Server): Promise<void> {
    this.publicServer = net.createServer({ highWaterMark: BODY_SOCKET_HIGH_WATER_MARK }, (s) => this.accept(s, dispatch, 'public'));
    this.port = await this.bind(this.publicServer, this.d.listen.port);
    if (this.d.listen.oauthPort !== undefined) {
      // Old API front end clients dial their own port; it takes the same connections as the public one.
      this.oauthServer = net.createServer({ highWaterMark: BODY_SOCKET_HIGH_WATER_MARK }, (s) => this.accept(s, dispatch, 'oauth'));
      this.oauthPort = await this.bind(this.oauthServer, this.d.listen.oauthPort);
    }
  }

  /** Listen on --grpc-port (when set): its connections go straight to the gRPC server. */
  async listenGrpc(grpc: net.Server): Promise<void> {
    if (this.d.listen.grpcPort === undefined) return;
    this.grpcServer = net.createServer((s) => {
      this.track(s);
      this.d.metrics.connections.accepted(s, 'grpc', 'http2');
      grpc.emit('connection', s);
    });
    this.grpcPort = await this.bind(this.grpcServer, this.d.listen.grpcPort);
  }

  /** Start watching accept failures (after the first bind). */
  guard(): void {
    this.guardAccepting().start();
  }

  /** Public-port connections: refused over --max-connections; closed if silent for the header timeout. */
  private accept(socket: net.Socket, dispatch: net.Server, listener: 'public' | 'oauth'): void {
    lingerOnClose(socket, this.d.edge.lingering);
    const max = this.d.edge.maxConnections;
    if (max > 0 && this.publicConnections >= max) {
      this.d.metrics.clientErrors.labels('too_many_connections').inc();
      socket.on('error', () => socket.destroy());
      socket.resume();
      rawAnswer(socket, 503, 'TOO_MANY_CONNECTIONS', `this gateway process has ${max} open connections, its limit`, 'retry-after: 1\r\n');
      return;
    }
    this.publicConnections++;
    socket.once('close', () => this.publicConnections--);
    this.d.metrics.connections.accepted(socket, listener);
    this.acceptGuard?.poke();
    // Until a server takes it (first bytes), no HTTP timeout covers the connection.
    socket.setTimeout(this.d.edge.clientHeaderTimeoutMs, this.silent);
    dispatch.emit('connection', socket);
  }

  private readonly silent = function (this: net.Socket): void {
    this.destroy();
  };

  /** A server took the connection: its own timeouts apply from now on. */
  readonly taken = (socket: net.Socket): void => {
    // A TLS connection's socket is another than the one accepted: it lingers too.
    lingerOnClose(socket, this.d.edge.lingering);
    socket.off('timeout', this.silent);
    socket.setTimeout(0);
  };

  /** Count a connection among those a drain waits for and a close cuts. */
  readonly track = (s: net.Socket): void => {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  };

  // ---- accepting under descriptor exhaustion (edge/accept-guard.ts) --------------------------------

  private guardAccepting(): AcceptGuard {
    return (this.acceptGuard ??= new AcceptGuard({
      metrics: this.d.metrics,
      log: () => this.d.log,
      pause: () => {
        for (const s of this.servers()) if (s.listening) s.close();
      },
      resume: async () => {
        for (const [server, port] of this.serverPorts()) if (!server.listening) await this.bind(server, port);
      },
      changed: (failing) => this.d.changed(failing),
      alive: this.d.alive,
    }));
  }

  /** Why this process cannot accept connections now (out of descriptors), or undefined. */
  get acceptFailing(): AcceptFailure | undefined {
    return this.acceptGuard?.failing;
  }

  private servers(): net.Server[] {
    return [this.publicServer, this.oauthServer, this.grpcServer].filter((s): s is net.Server => s !== undefined);
  }

  /**
   * Each listener and the port to listen on again: as configured in a cluster worker (port 0 then
   * finds the handle the other workers share), else the one it had.
   */
  private serverPorts(): [net.Server, number][] {
    const listen = this.d.listen;
    const again = (configured: number, bound: number | undefined): number => (cluster.isWorker ? configured : (bound ?? configured));
    const out: [net.Server, number][] = [];
    if (this.publicServer) out.push([this.publicServer, again(listen.port, this.port)]);
    if (this.oauthServer && listen.oauthPort !== undefined) out.push([this.oauthServer, again(listen.oauthPort, this.oauthPort)]);
    if (this.grpcServer && listen.grpcPort !== undefined) out.push([this.grpcServer, again(listen.grpcPort, this.grpcPort)]);
    return out;
  }

  /** Listen on a public port (again, after a pause); accept errors go to the guard. */
  private bind(server: net.Server, port: number): Promise<number> {
    // Once listening, an 'error' is an accept failure (EMFILE when libuv's reserve is gone too).
    if (server.listenerCount('error') === 0) server.on('error', (err: NodeJS.ErrnoException) => server.listening && this.guardAccepting().noteError(err));
    return new Promise((resolve, reject) => {
      const failed = (err: Error): void => reject(err);
      server.prependOnceListener('error', failed);
      const options: net.ListenOptions & { reusePort?: boolean } = { port, host: this.d.listen.host, ...(this.d.reusePort ? { reusePort: true } : {}) };
      server.listen(options, () => {
        server.off('error', failed);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** Stop accepting; resolves once every listener has closed. */
  stopAccepting(): Promise<void> {
    return Promise.all(this.servers().map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
  }

  /** Cut every connection still open. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): void {
    this.cut();
    for (const s of this.servers()) s.close();
  }
}
