/**
 * Model answers as broken models, odd servers and attackers behind a model send them: interim 1xx
 * answers, status lines of every shape, header lines with their damage, Content-Length and
 * Transfer-Encoding in every spelling and combination, chunked mutations, bodies on HEAD, 204 and
 * 304, bytes after the body, a close before the end; written in pieces, then the connection kept
 * or closed. The request that asks for it is plain (GET, POST or HEAD).
 *
 * Every answer names its case in its first field line (`X-Case: <id>`), so an answer the client
 * receives is attributed to exactly one case, and one read out of step with its request shows.
 */
import fc from 'fast-check';
import { bodyBytes, chunkedBody, fieldLine, fieldName, fieldValue, ID, lineEnd, splits, weighted } from './grammar.js';

export interface ResponseCase {
  /** The request's method. */
  readonly method: 'GET' | 'POST' | 'HEAD';
  /** The model's answer, with ID where the case id goes. */
  readonly answer: string;
  /** Where the answer is cut into writes. */
  readonly splits: number[];
  /** The model closes the connection after writing it. */
  readonly close: boolean;
}

const interim = weighted(
  ['', 30],
  ['HTTP/1.1 100 Continue\r\n\r\n', 2],
  ['HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n', 2],
  ['HTTP/1.1 102 Processing\r\n\r\n', 1],
  ['HTTP/1.1 100 Continue\r\nContent-Length: 2\r\n\r\nhi', 1],
  ['HTTP/1.1 101 Switching Protocols\r\n\r\n', 1],
);

const statusLine = fc.oneof(
  {
    arbitrary: weighted(
      ['HTTP/1.1 200 OK\r\n', 20],
      ['HTTP/1.1 201 Created\r\n', 2],
      ['HTTP/1.1 400 Bad Request\r\n', 2],
      ['HTTP/1.1 500 Internal Server Error\r\n', 2],
      ['HTTP/1.1 503 Service Unavailable\r\n', 1],
      ['HTTP/1.1 204 No Content\r\n', 3],
      ['HTTP/1.1 304 Not Modified\r\n', 2],
    ),
    weight: 20,
  },
  {
    arbitrary: fc
      .tuple(
        weighted(['HTTP/1.1', 20], ['HTTP/1.0', 3], ['HTTP/2.0', 1], ['http/1.1', 1], ['HTTP/1.10', 1], ['HTTP/1', 1]),
        weighted([' ', 20], ['  ', 1], ['\t', 1]),
        weighted(['200', 10], ['299', 1], ['206', 1], ['301', 1], ['404', 1], ['599', 1], ['600', 1], ['999', 1], ['099', 1], ['2000', 1], ['20', 1], ['abc', 1], ['-200', 1], ['', 1]),
        weighted([' OK', 10], ['', 2], [' ', 2], [' Od\xe9 Reason', 1], [' a\x00b', 1], [' a\rb', 1], [' a\tb', 1], [` ${'x'.repeat(3000)}`, 1]),
        lineEnd,
      )
      .map(([v, sp, s, r, e]) => `${v}${sp}${s}${r}${e}`),
    weight: 6,
  },
);

type Framing = 'length' | 'length-off' | 'length-spelled' | 'lengths' | 'chunked' | 'te-spelled' | 'te-and-length' | 'none';
const framing = weighted<Framing>(['length', 24], ['length-off', 3], ['length-spelled', 3], ['lengths', 2], ['chunked', 12], ['te-spelled', 3], ['te-and-length', 2], ['none', 4]);

function framed(body: string): fc.Arbitrary<{ lines: string[]; tail: string; needsClose: boolean }> {
  const n = body.length;
  return framing.chain((f) => {
    switch (f) {
      case 'length':
        return fc.constant({ lines: [`Content-Length: ${n}\r\n`], tail: body, needsClose: false });
      case 'length-off':
        return weighted([n + 3, 1], [Math.max(0, n - 1), 1]).map((len) => ({ lines: [`Content-Length: ${len}\r\n`], tail: body, needsClose: len > n }));
      case 'length-spelled':
        return weighted([`0${n}`, 2], [`+${n}`, 1], [` ${n} `, 1], [`${n}, ${n}`, 1], [`${n},${n + 1}`, 1], ['-1', 1], ['99999999999999999999', 1], ['', 1], [`${n}\t`, 1]).map((v) => ({
          lines: [`Content-Length: ${v}\r\n`],
          tail: body,
          needsClose: false,
        }));
      case 'lengths':
        return weighted([n, 1], [n + 1, 1]).map((m) => ({ lines: [`Content-Length: ${n}\r\n`, `Content-Length: ${m}\r\n`], tail: body, needsClose: false }));
      case 'chunked':
        return chunkedBody(body).map((tail) => ({ lines: ['Transfer-Encoding: chunked\r\n'], tail, needsClose: false }));
      case 'te-spelled':
        return fc
          .tuple(weighted(['Chunked', 2], ['chunked, chunked', 1], ['gzip, chunked', 1], ['chunked, gzip', 1], ['identity', 1], ['gzip', 1], [' chunked ', 1], ['chunked;q=1', 1]), chunkedBody(body))
          .map(([te, tail]) => ({ lines: [`Transfer-Encoding: ${te}\r\n`], tail, needsClose: true }));
      case 'te-and-length':
        return fc.tuple(fc.boolean(), chunkedBody(body)).map(([first, tail]) => {
          const cl = `Content-Length: ${n}\r\n`;
          return { lines: first ? [cl, 'Transfer-Encoding: chunked\r\n'] : ['Transfer-Encoding: chunked\r\n', cl], tail, needsClose: false };
        });
      case 'none':
        return fc.constant({ lines: [], tail: body, needsClose: true });
    }
  });
}

const answer = fc
  .record({
    interim,
    status: statusLine,
    fields: fc.array(
      fc.oneof(
        {
          arbitrary: fieldLine(
            weighted(['Content-Type', 3], ['Set-Cookie', 2], ['X-A', 3], ['Cache-Control', 1], ['Connection', 1], ['Keep-Alive', 1]),
            weighted(['v', 3], ['application/json', 2], ['a=1', 1], ['close', 1], ['keep-alive', 1], ['timeout=5', 1]),
          ),
          weight: 6,
        },
        { arbitrary: fieldLine(fieldName, fieldValue), weight: 1 },
      ),
      { maxLength: 4 },
    ),
    body: fc.tuple(weighted(['', 1], [`{"case":"${ID}"}`, 6]), fc.oneof({ arbitrary: fc.constant(''), weight: 3 }, { arbitrary: bodyBytes, weight: 1 })).map(([a, b]) => a + b),
    at: fc.nat(5),
    headEnd: weighted(['\r\n', 60], ['\n', 1], ['', 1]),
    after: weighted(['', 30], ['junk', 1], ['\r\n', 1], [`HTTP/1.1 200 OK\r\nX-Case: ${ID}-2\r\nContent-Length: 2\r\n\r\nhi`, 1]),
  })
  .chain((r) =>
    framed(r.body).map(({ lines, tail, needsClose }) => {
      const fields = [...r.fields];
      fields.splice(r.at % (fields.length + 1), 0, ...lines);
      return { text: `${r.interim}${r.status}X-Case: ${ID}\r\n${fields.join('')}${r.headEnd}${tail}${r.after}`, needsClose };
    }),
  );

export const responseCase: fc.Arbitrary<ResponseCase> = fc
  .record({ method: weighted<'GET' | 'POST' | 'HEAD'>(['GET', 6], ['POST', 6], ['HEAD', 2]), answer, close: fc.boolean(), cut: weighted([false, 30], [true, 1]) })
  .chain(({ method, answer: a, close, cut }) =>
    fc.tuple(splits(a.text.length), fc.nat(Math.max(0, a.text.length - 1))).map(([at, cutAt]) => ({
      method,
      // A model that dies mid-answer: the bytes up to a point, then the close.
      answer: cut ? a.text.slice(0, cutAt) : a.text,
      splits: at.filter((x) => !cut || x < cutAt),
      close: close || a.needsClose || cut,
    })),
  );

/** The answer's bytes with the case id in place. */
export function answerBytes(c: ResponseCase, id: string): Buffer {
  return Buffer.from(c.answer.replaceAll(ID, id), 'latin1');
}
