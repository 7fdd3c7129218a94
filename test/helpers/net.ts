/**
 * Sockets for tests: a port nothing listens on, and raw HTTP/1.1 bytes sent on a fresh connection
 * (for what a well-behaved client library will not send). Request and response parsing for the
 * byte-exact tests is in fixtures/recording-upstream.ts (`connectRaw`, `readHttpResponse`).
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

/** A port on 127.0.0.1 that the kernel just handed out and nothing listens on any more. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
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

/**
 * Send `bytes` (then more, `later`, after `gapMs`) on a fresh connection to 127.0.0.1:`port`;
 * collect the answer until the connection closes, `quietMs` of silence after the first bytes, or
 * `maxMs` in all.
 */
export async function raw(port: number, bytes: string | Buffer, opts: { quietMs?: number; later?: string; gapMs?: number; maxMs?: number } = {}): Promise<RawAnswer> {
  const t0 = Date.now();
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
  s.on('close', () => (closed = true));
  if (bytes.length) s.write(bytes);
  if (opts.later !== undefined) {
    await new Promise((r) => setTimeout(r, opts.gapMs ?? 100));
    if (!closed) s.write(opts.later);
  }
  const quiet = opts.quietMs ?? 300;
  const max = opts.maxMs ?? 5000;
  while (!closed && Date.now() - t0 < max && (text === '' || Date.now() - last < quiet)) await new Promise((r) => setTimeout(r, 10));
  s.destroy();
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return { status: m ? Number(m[1]) : 0, text, closed, ms: Date.now() - t0 };
}
