/**
 * Seeded chunked request bodies, valid and not, for the tests that hold the lane's chunked decoder
 * (gateway/wire/chunked-body.ts) to llhttp: test/gateway/wire/chunked-body.unit.test.ts (the decoder
 * alone) and test/gateway/edge/lane-chunked-body.test.ts (the lane beside Node's server). Each body
 * is mostly well formed, with now and then one of the quirks smuggling relies on: size-line junk,
 * overflow, bare LF or CR, data longer or shorter than its size, odd extensions and trailers, an
 * extension or trailer flood around Node's limits, a body cut short.
 */
import { draws } from './random.js';

/** Odd size spellings (`%` is the size in hex). */
const SIZES = ['0x%', '+%', '-%', ' %', '% ', '%\t', '% ;a', '0000%', 'ffffffffffffffff1', '1%', '%;'];
const EXTENSIONS = [';a', ';a=b', ';a="q"', ';a="q\\"x"', ';=', ';;a', '; a', ';a =b', ';a=b"c"', ';a="x"y', ';a=', ';a=b;', ';a="\x80\t "', ';\x80', ';a=b\x01', ';a="\\\x7f"', ';a=;b'];
const TRAILERS = [
  'X-T: 1',
  'X-Empty:',
  'X-Obs: caf\xe9',
  'X-Tab:\tv\t',
  'Host: other',
  'Content-Length: 5',
  'content-length: 0',
  'Transfer-Encoding: chunked',
  'Content_Length: 1',
  'X-T : 1',
  ' X-Fold: 1',
  ': v',
  'X-Ctl: a\x01b',
  'X-Del: a\x7fb',
  'Connection: keep-alive',
  'Proxy-Connection: close',
  'Connection: x, close',
  'X-Cr: a\rb',
];
/** Line ends: mostly CRLF. */
const EOLS = ['\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\rX', ''];

export interface ChunkedCase {
  /** The body's bytes as sent (latin1), from the first chunk-size byte on. */
  readonly body: string;
  /** Quirks drawn into it, for the message of a failing case. */
  readonly quirks: string[];
}

/** A chunked body drawn from `r`: 0-4 chunks of up to `maxChunk` bytes, then the last chunk and its trailers. */
export function randomChunkedBody(r: () => number, maxChunk = 300): ChunkedCase {
  const { pick, maybe } = draws(r);
  const quirks: string[] = [];
  const quirk = <T>(p: number, what: string, odd: () => T, plain: T): T => {
    if (!maybe(p)) return plain;
    quirks.push(what);
    return odd();
  };
  const eol = (): string => quirk(0.03, 'line end', () => pick(EOLS), '\r\n');
  const extensions = (): string => {
    let out = '';
    while (maybe(0.15)) out += pick(EXTENSIONS);
    // A flood about Node's 16 KiB limit of one chunk's extensions.
    return out + quirk(0.02, 'extension flood', () => `;${'e'.repeat(16_380 + Math.floor(r() * 10))}`, '');
  };
  let body = '';
  const chunks = Math.floor(r() * 5);
  for (let c = 0; c < chunks; c++) {
    const n = 1 + Math.floor(r() * maxChunk);
    let hex = n.toString(16);
    if (maybe(0.3)) hex = hex.toUpperCase();
    hex = quirk(0.04, 'size', () => pick(SIZES).replace('%', hex), hex);
    let data = '';
    for (let i = 0; i < n; i++) data += String.fromCharCode(Math.floor(r() * 256));
    data = quirk(0.02, 'data length', () => (maybe(0.5) ? data + 'X' : data.slice(1)), data);
    body += `${hex}${extensions()}${eol()}${data}${eol()}`;
  }
  body += `${quirk(0.02, 'last size', () => pick(['00', '0 ', '00000000000000000']), '0')}${extensions()}${eol()}`;
  while (maybe(0.2)) body += `${quirk(0.3, 'trailer', () => pick(TRAILERS), 'X-T: v')}${eol()}`;
  // A trailer flood about Node's 16 KiB head limit (names and values counted).
  body += quirk(0.02, 'trailer flood', () => `X: ${'v'.repeat(16_378 + Math.floor(r() * 10))}\r\n`, '');
  body += eol();
  return { body: quirk(0.03, 'cut short', () => body.slice(0, Math.floor(r() * body.length)), body), quirks };
}

/** `bytes` in 1-4 pieces cut at points drawn from `r` (how a client's writes may arrive). */
export function randomSplit(r: () => number, bytes: Buffer): Buffer[] {
  const cuts = Array.from({ length: Math.floor(r() * 4) }, () => Math.floor(r() * bytes.length)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    if (c > at) out.push(bytes.subarray(at, c));
    at = Math.max(at, c);
  }
  return out.length === 0 ? [bytes] : out;
}
