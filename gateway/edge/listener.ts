/**
 * The public port: HTTP/1.1 and cleartext HTTP/2 (h2c with prior knowledge) on one listener,
 * as Ambassador had. Each new connection's first bytes decide: the HTTP/2 preface (`PRI * …`)
 * goes to the HTTP/2 server, anything else to the HTTP/1.1 server. The bytes are put back on
 * the socket; the HTTP/2 session reads them from the socket's buffer itself, so that socket is
 * not resumed here.
 */
import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import net from 'node:net';

const PREFACE_START = 'PRI';

export function sniffingServer(http1: HttpServer, http2: Http2Server, onConnection?: (socket: net.Socket) => void): net.Server {
  return net.createServer((socket) => {
    onConnection?.(socket);
    socket.on('error', () => socket.destroy());
    const first = (chunk: Buffer): void => {
      if (chunk.length < PREFACE_START.length && PREFACE_START.startsWith(chunk.toString('latin1'))) {
        // Too short to tell: wait for more.
        socket.once('data', (more: Buffer) => first(Buffer.concat([chunk, more])));
        return;
      }
      socket.pause();
      socket.unshift(chunk);
      if (chunk.toString('latin1', 0, 3) === PREFACE_START) {
        http2.emit('connection', socket);
      } else {
        http1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.once('data', first);
  });
}
