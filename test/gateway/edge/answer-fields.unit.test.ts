/**
 * A model's answer fields on the way back to the client (gateway/edge/answer-fields.ts): written
 * from the bytes the model sent (the lane's form) they are, byte for byte, the list form
 * (edge/http-headers.ts clientResponseHeaders, then the gateway's own fields) written as lines,
 * on seeded random heads with every field the client-bound head treats apart, in any case and
 * spacing; what the fields read by name is the same in both forms.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AnswerFields, SERVICE_TIME_HEADER } from '../../../gateway/edge/answer-fields.js';
import { clientResponseHeaders } from '../../../gateway/edge/http-headers.js';
import { ResponseParser, type ResponseHead } from '../../../gateway/upstream/http1-response.js';

const NAMES = [
  'Content-Type',
  'content-type',
  'Date',
  'Connection',
  'Keep-Alive',
  'Proxy-Connection',
  'TE',
  'Trailer',
  'Upgrade',
  'Proxy-Authenticate',
  'X-Seldon-Predictor',
  'Set-Cookie',
  'Vary',
  'X-Model',
  'X-Envoy-Upstream-Service-Time',
  'x-envoy-upstream-service-time',
  'Content-Encoding',
  'ETag',
  'etag',
];
const VALUES = ['v', 'a b', '', 'keep-alive', 'close', 'application/json', 'caf\xe9'];
const SPACING = [
  ['', ''],
  [' ', ''],
  ['  ', ' '],
  ['\t', '\t'],
];

const field = fc.record({ name: fc.constantFrom(...NAMES), value: fc.constantFrom(...VALUES), spacing: fc.constantFrom(...SPACING) });
const answerCase = fc.record({
  status: fc.constantFrom(200, 201, 204, 304, 404, 503),
  reason: fc.constantFrom('', 'OK', 'Not Found', 'caf\xe9'),
  fields: fc.array(field, { maxLength: 10 }),
  length: fc.constantFrom<[string, number] | undefined>(undefined, ['Content-Length', 2], ['content-length', 0], ['Content-Length', 12]),
  lengthAt: fc.nat({ max: 10 }),
  zeros: fc.boolean(),
  added: fc.array(fc.tuple(fc.constantFrom('set-cookie', 'x-seldon-arm', 'connection', 'access-control-allow-origin'), fc.constantFrom('a=1', 'close', '*', 'tok')), { maxLength: 3 }),
  predictor: fc.constantFrom(undefined, 'main'),
  serviceMs: fc.option(fc.constantFrom(0, 7, 10, 999, 123456), { nil: undefined }),
  /** The gateway writes a body of its own (a translated answer) of this length. */
  ownBody: fc.option(fc.constantFrom(0, 9, 1234), { nil: undefined }),
});

function headOf(wire: string): ResponseHead {
  let head: ResponseHead | undefined;
  const parser = new ResponseParser({ onHead: (h) => (head = h), onBody: () => undefined, onEnd: () => undefined }, 64 * 1024);
  parser.expect(false);
  parser.execute(Buffer.from(wire, 'latin1'));
  return head!;
}

/** What the client-bound head's field lines are, from the fast form. */
function fastLines(f: AnswerFields): string {
  const out = Buffer.alloc(f.fieldBytes);
  expect(f.writeFields(out, 0)).toBe(out.length);
  const added = f.added;
  let text = out.toString('latin1');
  for (let i = 0; i < added.length; i += 2) text += `${added[i]}: ${added[i + 1]}\r\n`;
  return text;
}

const lines = (list: readonly string[]): string => list.map((v, i) => (i % 2 === 0 ? `${v}: ${list[i + 1]}\r\n` : '')).join('');

describe("the client-bound fields of a model's answer", () => {
  it('written from the bytes, they are the list form: 2000 seeded answers', () => {
    fc.assert(
      fc.property(answerCase, (c) => {
        const ls = c.fields.map((f) => `${f.name}:${f.spacing[0]}${f.value}${f.value === '' ? '' : f.spacing[1]}`);
        if (c.length !== undefined) ls.splice(Math.min(c.lengthAt, ls.length), 0, `${c.length[0]}: ${c.zeros ? '00' : ''}${c.length[1]}`);
        const wire = `HTTP/1.1 ${c.status}${c.reason === '' ? '' : ` ${c.reason}`}\r\n${ls.map((l) => `${l}\r\n`).join('')}\r\n`;
        const head = headOf(wire);
        const fast = AnswerFields.ofHead(head);
        const list = AnswerFields.ofList(clientResponseHeaders(head.headers, head.length));
        for (const f of [fast, list]) {
          if (c.serviceMs !== undefined) f.serviceTime(c.serviceMs);
          for (const [n, v] of c.added) f.add(n, v);
          if (c.predictor !== undefined) f.setPredictor(c.predictor);
          if (c.ownBody !== undefined) {
            f.ownBody('application/json', c.ownBody);
            f.add('x-seldon-translated', 'seldon->v2');
          }
        }
        if (c.ownBody !== undefined && !head.listsFields) expect(fast.fast, wire).toBe(true);
        if (c.ownBody !== undefined) {
          // Only the gateway's own body fields go: one type, one length, no coding or tag of the model's body.
          const named = (n: string): string[] => list.list().filter((_, i, l) => i % 2 === 1 && l[i - 1]!.toLowerCase() === n);
          expect(named('content-type'), wire).toEqual(['application/json']);
          expect(named('content-length'), wire).toEqual([String(c.ownBody)]);
          expect([...named('content-encoding'), ...named('etag'), ...named('transfer-encoding')], wire).toEqual([]);
        }
        for (const name of ['content-type', 'content-length', 'content-encoding', 'etag', 'x-seldon-predictor', 'date', 'connection', 'set-cookie', SERVICE_TIME_HEADER])
          expect(fast.get(name), `${wire} ${name}`).toBe(list.get(name));
        expect(head.reason).toBe(c.reason);
        if (fast.fast) expect(fastLines(fast), wire).toBe(lines(list.list()));
        if (c.serviceMs !== undefined) expect(list.get(SERVICE_TIME_HEADER)).toBe(String(c.serviceMs));
        expect(fast.list(), wire).toEqual(list.list());
      }),
      { seed: 20261126, numRuns: 2000 },
    );
  });

  it("a body of the gateway's own: the model's Content-Type, Content-Length, Content-Encoding and ETag do not go, written from the bytes", () => {
    const head = headOf('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Model: m\r\nContent-Encoding: identity\r\nETag: "t"\r\nContent-Length: 5\r\nVary: x\r\n\r\n');
    const f = AnswerFields.ofHead(head);
    f.add('content-type', 'text/html');
    f.ownBody('application/json', 42);
    f.add('x-seldon-translated', 'v2->seldon');
    expect(f.fast).toBe(true);
    expect(fastLines(f)).toBe('X-Model: m\r\nVary: x\r\ncontent-type: application/json\r\ncontent-length: 42\r\nx-seldon-translated: v2->seldon\r\n');
    expect(f.get('content-length')).toBe('42');
    expect(f.list()).toEqual(['X-Model', 'm', 'Vary', 'x', 'content-type', 'application/json', 'content-length', '42', 'x-seldon-translated', 'v2->seldon']);
  });

  it('a Connection that names other fields drops them too (the list form takes it)', () => {
    const head = headOf('HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: s\r\nX-End: e\r\nContent-Length: 0\r\n\r\n');
    const f = AnswerFields.ofHead(head);
    expect(f.fast).toBe(false);
    expect(f.list()).toEqual(['X-End', 'e', 'Content-Length', '0']);
  });
});
