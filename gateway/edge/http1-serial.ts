/**
 * The requests of one `node:http` connection, served one at a time, in order, and none after an
 * answer that closes the connection: as nginx and haproxy serve a pipeline.
 *
 * Why: `node:http` reads pipelined requests ahead and emits each at once. A request behind one
 * the gateway refuses with `Connection: close` (two Hosts, TRACE, a Transfer-Encoding it does not
 * take, 431, 413…) was already parsed and would be proxied, its answer then thrown away: a request
 * smuggled past the refusal to the model. Here a request waits until the answers before it are
 * done, and is dropped (never served, never answered) when one of them closed the connection.
 *
 * It also decides where the edge's answer to a parse error goes (`refuse`): a body that breaks off
 * (malformed chunked framing, a chunk extension over llhttp's limit, --client-request-timeout)
 * belongs to the request being served, whose exchange the answer ends (the REST path sees its
 * response close, aborts the upstream request and frees its connection); an error in a later head
 * is answered after the requests before it, then the connection closes.
 */
import type { Socket } from 'node:net';
import type { GatewayReason } from './errors.js';
import type { NodeRequest, NodeResponse } from './node-exchange.js';

/** An answer the edge makes itself, with the connection closed after it. */
export interface EdgeRefusal {
  readonly status: number;
  readonly reason: GatewayReason;
  readonly info: string;
  /** Header lines the answer carries beside the JSON error's (each ending in CRLF). */
  readonly extra?: string;
}

export interface PipelineDeps {
  /** Serve one request (its turn has come). */
  serve(req: NodeRequest, res: NodeResponse): void;
  /** Answer `req` on its own response, with `connection: close`. */
  respond(req: NodeRequest, res: NodeResponse, refusal: EdgeRefusal): void;
  /** Answer on the bare socket (no request of it is being served), then close it. */
  answer(socket: Socket, refusal: EdgeRefusal): void;
}

interface Turn {
  readonly req: NodeRequest;
  readonly res: NodeResponse;
}

class Connection {
  /** The request being served. */
  current: Turn | undefined;
  /** Requests read ahead, waiting for their turn. */
  waiting: Turn[] = [];
  /** The last request `node:http` read on this connection. */
  latest: NodeRequest | undefined;
  /** An answer closed the connection: nothing more is served. */
  closed = false;
  /** A parse error ended the connection: after the requests before it, this answer (null: none), then close. */
  ending: EdgeRefusal | null | undefined;
}

export class Http1Serial {
  private readonly connections = new WeakMap<Socket, Connection>();

  constructor(private readonly deps: PipelineDeps) {}

  /** `node:http`'s 'request' listener. */
  readonly request = (req: NodeRequest, res: NodeResponse): void => {
    const socket = req.socket;
    let c = this.connections.get(socket);
    if (c === undefined) this.connections.set(socket, (c = new Connection()));
    c.latest = req;
    // Read ahead of an answer that closed the connection: never served.
    if (c.closed) return;
    if (c.current !== undefined) c.waiting.push({ req, res });
    else this.start(c, socket, req, res);
  };

  private start(c: Connection, socket: Socket, req: NodeRequest, res: NodeResponse): void {
    c.current = { req, res };
    res.once('close', () => this.done(c, socket, res));
    this.deps.serve(req, res);
  }

  /** An answer is done (or its connection closed): the next request's turn, or the end. */
  private done(c: Connection, socket: Socket, res: NodeResponse): void {
    c.current = undefined;
    if (res._last === true || socket.destroyed || !socket.writable) {
      // `node:http` closes the connection after this answer: what was read behind it is dropped.
      c.closed = true;
      c.waiting.length = 0;
      return;
    }
    const next = c.waiting.shift();
    if (next !== undefined) {
      this.start(c, socket, next.req, next.res);
      return;
    }
    if (c.ending === undefined) return;
    c.closed = true;
    if (c.ending === null) socket.destroySoon();
    else this.deps.answer(socket, c.ending);
  }

  /** The request whose bytes broke off on `socket` is a HEAD (its refusal then has no body). */
  headBroke(socket: Socket): boolean {
    const latest = this.connections.get(socket)?.latest;
    return latest !== undefined && !latest.complete && latest.method === 'HEAD';
  }

  /**
   * A parse error (or a request timeout) on `socket`, to be answered with `refusal` (null: closed
   * without an answer, as after `Connection: close`). False when no request of the connection is
   * being served or waiting: the caller answers on the socket now.
   */
  refuse(socket: Socket, refusal: EdgeRefusal | null): boolean {
    let c = this.connections.get(socket);
    if (c === undefined) this.connections.set(socket, (c = new Connection()));
    // Already closing after an answer (or after this error, seen again: the parser repeats it
    // for every read that follows): nothing more to say.
    if (c.closed || c.ending !== undefined) return true;
    const latest = c.latest;
    if (latest !== undefined && !latest.complete) {
      // The request being received broke off: the error is its own.
      const current = c.current;
      if (current !== undefined && current.req === latest) {
        c.closed = true;
        const res = current.res;
        if (!res.headersSent && refusal !== null) {
          res.shouldKeepAlive = false;
          this.deps.respond(latest, res, refusal);
        } else if (!res.writableEnded) socket.destroy();
        else c.ending = null;
        return true;
      }
      const waiting = c.waiting.length;
      // Still waiting for its turn: it is never served, and gets the answer once the requests before it are done.
      c.waiting = c.waiting.filter((t) => t.req !== latest);
      if (c.waiting.length === waiting) {
        // Already answered (before its body was read: a 404, a refusal): one answer a request,
        // so the connection just closes once what is written has gone out.
        c.closed = true;
        socket.destroySoon();
        return true;
      }
    }
    if (c.current === undefined && c.waiting.length === 0) {
      c.closed = true;
      return false;
    }
    // The answers before it go out first; nothing more is read meanwhile.
    socket.pause();
    c.ending = refusal;
    return true;
  }
}
