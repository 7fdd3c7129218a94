/**
 * Request streams as clients, fuzzers and smugglers send them: a pipeline of one to four requests
 * (request line, header lines, framing, body), then perhaps a fragment, written in up to five
 * pieces and then half-closed. Every part has its damaged spellings: methods, targets, versions,
 * Host counts, field names and values, obs-fold, bare CR and LF, NUL and other controls,
 * Content-Length and Transfer-Encoding in every spelling and combination, chunk sizes, extensions
 * and trailers, bodies shorter or longer than they say, bodies that hold whole requests.
 *
 * Each request's target names the case and its place (`/seldon/f/m/<id>.<n>…`), so what reaches the
 * model is attributed to exactly one case and request.
 */
import fc from 'fast-check';
import { bodyBytes, chunkedBody, fieldLine, fieldName, fieldValue, ID, lineEnd, splits, weighted } from './grammar.js';

export interface RequestCase {
  /** The stream, with ID where the case id goes. */
  readonly stream: string;
  /** Where the stream is cut into writes. */
  readonly splits: number[];
}

const method = weighted(
  ['POST', 30],
  ['GET', 10],
  ['PUT', 3],
  ['PATCH', 2],
  ['DELETE', 2],
  ['OPTIONS', 2],
  ['HEAD', 2],
  ['TRACE', 1],
  ['CONNECT', 1],
  ['post', 1],
  ['PROPFIND', 1],
  ['QUERY', 1],
  ['BREW', 1],
  ['GE T', 1],
  ['GET\t', 1],
  [' GET', 1],
  ['', 1],
);

/** The target before the case id, and after its place. */
const targetHead = weighted(['/seldon/f/m/', 40], ['http://gw.example/seldon/f/m/', 2], ['//seldon/f/m/', 1], ['/seldon/f//m/', 1], ['/seldon/f/other/', 1], ['*', 1], ['', 1]);
const targetTail = weighted(
  ['', 20],
  ['/x', 5],
  ['?q=1', 3],
  ['?a=%20b&c', 2],
  // Dot segments that raw `/` delimit are resolved (tested in routing/); these, delimited by encoded ones, are refused.
  ['/..%2fx', 1],
  ['/%2e%2e%5cx', 1],
  ['%2f.%2fx', 1],
  ['/a\\b', 1],
  ['#f', 1],
  ['?\xe9', 1],
  ['?"', 1],
  ['?{|}', 1],
  ['?\x7f', 1],
  ['?\x00', 1],
  ['? ', 1],
  ['//x', 1],
  ['?%', 1],
);
const version = weighted(['HTTP/1.1', 40], ['HTTP/1.0', 2], ['HTTP/1.10', 1], ['HTTP/2.0', 1], ['http/1.1', 1], ['HTTP/1.1 ', 1], ['HTTP/1', 1], ['HTTP/0.9', 1]);
const space = weighted([' ', 60], ['  ', 1], ['\t', 1]);

const hostLine = fc
  .tuple(
    weighted(['Host', 20], ['host', 2], ['HOST', 1]),
    weighted([': ', 10], [':', 1]),
    weighted(['gw.example', 10], ['gw.example:80', 2], ['[::1]:80', 1], ['', 1], ['a b', 1], ['h\x00', 1], ['a@b', 1]),
    lineEnd,
  )
  .map(([n, s, v, e]) => `${n}${s}${v}${e}`);

/** How a body is framed, and the framing fields that say so. */
type Framing = 'none' | 'length' | 'length-spelled' | 'lengths' | 'chunked' | 'te-spelled' | 'te-and-length' | 'te-twice' | 'lookalike';
const framing = weighted<Framing>(['none', 6], ['length', 24], ['length-spelled', 3], ['lengths', 2], ['chunked', 10], ['te-spelled', 3], ['te-and-length', 2], ['te-twice', 1], ['lookalike', 1]);

function lengthSpelled(n: number): fc.Arbitrary<string> {
  const d = String(n);
  return weighted(
    [`0${d}`, 2],
    [`+${d}`, 1],
    [` ${d}`, 1],
    [`${d} `, 1],
    [`${d}\t`, 1],
    [`${d}, ${d}`, 1],
    [`${d},${d}`, 1],
    [`0x${d}`, 1],
    ['-1', 1],
    ['99999999999999999999', 1],
    [`${d}e0`, 1],
    ['', 1],
  );
}

const teSpelled = weighted(
  ['Chunked', 2],
  [' chunked', 1],
  ['chunked ', 1],
  ['chunked, chunked', 1],
  ['gzip, chunked', 1],
  ['chunked, gzip', 1],
  ['identity', 1],
  ['\tchunked', 1],
  ['xchunked', 1],
  ['chunked;q=1', 1],
  ['chunked\x00', 1],
);

/** The framing lines and the bytes after the head for a body. */
function framed(body: string): fc.Arbitrary<{ lines: string[]; tail: string }> {
  const n = body.length;
  const cl = `Content-Length: ${n}\r\n`;
  const off = weighted([n, 20], [Math.max(0, n - 2), 1], [n + 2, 1]);
  return framing.chain((f) => {
    switch (f) {
      case 'none':
        return fc.constant({ lines: [], tail: n === 0 ? '' : body });
      case 'length':
        return off.map((len) => ({ lines: [`Content-Length: ${len}\r\n`], tail: body }));
      case 'length-spelled':
        return lengthSpelled(n).map((v) => ({ lines: [`Content-Length: ${v}\r\n`], tail: body }));
      case 'lengths':
        return weighted([String(n), 1], [String(n + 1), 1]).map((v) => ({ lines: [cl, `Content-Length: ${v}\r\n`], tail: body }));
      case 'chunked':
        return chunkedBody(body).map((tail) => ({ lines: ['Transfer-Encoding: chunked\r\n'], tail }));
      case 'te-spelled':
        return fc.tuple(teSpelled, chunkedBody(body)).map(([te, tail]) => ({ lines: [`Transfer-Encoding: ${te}\r\n`], tail }));
      case 'te-and-length':
        return fc.tuple(fc.boolean(), chunkedBody(body)).map(([first, tail]) => ({ lines: first ? [cl, 'Transfer-Encoding: chunked\r\n'] : ['Transfer-Encoding: chunked\r\n', cl], tail }));
      case 'te-twice':
        return fc.tuple(weighted(['chunked', 1], ['gzip', 1]), chunkedBody(body)).map(([te, tail]) => ({ lines: [`Transfer-Encoding: ${te}\r\n`, 'Transfer-Encoding: chunked\r\n'], tail }));
      case 'lookalike':
        return weighted(['Content_Length', 1], ['Transfer_Encoding', 1]).map((name) => ({ lines: [cl, `${name}: ${name.startsWith('C') ? n : 'chunked'}\r\n`], tail: body }));
    }
  });
}

/** A request's parts, damaged or not. */
function requestOf(parts: {
  method: fc.Arbitrary<string>;
  head: fc.Arbitrary<string>;
  tail: fc.Arbitrary<string>;
  space: fc.Arbitrary<string>;
  version: fc.Arbitrary<string>;
  eol: fc.Arbitrary<string>;
  hosts: fc.Arbitrary<number>;
  host: fc.Arbitrary<string>;
  field: fc.Arbitrary<string>;
  headEnd: fc.Arbitrary<string>;
}): fc.Arbitrary<string> {
  return fc
    .record({
      method: parts.method,
      sp1: parts.space,
      head: parts.head,
      tail: parts.tail,
      sp2: parts.space,
      version: parts.version,
      eol: parts.eol,
      hosts: parts.hosts,
      host: parts.host,
      host2: parts.host,
      fields: fc.array(parts.field, { maxLength: 4 }),
      body: fc.oneof({ arbitrary: fc.constant(''), weight: 1 }, { arbitrary: bodyBytes, weight: 3 }),
      hostAt: fc.nat(5),
      headEnd: parts.headEnd,
    })
    .chain((r) =>
      framed(r.body).map(({ lines, tail }) => {
        const fields = [...r.fields];
        if (r.hosts > 0) fields.splice(Math.min(r.hostAt, fields.length), 0, r.host);
        if (r.hosts > 1) fields.push(r.host2);
        // The framing lines go in at the end or among the others: both are how clients send them.
        fields.splice(r.hostAt % (fields.length + 1), 0, ...lines);
        return `${r.method}${r.sp1}${r.head}${ID}.#${r.tail}${r.sp2}${r.version}${r.eol}${fields.join('')}${r.headEnd}${tail}`;
      }),
    );
}

const plainField = fieldLine(
  weighted(['X-A', 4], ['Content-Type', 2], ['x-dup', 1], ['Cookie', 1], ['Connection', 1], ['X-Request-Id', 1]),
  weighted(['v', 4], ['application/json', 2], ['keep-alive', 1], ['close', 1], ['a=1; b=2', 1]),
);

/**
 * One request; `#` in the target is its place in the pipeline. Half of them well formed in every
 * part but their framing (so pipelines go on past the first request and framing meets framing),
 * half damaged anywhere.
 */
const request = fc.oneof(
  requestOf({
    method: weighted(['POST', 6], ['GET', 2], ['PUT', 1], ['HEAD', 1], ['OPTIONS', 1]),
    head: fc.constant('/seldon/f/m/'),
    tail: weighted(['', 4], ['/x', 1], ['?q=1', 1]),
    space: fc.constant(' '),
    version: weighted(['HTTP/1.1', 20], ['HTTP/1.0', 1]),
    eol: fc.constant('\r\n'),
    hosts: fc.constant(1),
    host: fc.constant('Host: gw.example\r\n'),
    field: plainField,
    headEnd: fc.constant('\r\n'),
  }),
  requestOf({
    method,
    head: targetHead,
    tail: targetTail,
    space,
    version,
    eol: lineEnd,
    hosts: weighted([1, 30], [0, 1], [2, 1]),
    host: hostLine,
    field: fieldLine(fieldName, fieldValue),
    headEnd: weighted(['\r\n', 60], ['\n', 1], ['', 1]),
  }),
);

/** A pipeline of requests, a fragment after them now and then, and its write boundaries. */
export const requestCase: fc.Arbitrary<RequestCase> = fc
  .tuple(fc.array(request, { minLength: 1, maxLength: 4 }), weighted(['', 40], ['GET', 1], ['\r\n', 1], ['junk', 1], [`POST /seldon/f/m/${ID}.z HTTP/1.1\r\nHost: h\r\n`, 1]))
  .map(([requests, after]) => requests.map((q, i) => q.replace('#', String(i))).join('') + after)
  .chain((stream) => splits(stream.length).map((at) => ({ stream, splits: at })));

/** The case's bytes with its id in place. */
export function requestBytes(c: RequestCase, id: string): Buffer {
  return Buffer.from(c.stream.replaceAll(ID, id), 'latin1');
}
