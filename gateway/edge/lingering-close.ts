/**
 * Closing an HTTP/1.1 connection whose client may still be sending, as nginx's lingering close
 * does (`lingering_close`, `lingering_time`, `lingering_timeout`).
 *
 * Why: an answer can be sent before the request is read (the model refuses a large body after its
 * head, the gateway's own 413 or 408, bytes pipelined after `Connection: close`). Closed at once,
 * the socket still has unread bytes, so the gateway's kernel resets the connection, and the
 * client's kernel or library throws away the answer it had not read yet: the client sees a reset
 * and never the answer, while the gateway logged it as sent.
 *
 * How: the answer goes out, then the write side is shut (FIN) and the client's bytes are read
 * and dropped until it closes its side, for at most `timeMs` after the answer left, `timeoutMs`
 * without a byte, and `maxBytes` in all; then the socket is destroyed. Nothing else reads the
 * socket from then on: Node's HTTP parser is detached (no request on it is served or refused).
 */
import type { Socket } from 'node:net';
import type { LingerConfig } from '../config/edge.js';

/** nginx's defaults (lingering_time 30s, lingering_timeout 5s); the byte budget is the default --max-body. */
export const LINGER_DEFAULTS: LingerConfig = { enabled: true, timeMs: 30_000, timeoutMs: 5_000, maxBytes: 100 * 1024 * 1024 };

/** The settings of each connection's lingering close (set where the data plane takes the connection). */
const settings = new WeakMap<Socket, LingerConfig>();
/** Connections lingering now (the HTTP server's late errors on them are not the client's). */
const lingering = new WeakSet<Socket>();

const ignore = (): void => undefined;

/**
 * From now on, `socket` lingers when it closes after an answer, with `config`: also when Node's
 * HTTP/1.1 server closes it after a `Connection: close` answer (its `destroySoon()`).
 */
export function lingerOnClose(socket: Socket, config: LingerConfig): void {
  settings.set(socket, config);
  socket.destroySoon = lingerSoon;
}

function lingerSoon(this: Socket): void {
  lingeringClose(this);
}

/** Whether `socket` is in its lingering close. */
export function isLingering(socket: Socket): boolean {
  return lingering.has(socket);
}

/**
 * Close `socket` once what was written to it has gone out, reading and discarding what the
 * client still sends meanwhile and for a while after (see the file header). Idempotent.
 */
export function lingeringClose(socket: Socket, config: LingerConfig = settings.get(socket) ?? LINGER_DEFAULTS): void {
  if (socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  socket.on('error', ignore);
  const destroy = (): void => {
    socket.destroy();
  };
  const afterWrites = (then: () => void): void => {
    if (socket.writableFinished) then();
    else socket.once('finish', then);
  };
  if (!config.enabled || !socket.readable) {
    // Nothing more can be read (or lingering is off): close once the answer is out, as Node does.
    socket.end();
    afterWrites(destroy);
    return;
  }
  // From here the bytes are dropped: the HTTP parser (Node's, or the lane's) sees no more of them.
  // (A 'data' listener added with Node's server's own `on` also detaches its parser from the handle.)
  socket.removeAllListeners('data');
  let bytes = 0;
  let idle: NodeJS.Timeout | undefined;
  let total: NodeJS.Timeout | undefined;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > config.maxBytes) destroy();
    else idle?.refresh();
  });
  // The client closed its side: nothing more will come.
  socket.once('end', () => afterWrites(destroy));
  socket.once('close', () => {
    clearTimeout(idle);
    clearTimeout(total);
  });
  // The budgets start once the answer is out (a slow reader of a long answer is not cut short).
  afterWrites(() => {
    if (socket.destroyed) return;
    idle = setTimeout(destroy, config.timeoutMs);
    total = setTimeout(destroy, config.timeMs);
    idle.unref();
    total.unref();
  });
  socket.end();
  socket.resume();
  readAgain(socket);
}

type Handle = { reading?: boolean; readStart?: () => number };

/**
 * Node's HTTP server stops a socket's reads below the stream (its parser reads the handle itself,
 * and pauses it for a request body nobody reads); the stream still thinks it is flowing, so
 * `resume()` alone reads nothing. Start them again, as that server's own resume does.
 */
function readAgain(socket: Socket): void {
  const handle = (socket as Socket & { _handle?: Handle | null })._handle;
  if (handle?.reading === false && handle.readStart !== undefined) {
    handle.reading = true;
    handle.readStart();
  }
}
