/**
 * The REST upstream client: a pool of keep-alive HTTP/1.1 connections to one address, each
 * carrying one request at a time. It does what a proxy needs and nothing else, because the
 * client was most of the REST hot path's cost (`npm run bench -- floor`).
 *
 * Algorithm:
 * - `dispatch` hands the request to the most recently idle connection (LIFO keeps few warm);
 *   else opens one, up to `connections`; else queues it (FIFO) for the next to come free.
 * - A request is written in one write: the head (method, path, the caller's headers in their
 *   order and case, then the framing: `host` if absent, `content-length` or chunked, and
 *   `connection: keep-alive`) and a buffered body. A stream body follows with backpressure.
 *   Names and values that could split the head (CR, LF, NUL, chars over 0xFF) are refused.
 * - The answer is parsed by http1-response.ts and passed on as it arrives: the head (with the
 *   Content-Length it may be forwarded with), then body slices (`false` from the handler pauses
 *   reading until `attempt.resume()`).
 * - A connection is reused only after an answer that ended cleanly, on a request that was
 *   written whole, that the server keeps open, with no bytes after it, and younger than
 *   `maxLifetimeMs`. Idle, it closes after `keepAliveMs`, or one second before the server's own
 *   `Keep-Alive: timeout`, or when it reaches `maxLifetimeMs`.
 * - One timer per connection, re-armed per phase (connect, answer head, body gaps, idle).
 * - A request whose reused connection the server resets before any byte of an answer is sent
 *   once more, on a new connection, when its body is buffered. A reset means the server closed
 *   with the request unread: it closed the connection as idle (its keep-alive timeout; gunicorn,
 *   Seldon's Python server, checks it only between reads, so the race is wide) or went away. A
 *   close without a reset, or a reset on a new connection, is the request's failure.
 *
 * Errors reach `onError` once, with a code: the socket's (`ECONNREFUSED`, `ECONNRESET`, TLS
 * codes), or `UPSTREAM_*` below. After `onComplete` or `onError` the handler hears nothing more.
 */
import net from 'node:net';
import type tls from 'node:tls';
import { Connection, Task, type PoolSide, type ResponseHandler, type UpstreamAttempt } from './http1-connection.js';
import { UpstreamError, declaredLength, framingLine, isStream, requestHead, type UpstreamRequest } from './request-head.js';

export type { ResponseHandler, UpstreamAttempt };
export type { ResponseHead } from '../wire/response-head.js';

export interface PoolOptions {
  readonly host: string;
  readonly port: number;
  /** TLS to the upstream (servername, ca, rejectUnauthorized); absent: cleartext. */
  readonly tls?: tls.ConnectionOptions | undefined;
  /** Most connections open at once. */
  readonly connections: number;
  readonly connectTimeoutMs: number;
  /** Largest answer head (status line and headers) accepted. */
  readonly maxHeadBytes: number;
  /** How long a connection stays open idle (default 60 s). */
  readonly keepAliveMs?: number;
  /** How long a connection is used at most from its connect (a Mapping's `cluster_max_connection_lifetime_ms`); absent or 0: no bound. */
  readonly maxLifetimeMs?: number | undefined;
  /** A request is being sent again after its reused connection was reset (for a metric). */
  readonly replayed?: (() => void) | undefined;
}

const KEEP_ALIVE_MS = 60_000;
const HOSTNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;

const NOT_SENT: UpstreamAttempt = { abort: () => undefined, resume: () => undefined, passed: () => undefined };

export class Http1Pool implements PoolSide {
  /** The Host header for requests that carry none. */
  readonly hostHeader: string;
  readonly keepAliveMs: number;
  readonly maxLifetimeMs: number;
  /** The last TLS session, offered to the next connection (resumption). */
  tlsSession: Buffer | undefined;
  private readonly all = new Set<Connection>();
  private readonly idle: Connection[] = [];
  private readonly queue: Task[] = [];
  private active = 0;
  /** Retired (`close`): no connection is kept idle; requests still sent here finish, then it is shut. */
  private closing = false;
  /** Destroyed (`destroy`, at shutdown): every request fails. */
  private destroyed = false;
  private whenClosed: (() => void) | undefined;
  private shutdown: Promise<void> | undefined;

  constructor(readonly options: PoolOptions) {
    const { host, port } = options;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${port}`);
    if (net.isIP(host) === 0 && !HOSTNAME.test(host)) throw new Error(`invalid host ${JSON.stringify(host)}`);
    this.hostHeader = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    this.keepAliveMs = options.keepAliveMs ?? KEEP_ALIVE_MS;
    this.maxLifetimeMs = options.maxLifetimeMs ?? 0;
  }

  dispatch(req: UpstreamRequest, handler: ResponseHandler): void {
    const body = req.body;
    let task: Task;
    try {
      const streamLength = isStream(body) ? declaredLength(req.headers) : -1;
      task = new Task(this, req, handler, requestHead(req, this.hostHeader, framingLine(req, streamLength)), streamLength);
    } catch (err) {
      // Nothing was sent: the handler hears it as any other failure of the attempt.
      handler.onConnect(NOT_SENT);
      handler.onError(err as Error);
      return;
    }
    this.active++;
    handler.onConnect(task);
    if (task.done) return;
    if (this.destroyed) {
      this.fail(task, new UpstreamError('UPSTREAM_POOL_CLOSED', 'the upstream is closing'));
      return;
    }
    // A retired pool still takes the requests that chose it before it left (Envoy's draining
    // pool): they are sent, and their connection closes after the answer.
    let conn = this.idle.pop();
    // Closed by the server meanwhile (its 'close' event not yet run): not for a new request.
    while (conn !== undefined && conn.socket.destroyed) conn = this.idle.pop();
    if (conn !== undefined) conn.start(task);
    else if (this.all.size < this.options.connections) this.open().start(task);
    else this.queue.push(task);
  }

  private open(): Connection {
    const c = new Connection(this);
    this.all.add(c);
    return c;
  }

  /** A connection is free: the next queued request, or the idle list. */
  release(c: Connection): void {
    const next = this.queue.shift();
    if (next !== undefined) {
      c.start(next);
      return;
    }
    if (this.closing) c.socket.destroy();
    else this.idle.push(c);
  }

  /** A connection closed: forget it; a queued request gets a new one (a retired pool's too: it must finish). */
  closed(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.queue.length > 0 && !this.destroyed && this.all.size < this.options.connections) this.open().start(this.queue.shift()!);
  }

  /**
   * Send `task` again after its reused connection was reset unanswered: on a new connection,
   * since an idle one may be as stale as the one that failed; first in line when none can open.
   */
  replay(task: Task): void {
    task.replayed = true;
    task.conn = undefined;
    this.options.replayed?.();
    if (this.destroyed) this.fail(task, new UpstreamError('UPSTREAM_POOL_CLOSED', 'the upstream is closing'));
    else if (this.all.size < this.options.connections) this.open().start(task);
    else this.queue.unshift(task);
  }

  /** End a request with `err` (once); its connection, if any, is the caller's to close. */
  fail(task: Task, err: Error): void {
    if (task.done) return;
    task.done = true;
    task.conn = undefined;
    this.completed();
    task.handler.onError(err);
  }

  /** The handler gave up on its request. */
  abort(task: Task, err: Error): void {
    if (task.done) return;
    const conn = task.conn;
    if (conn !== undefined) conn.abandon();
    else {
      const i = this.queue.indexOf(task);
      if (i >= 0) this.queue.splice(i, 1);
    }
    this.fail(task, err);
  }

  /** A request is over (answered, failed or aborted): a closing pool shuts once none is left. */
  completed(): void {
    this.active--;
    if (this.closing && this.active <= 0) this.shut();
  }

  /**
   * Retire the pool (its endpoint or upstream left): idle connections close now, the requests in
   * flight and queued finish, and each connection closes when its answer ends. A request still
   * dispatched here (it chose this endpoint before it left) is served the same way, never refused.
   * Resolves once nothing is in flight.
   */
  close(): Promise<void> {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.socket.destroy();
    this.shutdown ??= new Promise((resolve) => {
      this.whenClosed = resolve;
      if (this.active <= 0) this.shut();
    });
    return this.shutdown;
  }

  /** Close every connection now; requests in flight and queued fail. */
  destroy(): Promise<void> {
    this.closing = true;
    this.destroyed = true;
    for (const t of this.queue.splice(0)) this.fail(t, new UpstreamError('UPSTREAM_POOL_CLOSED', 'the upstream was closed'));
    for (const c of [...this.all]) c.socket.destroy();
    return this.close();
  }

  private shut(): void {
    for (const c of this.idle.splice(0)) c.socket.destroy();
    for (const c of this.all) if (c.task === undefined) c.socket.destroy();
    const done = this.whenClosed;
    this.whenClosed = undefined;
    done?.();
  }
}
