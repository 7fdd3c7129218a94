/**
 * A minimal WebSocket model (RFC 6455) for relay tests: it records each request head as received,
 * accepts an upgrade request with `101 Switching Protocols`, then echoes every text or binary
 * message and answers a close with a close. A request that asks for no upgrade gets a plain 200
 * (`plain`). Frames from the client are masked (as clients must send them); its own are not.
 * `converse`: the client side, Node's own WebSocket client.
 */
import { createHash } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { HeaderLine } from '../fixtures/recording-upstream.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface ReceivedHead {
  readonly requestLine: string;
  readonly headers: HeaderLine[];
}

export interface WebSocketEcho {
  readonly port: number;
  /** Each request head, in order of arrival. */
  readonly heads: ReceivedHead[];
  /** Over TLS: the SNI of each handshake that completed. */
  readonly snis: (string | false | null)[];
  /** Connections that have closed. */
  closed(): number;
  close(): Promise<void>;
}

/** One server frame: FIN, `opcode`, unmasked `payload`. */
export function frame(opcode: number, payload: Buffer, mask?: Buffer): Buffer {
  const len = payload.length;
  const head =
    len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 255]) : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigLength(len)]);
  if (mask === undefined) return Buffer.concat([head, payload]);
  head[1]! |= 0x80;
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
}

function bigLength(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** The frames whole in `buf`, and the bytes after them. */
export function readFrames(buf: Buffer): { frames: { opcode: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const opcode = buf[at]! & 0x0f;
    const masked = (buf[at + 1]! & 0x80) !== 0;
    let len = buf[at + 1]! & 0x7f;
    let p = at + 2;
    if (len === 126) {
      if (buf.length < p + 2) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (buf.length < p + 8) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const maskAt = p;
    if (masked) p += 4;
    if (buf.length < p + len) break;
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (masked) for (let i = 0; i < len; i++) payload[i]! ^= buf[maskAt + (i % 4)]!;
    frames.push({ opcode, payload });
    at = p + len;
  }
  return { frames, rest: buf.subarray(at) };
}

/** `tls`: a model served over TLS with this certificate (what each handshake's SNI was is in `snis`). */
export async function startWebSocketEcho(tlsServer?: { readonly cert: string; readonly key: string }): Promise<WebSocketEcho> {
  const heads: ReceivedHead[] = [];
  const sockets = new Set<net.Socket>();
  let closed = 0;
  const snis: (string | false | null)[] = [];
  const serve = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      sockets.delete(socket);
      closed++;
    });
    let buf: Buffer = Buffer.alloc(0);
    let open = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [requestLine, ...lines] = buf.toString('latin1', 0, end).split('\r\n');
        const headers = lines.map((l): HeaderLine => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
        heads.push({ requestLine: requestLine!, headers });
        buf = buf.subarray(end + 4);
        const key = headers.find(([k]) => k.toLowerCase() === 'sec-websocket-key')?.[1];
        const upgrade = headers.find(([k]) => k.toLowerCase() === 'upgrade')?.[1];
        if (key === undefined || upgrade?.toLowerCase() !== 'websocket') {
          socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nplain');
          return;
        }
        const accept = createHash('sha1')
          .update(key + GUID)
          .digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Model: echo\r\n\r\n`);
        open = true;
      }
      const { frames, rest } = readFrames(buf);
      buf = rest;
      for (const f of frames) {
        if (f.opcode === 1 || f.opcode === 2) socket.write(frame(f.opcode, f.payload));
        else if (f.opcode === 9) socket.write(frame(10, f.payload));
        else if (f.opcode === 8) socket.end(frame(8, f.payload));
      }
    });
  };
  const server =
    tlsServer === undefined
      ? net.createServer(serve)
      : tls.createServer(tlsServer, (s) => {
          snis.push(s.servername);
          serve(s);
        });
  // A client that refused the model's certificate: nothing to serve.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    snis,
    closed: () => closed,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Messages a Node WebSocket client gets back for `sent`, in order. */
export function converse(url: string, sent: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const got: string[] = [];
    ws.onopen = () => {
      for (const m of sent) ws.send(m);
    };
    ws.onmessage = (e) => {
      got.push(String(e.data));
      if (got.length === sent.length) ws.close(1000, 'done');
    };
    ws.onclose = () => resolve(got);
    ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
  });
}
