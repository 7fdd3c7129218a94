/**
 * The lane's chunked body decoder (gateway/wire/chunked-body.ts) against llhttp, strict as
 * `node:http` runs it: the same verdict (the body ends, is refused with the same error code, or is
 * still coming), the same decoded bytes, wherever the bytes are split; the data handed on as views
 * of the buffers fed, never copies; and the named attacks of RFC 9112 §7.1 one by one.
 */
import { describe, expect, it } from 'vitest';
import { ChunkedBody, ChunkedBodyError } from '../../../gateway/wire/chunked-body.js';
import { llhttp, NODE_MAX_HEADER_SIZE } from '../../../fuzz/llhttp.js';
import { seededRandom } from '../../../routing/table/pick.js';
import { fuzzSequence } from '../../helpers/random.js';
import { randomChunkedBody, randomSplit } from '../../helpers/chunked-bodies.js';

const HEAD = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n';
/** A request behind the body: llhttp reads it as the next one; the decoder must stop before it. */
const NEXT = 'GET /next HTTP/1.1\r\nHost: h\r\n\r\n';

interface Verdict {
  /** 'done' (with where the body ended), 'more', or llhttp's error code. */
  readonly outcome: string;
  readonly body: string;
}

/** What the decoder makes of `pieces` fed one after the other (as socket reads). */
function decode(pieces: Buffer[]): Verdict & { copied: number; end: number; closes: boolean } {
  const d = new ChunkedBody(NODE_MAX_HEADER_SIZE);
  let body = '';
  let copied = 0;
  let fed: Buffer = Buffer.alloc(0);
  const sink = {
    chunkData(slice: Buffer): void {
      if (slice.buffer !== fed.buffer) copied++;
      body += slice.toString('latin1');
    },
  };
  let consumed = 0;
  try {
    for (const p of pieces) {
      fed = p;
      const end = d.execute(p, 0, sink);
      if (end >= 0) return { outcome: 'done', body, copied, end: consumed + end, closes: d.closes };
      consumed += p.length;
    }
  } catch (err) {
    if (!(err instanceof ChunkedBodyError)) throw err;
    return { outcome: err.code, body, copied, end: -1, closes: false };
  }
  return { outcome: 'more', body, copied, end: -1, closes: false };
}

/** What llhttp makes of the same body behind HEAD, with NEXT behind it (in the same reads: a limit's check waits for a read's end). */
function oracle(body: string, pieces?: Buffer[]): Verdict & { next: boolean; closed: boolean } {
  const head = Buffer.from(HEAD, 'latin1');
  const r = llhttp(pieces === undefined ? Buffer.from(HEAD + body + NEXT, 'latin1') : [head, ...pieces]);
  const first = r.requests[0]!;
  // llhttp reads past the body into NEXT: the body ended where NEXT began only if NEXT was read as a request.
  const next = r.requests.length === 2 && r.requests[1]!.target === '/next';
  // Complete, then HPE_CLOSED_CONNECTION: a trailer said `Connection: close`.
  const closed = r.error === 'HPE_CLOSED_CONNECTION';
  if (first.complete) return { outcome: 'done', body: first.body, next, closed };
  return { outcome: r.error ?? 'more', body: first.body, next, closed };
}

describe('the chunked body decoder against llhttp', () => {
  const { seed, cases } = fuzzSequence(4000);

  it(`${cases} seeded bodies (seed ${seed}), split at random points: the same verdict, code and bytes; the data uncopied`, () => {
    const r = seededRandom(seed);
    const tally: Record<string, number> = {};
    for (let i = 0; i < cases; i++) {
      const { body, quirks } = randomChunkedBody(r);
      const bytes = Buffer.from(body + NEXT, 'latin1');
      const pieces = randomSplit(r, bytes);
      const mine = decode(pieces);
      const theirs = oracle(body, pieces);
      const what = `case ${i} (${quirks.join(', ') || 'plain'}): ${JSON.stringify(body.length > 300 ? body.slice(0, 300) + '…' : body)}`;
      tally[theirs.outcome] = (tally[theirs.outcome] ?? 0) + 1;
      expect(mine.outcome, what).toBe(theirs.outcome);
      if (mine.outcome === 'done') {
        expect(mine.body, what).toBe(theirs.body);
        // A trailer `Connection: close`: llhttp refuses what follows (HPE_CLOSED_CONNECTION), the decoder says the connection ends.
        if (mine.end < bytes.length) expect(mine.closes, what).toBe(theirs.closed);
        // Where llhttp read the request behind it, the body ended where it began.
        if (theirs.next) expect(mine.end, what).toBe(body.length);
      }
      expect(mine.copied, `${what}: data handed on as views of the reads`).toBe(0);
    }
    // The sequence exercises both sides.
    expect(tally.done ?? 0, JSON.stringify(tally)).toBeGreaterThan(cases / 2);
    expect(cases - (tally.done ?? 0), JSON.stringify(tally)).toBeGreaterThan(cases / 20);
  });
});

describe('the chunked body decoder: attacks, one by one (llhttp decides each)', () => {
  const chunk = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n`;
  const CASES: [string, string, string][] = [
    ['a chunk size that overflows 64 bits', 'ffffffffffffffffff\r\nAA\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['17 significant hex digits', '10000000000000000\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['16 of them, after leading zeros: a size (the body is still coming)', '0000ffffffffffffffff\r\nAA', 'more'],
    ['0x10', `0x10\r\n${'a'.repeat(16)}\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE'],
    ['10 ;', `10 ;\r\n${'a'.repeat(16)}\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE'],
    ['+10', `+10\r\n${'a'.repeat(16)}\r\n0\r\n\r\n`, 'HPE_INVALID_CHUNK_SIZE'],
    ['-1', '-1\r\nA\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['a bare LF after the size', '2\nAA\r\n0\r\n\r\n', 'HPE_CR_EXPECTED'],
    ['a bare CR after the size', '2\rAA\r\n0\r\n\r\n', 'HPE_STRICT'],
    ['a bare LF after the data', '2\r\nAA\n0\r\n\r\n', 'HPE_CR_EXPECTED'],
    ['no CRLF after the data (data longer than its size)', '2\r\nAAA\r\n0\r\n\r\n', 'HPE_STRICT'],
    ['a bare LF ending the last chunk', '0\n\r\n', 'HPE_CR_EXPECTED'],
    ['a bare LF ending the trailers', '0\r\n\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['a bare LF ending a trailer', '0\r\nX: 1\n\r\n', 'HPE_CR_EXPECTED'],
    ['an extension flood', `2;${'e'.repeat(20_000)}\r\nAA\r\n0\r\n\r\n`, 'HPE_CHUNK_EXTENSIONS_OVERFLOW'],
    ['extensions at the limit, per chunk', `2;${'e'.repeat(16_384)}\r\nAA\r\n2;${'f'.repeat(16_384)}\r\nAA\r\n0\r\n\r\n`, 'done'],
    ['a quoted extension with a quoted-pair', '2;a="b\\"c";d=e\r\nAA\r\n0\r\n\r\n', 'done'],
    ['whitespace in an extension', '2; a=b\r\nAA\r\n0\r\n\r\n', 'HPE_STRICT'],
    ['a trailer flood', `${chunk('AA')}0\r\nX: ${'v'.repeat(20_000)}\r\n\r\n`, 'HPE_HEADER_OVERFLOW'],
    ['many small trailers under the limit', `${chunk('AA')}0\r\n${'X: y\r\n'.repeat(2000)}\r\n`, 'done'],
    ['Content-Length in the trailers', `${chunk('AA')}0\r\nContent-Length: 5\r\n\r\n`, 'HPE_INVALID_CONTENT_LENGTH'],
    ['Transfer-Encoding in the trailers', `${chunk('AA')}0\r\nTransfer-Encoding: chunked\r\n\r\n`, 'HPE_INVALID_TRANSFER_ENCODING'],
    ['an obs-fold in the trailers', `${chunk('AA')}0\r\nX: a\r\n b\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN'],
    ['a space before a trailer colon', `${chunk('AA')}0\r\nX : a\r\n\r\n`, 'HPE_INVALID_HEADER_TOKEN'],
  ];

  it.each(CASES)('%s', (_what, body, outcome) => {
    expect(oracle(body).outcome).toBe(outcome);
    const bytes = Buffer.from(body + NEXT, 'latin1');
    // Whole, and one byte at a time: the same verdict.
    expect(decode([bytes]).outcome).toBe(outcome);
    expect(decode([...bytes].map((b) => Buffer.from([b]))).outcome).toBe(outcome);
  });

  it('a request hidden after the last chunk is no part of the body: the decoder stops at the end of the trailers', () => {
    const body = `${chunk('AA')}0\r\nX-T: 1\r\n\r\n`;
    const got = decode([Buffer.from(body + NEXT, 'latin1')]);
    expect(got).toMatchObject({ outcome: 'done', body: 'AA', end: body.length });
  });

  it('a trailer `Connection: close` says the connection ends (llhttp reads nothing after it)', () => {
    for (const line of ['Connection: close', 'Proxy-Connection: Close', 'connection: x, close ']) {
      const d = new ChunkedBody(NODE_MAX_HEADER_SIZE);
      expect(d.execute(Buffer.from(`0\r\n${line}\r\n\r\n`, 'latin1'), 0, { chunkData: () => undefined })).toBeGreaterThan(0);
      expect(d.closes, line).toBe(true);
      expect(oracle(`0\r\n${line}\r\n\r\n`), line).toMatchObject({ outcome: 'done', closed: true });
    }
    const d = new ChunkedBody(NODE_MAX_HEADER_SIZE);
    d.execute(Buffer.from('0\r\nConnection: keep-alive\r\n\r\n', 'latin1'), 0, { chunkData: () => undefined });
    expect(d.closes).toBe(false);
  });

  it('one slice per chunk per read: a chunk split over three reads is handed on in three views', () => {
    const data = 'x'.repeat(30);
    const bytes = Buffer.from(`${chunk(data)}0\r\n\r\n`, 'latin1');
    const slices: Buffer[] = [];
    const d = new ChunkedBody(NODE_MAX_HEADER_SIZE);
    const pieces = [bytes.subarray(0, 10), bytes.subarray(10, 20), bytes.subarray(20)];
    for (const p of pieces) d.execute(p, 0, { chunkData: (s) => slices.push(s) });
    expect(slices.map((s) => s.toString())).toEqual(['x'.repeat(6), 'x'.repeat(10), 'x'.repeat(14)]);
    expect(d.done).toBe(true);
  });
});
