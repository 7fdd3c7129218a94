/**
 * Sockets for tests: a port nothing listens on, and raw HTTP/1.1 bytes sent on a fresh connection
 * (for what a well-behaved client library will not send). Request and response parsing for the
 * byte-exact tests is in fixtures/recording-upstream.ts (`connectRaw`, `readHttpResponse`).
 */
import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { ByteReader, headerValue, readHttpResponse } from '../fixtures/recording-upstream.js';
import { sleep } from './wait.js';

/** A port on 127.0.0.1 that the kernel just handed out and nothing listens on any more. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Listen on a free port of 127.0.0.1; `close` ends its connections, kept-alive ones too, and the server. */
export async function listenLocal(server: HttpServer): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The request lines of a raw HTTP/1.1 request, each ended by CRLF, the empty line, then `body`. */
export const rawRequest = (lines: string[], body = ''): string => `${lines.join('\r\n')}\r\n\r\n${body}`;

export interface RawAnswer {
  /** Status of the first response, 0 if none. */
  status: number;
  /** Everything received, as latin1. */
  text: string;
  /** The other side closed the connection. */
  closed: boolean;
  ms: number;
}

/** The method of the request at the start of `bytes` (a HEAD's answer has no body). */
const methodOf = (bytes: string | Buffer): string => (typeof bytes === 'string' ? bytes : bytes.toString('latin1', 0, 16)).split(' ')[0] ?? '';

/**
 * Send `bytes` on a fresh connection to 127.0.0.1:`port` and collect what comes back: `answers`
 * whole responses (default 1; interim 1xx ones are not counted), then, when the last one says
 * `Connection: close`, the close; otherwise `quietMs` (default 100) without more bytes, where
 * anything sent beyond the answers shows up. Stops early when the connection closes, and after
 * `maxMs` in all. `later`: more bytes, sent once the first answer has arrived whole (and one more
 * answer is then awaited); not sent if none came.
 */
export async function raw(port: number, bytes: string | Buffer, opts: { answers?: number; quietMs?: number; later?: string; maxMs?: number } = {}): Promise<RawAnswer> {
  const t0 = Date.now();
  const deadline = t0 + (opts.maxMs ?? 5000);
  const left = (): number => Math.max(1, deadline - Date.now());
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  let text = '';
  let closed = false;
  let last = Date.now();
  s.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    last = Date.now();
  });
  s.on('error', () => undefined);
  const gone = new Promise<void>((resolve) => s.on('close', () => resolve()));
  void gone.then(() => (closed = true));
  // The same bytes, parsed: when the answers are whole.
  const reader = new ByteReader(s);
  if (bytes.length) s.write(bytes);
  let closing = false;
  const read = async (method: string, n: number): Promise<number> => {
    let got = 0;
    for (; got < n; got++) {
      const res = await readHttpResponse(reader, { method, timeoutMs: left() });
      if (res === null) break;
      closing = /(?:^|,)\s*close\s*(?:,|$)/i.test(headerValue(res.headers, 'connection') ?? '');
    }
    return got;
  };
  const first = await read(methodOf(bytes), Math.max(opts.answers ?? 1, opts.later === undefined ? 0 : 1));
  if (opts.later !== undefined && first > 0 && !closed) {
    s.write(opts.later);
    await read(methodOf(opts.later), 1);
  }
  if (closing) await Promise.race([gone, sleep(left())]);
  const quiet = opts.quietMs ?? 100;
  // What comes beyond the answers (if anything does): bounded, an absence cannot be awaited.
  while (!closed && Date.now() < deadline && (text === '' || Date.now() - last < quiet)) await Promise.race([gone, sleep(10)]);
  s.destroy();
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return { status: m ? Number(m[1]) : 0, text, closed, ms: Date.now() - t0 };
}

/**
 * `writes` sent one after another, without waiting, on a fresh connection to 127.0.0.1:`port`;
 * everything read until the other side ends the connection (for an answer that must close it).
 */
export async function readUntilEnd(port: number, writes: readonly string[]): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', r));
  let read = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => (read = Buffer.concat([read, d])));
  const ended = new Promise<void>((r) => socket.once('end', r));
  for (const w of writes) socket.write(w, 'latin1');
  await ended;
  socket.destroy();
  return read.toString('latin1');
}

/**
 * A TCP relay in front of `port` that counts the connections open through it: what a model would
 * see of the gateway's pools and sessions (each connection piped unparsed to its own upstream one).
 */
export async function connectionCounter(port: number): Promise<{ port: number; open(): number; accepted(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    sockets.add(client);
    const upstream = net.connect({ host: '127.0.0.1', port });
    sockets.add(upstream);
    const gone = (s: net.Socket, other: net.Socket): void => {
      sockets.delete(s);
      other.destroy();
    };
    client.once('close', () => gone(client, upstream));
    upstream.once('close', () => gone(upstream, client));
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    // The client sides only: one per connection the gateway holds.
    open: () => [...sockets].filter((s) => s.localPort === (server.address() as AddressInfo).port).length,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
