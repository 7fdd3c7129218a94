/**
 * A raw HTTP/2 client for what node's client will not send (connection-specific fields, `te:
 * gzip`, fields with CR, LF or NUL, non-token names, a content-length its DATA contradicts, a reset
 * in the middle of a body): it writes frames as given (HPACK literals without indexing or Huffman)
 * and records the frames it gets (type, flags, stream, payload). Over h2c by prior knowledge, or
 * over TLS with ALPN `h2`.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { HeaderLine } from '../fixtures/recording-upstream.js';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;

export class RawH2 {
  readonly frames: { type: number; flags: number; stream: number; payload: Buffer }[] = [];
  private buf = Buffer.alloc(0);
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        const f = { type: this.buf[3]!, flags: this.buf[4]!, stream: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
        this.buf = this.buf.subarray(9 + len);
        this.frames.push(f);
        // SETTINGS from the server: acknowledge.
        if (f.type === FRAME.SETTINGS && (f.flags & 1) === 0) socket.write(RawH2.frame(FRAME.SETTINGS, 1, 0, Buffer.alloc(0)));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  /** h2c by prior knowledge; with `tls` (the CA to trust, the name to ask for), h2 over TLS. */
  static async connect(port: number, secure?: { ca: string; servername: string }): Promise<RawH2> {
    let socket: net.Socket;
    if (secure === undefined) {
      socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
    } else {
      socket = tls.connect({ host: '127.0.0.1', port, ca: secure.ca, servername: secure.servername, ALPNProtocols: ['h2'] });
      await once(socket, 'secureConnect');
    }
    const c = new RawH2(socket);
    socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
    socket.write(RawH2.frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)));
    return c;
  }

  static frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  }

  private static int(v: number, prefix: number): number[] {
    const max = (1 << prefix) - 1;
    if (v < max) return [v];
    const out = [max];
    for (v -= max; v >= 128; v >>= 7) out.push((v & 127) | 128);
    out.push(v);
    return out;
  }

  /** A HEADERS frame of literal fields (names and values as latin1 bytes, exactly as given). */
  headers(stream: number, fields: HeaderLine[], endStream: boolean): void {
    const block: number[] = [];
    for (const [n, v] of fields) {
      const name = Buffer.from(n, 'latin1');
      const value = Buffer.from(v, 'latin1');
      block.push(0, ...RawH2.int(name.length, 7), ...name, ...RawH2.int(value.length, 7), ...value);
    }
    this.socket.write(RawH2.frame(FRAME.HEADERS, 4 | (endStream ? 1 : 0), stream, Buffer.from(block)));
  }

  /** DATA frames of at most 16 KiB (the default SETTINGS_MAX_FRAME_SIZE); within the initial 64 KiB window (or after `windowOpen`). */
  data(stream: number, payload: Buffer, endStream: boolean): void {
    for (let i = 0; i < payload.length || i === 0; i += 16384) {
      const last = i + 16384 >= payload.length;
      this.socket.write(RawH2.frame(FRAME.DATA, endStream && last ? 1 : 0, stream, payload.subarray(i, i + 16384)));
    }
  }

  rst(stream: number, code: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code);
    this.socket.write(RawH2.frame(FRAME.RST_STREAM, 0, stream, p));
  }

  /** The RST_STREAM code the server sent for `stream`, once it has (or undefined after `ms`). */
  async rstOf(stream: number, ms = 3000): Promise<number | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const f = this.frames.find((x) => x.type === FRAME.RST_STREAM && x.stream === stream);
      if (f) return f.payload.readUInt32BE(0);
      if (Date.now() > end || this.closed) return undefined;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * Once the server has sent its SETTINGS and opened the connection's flow-control window beyond
   * the initial 64 KiB (a WINDOW_UPDATE on stream 0): larger bodies can then be sent at once.
   */
  async windowOpen(ms = 3000): Promise<boolean> {
    const end = Date.now() + ms;
    const open = (): boolean => this.frames.some((f) => f.type === FRAME.SETTINGS) && this.frames.some((f) => f.type === FRAME.WINDOW_UPDATE && f.stream === 0);
    while (!open() && Date.now() < end && !this.closed) await new Promise((r) => setTimeout(r, 5));
    return open();
  }

  /** Whether the server answered `stream` with a HEADERS frame (a response head). */
  answered(stream: number): boolean {
    return this.frames.some((x) => x.type === FRAME.HEADERS && x.stream === stream);
  }

  /** The DATA bytes of `stream` once it has ended (END_STREAM on DATA), or what came within `ms`. */
  async bodyOf(stream: number, ms = 3000): Promise<Buffer> {
    const end = Date.now() + ms;
    while (!this.frames.some((x) => x.stream === stream && (x.flags & 1) === 1 && (x.type === FRAME.DATA || x.type === FRAME.HEADERS)) && Date.now() < end && !this.closed) {
      await new Promise((r) => setTimeout(r, 5));
    }
    return Buffer.concat(this.frames.filter((x) => x.type === FRAME.DATA && x.stream === stream).map((x) => x.payload));
  }

  close(): void {
    this.socket.destroy();
  }
}
