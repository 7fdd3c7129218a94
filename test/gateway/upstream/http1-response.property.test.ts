/**
 * The upstream client's response parser (gateway/upstream/http1-response.ts) against llhttp, as
 * properties over the response fuzzer's grammar (fuzz/response-grammar.ts), without sockets:
 *   - an answer it reads whole, llhttp reads whole the same way (status, body); one llhttp reads
 *     whole and it refuses is refused by a documented rule (fuzz/response-judge.ts RESPONSE_RULES);
 *   - however the bytes are split into reads, it reads the same;
 *   - any body, chunked any way (sizes in either case, leading zeros, extensions), decodes to itself.
 * Counterexamples fast-check found and shrank are kept as `examples`, run first every time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ResponseParser, type ResponseHead as ParsedHead } from '../../../gateway/upstream/http1-response.js';
import { llhttpResponses } from '../../../fuzz/llhttp.js';
import { answerBytes, responseCase, type ResponseCase } from '../../../fuzz/response-grammar.js';
import { RESPONSE_RULES } from '../../../fuzz/response-judge.js';

/** What a parsed head says (its offsets into the bytes read differ with how they were split; what they say does not). */
interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  readonly headers: string[];
  readonly length: number;
}
const readHead = (h: ParsedHead): ResponseHead => ({ status: h.status, reason: h.reason, headers: h.headers, length: h.length });

interface Reading {
  head: ResponseHead | undefined;
  body: string;
  ended: boolean;
  error: string | undefined;
}

/** What the parser reads of `bytes` delivered as reads cut at `cuts`, then the close when `close`. */
function read(bytes: Buffer, head: boolean, close: boolean, cuts: readonly number[] = []): Reading {
  const out: Reading = { head: undefined, body: '', ended: false, error: undefined };
  const p = new ResponseParser(
    {
      onHead: (h) => (out.head = readHead(h)),
      onBody: (c) => (out.body += Buffer.from(c).toString('latin1')),
      onEnd: () => (out.ended = true),
    },
    60 * 1024,
  );
  p.expect(head);
  try {
    let from = 0;
    for (const at of [...cuts, bytes.length]) {
      if (at > from) p.execute(bytes.subarray(from, at));
      from = at;
      if (p.done) break;
    }
    if (close) p.finish();
  } catch (err) {
    out.error = (err as Error).message;
  }
  return out;
}

const ID = 'abcdefgh';
const RUNS = Number(process.env.SELDON_GATEWAY_FUZZ_CASES ?? 20_000);

/** Answers that once diverged (found by the fuzzer, shrunk), kept as regression cases. */
const FOUND: ResponseCase[] = [
  // A chunk extension without a name: llhttp refuses it; the parser skipped extensions unread.
  { method: 'GET', answer: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nok\r\n0\r\n\r\n', splits: [], close: false },
  // Content-Length beside chunked: llhttp refuses it; the parser let chunked decide.
  { method: 'GET', answer: 'HTTP/1.1 400 Bad Request\r\nContent-Length: 19\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', splits: [], close: true },
  // A Content-Length list of one value: llhttp refuses it; the parser took it.
  { method: 'POST', answer: 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok', splits: [], close: false },
  // A folded trailer line and a length in the trailer: llhttp refuses both; the parser dropped trailers unread.
  { method: 'GET', answer: 'HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n folded\r\n\r\n', splits: [], close: false },
  { method: 'GET', answer: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n', splits: [], close: false },
  // An empty Transfer-Encoding beside chunked on an answer to HEAD: llhttp refuses it; the parser judged codings on answers with a body only.
  { method: 'HEAD', answer: 'HTTP/1.1 200 OK\r\nTransfer-Encoding:  \r\nTransfer-Encoding: chunked\r\n\r\n', splits: [], close: true },
  // Whitespace after a chunk size: llhttp (strict) refuses it; the parser took it.
  { method: 'GET', answer: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n', splits: [], close: false },
];

describe('the response parser against llhttp (properties over generated answers)', () => {
  it(`${RUNS} answers: read whole only as llhttp reads them, refused only by a documented rule`, () => {
    fc.assert(
      fc.property(responseCase, (c) => {
        const bytes = answerBytes(c, ID);
        const mine = read(bytes, c.method === 'HEAD', c.close);
        const ref = llhttpResponses(bytes, [c.method], c.close);
        const R = ref.responses.find((r) => r.status >= 200 || r.status === 101);
        const refWhole = R !== undefined && R.complete;
        if (mine.ended) {
          expect(refWhole, `read whole; llhttp: ${ref.error ?? 'no end'}`).toBe(true);
          expect(mine.head!.status).toBe(R!.status);
          expect(mine.body).toBe(R!.body);
        } else if (refWhole && mine.error !== undefined) {
          const rule = RESPONSE_RULES.find((r) => r.applies(R, bytes.toString('latin1')));
          expect(rule, `refused (${mine.error}) an answer llhttp reads whole`).toBeDefined();
        }
      }),
      { seed: 20261124, numRuns: RUNS, examples: FOUND.map((c) => [c]) },
    );
  });

  it('however an answer is split into reads, it is read the same', () => {
    const withCuts = responseCase.chain((c) =>
      fc.tuple(
        fc.constant(c),
        fc.uniqueArray(fc.nat(Math.max(1, c.answer.length)), { maxLength: 6 }).map((xs) => xs.sort((a, b) => a - b)),
      ),
    );
    fc.assert(
      fc.property(withCuts, ([c, cuts]) => {
        const bytes = answerBytes(c, ID);
        const whole = read(bytes, c.method === 'HEAD', c.close);
        const split = read(bytes, c.method === 'HEAD', c.close, cuts);
        expect(split.ended).toBe(whole.ended);
        expect(split.error === undefined).toBe(whole.error === undefined);
        if (whole.ended) {
          expect(split.head).toEqual(whole.head);
          expect(split.body).toBe(whole.body);
        }
      }),
      { seed: 20261125, numRuns: Math.ceil(RUNS / 4), examples: FOUND.map((c) => [[c, [1, 17, 40]]] as [[ResponseCase, number[]]]) },
    );
  });

  it('any body, chunked any way, decodes to itself', () => {
    const token = fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,6}$/);
    const extension = fc.oneof(
      fc.constant(''),
      fc.tuple(token, fc.option(fc.oneof(token, fc.stringMatching(/^"[a-z ]{0,5}"$/)), { nil: undefined })).map(([n, v]) => `;${n}${v === undefined ? '' : `=${v}`}`),
    );
    const chunking = fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.array(fc.tuple(fc.integer({ min: 1, max: 64 }), fc.boolean(), fc.nat(4), extension), { maxLength: 20 }));
    fc.assert(
      fc.property(chunking, ([bodyBytes, plan]) => {
        const body = Buffer.from(bodyBytes).toString('latin1');
        let wire = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
        let at = 0;
        for (let i = 0; at < body.length; i++) {
          const [size, upper, zeros, ext] = plan[i % Math.max(1, plan.length)] ?? [body.length, false, 0, ''];
          const part = body.slice(at, at + size);
          const hex = part.length.toString(16);
          wire += `${'0'.repeat(zeros)}${upper ? hex.toUpperCase() : hex}${ext}\r\n${part}\r\n`;
          at += part.length;
        }
        wire += '0\r\n\r\n';
        const r = read(Buffer.from(wire, 'latin1'), false, false);
        expect(r.error).toBeUndefined();
        expect(r.ended).toBe(true);
        expect(r.body).toBe(body);
        expect(llhttpResponses(Buffer.from(wire, 'latin1'), ['GET'], false).responses[0]?.body).toBe(body);
      }),
      { seed: 20261126, numRuns: 5000 },
    );
  });
});
