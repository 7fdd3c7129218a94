/**
 * A request's fields on the way to the model (gateway/edge/upstream-fields.ts): written from the
 * lane's buffer (its ranges, its kinds) they are, byte for byte, what the list form writes
 * (edge/http-headers.ts upstreamRequestHeaders, then upstream/request-head.ts), on seeded random
 * heads with every kind of field the proxy treats apart, in any case and with any spacing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRequestHead, RequestHead } from '../../../gateway/edge/http1-request.js';
import { upstreamRequestHeaders, type ForwardInfo } from '../../../gateway/edge/http-headers.js';
import { UpstreamFields } from '../../../gateway/edge/upstream-fields.js';
import { framingLine, requestHead, type UpstreamRequest } from '../../../gateway/upstream/request-head.js';

const LIMITS = { maxHeadBytes: 64 * 1024, maxHeaders: 200 };
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g;

const NAMES = [
  'Content-Type',
  'content-type',
  'Accept',
  'X-Forwarded-For',
  'x-forwarded-for',
  'X-Forwarded-Proto',
  'X-Request-Id',
  'x-request-id',
  'Authorization',
  'Keep-Alive',
  'TE',
  'Trailer',
  'Proxy-Authorization',
  'Proxy-Authenticate',
  'X-Envoy-Original-Path',
  'x-envoy-retry-on',
  'X-Seldon-Predictor',
  'X-Custom',
  'Cookie',
  'User-Agent',
  'Content-Type',
  'content-type',
  'Accept-Encoding',
];
const VALUES = ['v', 'a b', '', '10.0.0.1', 'https', 'Bearer tok', 'caf\xe9', 'x,y', '1.2.3.4, 5.6.7.8'];
const SPACING = [
  ['', ''],
  [' ', ''],
  ['  ', ' '],
  ['\t', '\t'],
  [' ', ' '],
];

const field = fc.record({ name: fc.constantFrom(...NAMES), value: fc.constantFrom(...VALUES), spacing: fc.constantFrom(...SPACING) });
const headCase = fc.record({
  fields: fc.array(field, { maxLength: 12 }),
  hostAt: fc.nat({ max: 12 }),
  connection: fc.constantFrom(undefined, 'keep-alive', 'close', 'Keep-Alive'),
  length: fc.constantFrom(undefined, 0, 2),
  trusted: fc.boolean(),
  strip: fc.boolean(),
  /** The gateway sends a body of its own (a translated one). */
  ownBody: fc.boolean(),
});

type HeadCase = typeof headCase extends fc.Arbitrary<infer T> ? T : never;

function wire(c: HeadCase): string {
  const lines = c.fields.map((f) => `${f.name}:${f.spacing[0]}${f.value}${f.value === '' ? '' : f.spacing[1]}`);
  lines.splice(Math.min(c.hostAt, lines.length), 0, 'Host: gw.example:8003');
  if (c.connection !== undefined) lines.push(`Connection: ${c.connection}`);
  if (c.length !== undefined) lines.push(`Content-Length: ${c.length}`);
  return `POST /seldon/ns/m/api/v1.0/predictions HTTP/1.1\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}

function written(headers: UpstreamRequest['headers'], body: Buffer | null): string {
  const req: UpstreamRequest = { method: 'POST', path: '/api/v1.0/predictions', headers, body, headersTimeout: 0, bodyTimeout: 0 };
  return requestHead(req, 'model.ns:8000', framingLine(req, -1)).toString('latin1').replace(UUID, '<id>');
}

describe('the fields toward the model, from the lane buffer', () => {
  it('write what the list form writes, and list what it lists, for 2000 seeded heads', () => {
    fc.assert(
      fc.property(headCase, (c) => {
        const text = wire(c);
        const head = parseRequestHead(Buffer.from(text + 'x'.repeat(c.length ?? 0), 'latin1'), 0, LIMITS);
        expect(head, text).toBeInstanceOf(RequestHead);
        const h = head as RequestHead;
        const info: ForwardInfo = { remoteAddress: '127.0.0.7', proto: 'http', originalPath: h.target, trusted: c.trusted, stripAuthorization: c.strip };
        const list = upstreamRequestHeaders(h.rawHeaders, info);
        const fast = UpstreamFields.ofHead(h, info);
        const body = c.length ? Buffer.from('xx') : null;
        if (c.ownBody) {
          // Its own body's type, in either form, whichever it was in when told: the client's type and codings do not go.
          const listed = UpstreamFields.ofHead(h, info);
          listed.list();
          for (const f of [fast, listed, UpstreamFields.wrap(list)]) f.ownBody('application/json');
          const sent = written(fast.forClient(), body);
          expect(sent.match(/\r\ncontent-type: application\/json\r\n/gi), text).toHaveLength(1);
          expect(sent.match(/\r\n(content-type|accept-encoding):/gi), text).toHaveLength(1);
          expect(written(listed.forClient(), body), text).toBe(written(list, body));
        }
        expect(written(fast.forClient(), body), text).toBe(written(list, body));
        expect(fast.get('x-request-id') === undefined, text).toBe(false);
        // The list form made from the fast one (tracing, edits) is the list itself.
        expect(fast.list().join('\n').replace(UUID, '<id>'), text).toBe(list.join('\n').replace(UUID, '<id>'));
        expect(written(fast.forClient(), body), text).toBe(written(list, body));
      }),
      { seed: 20261126, numRuns: 2000 },
    );
  });

  it('the request id the model gets: the client’s, else the one the gateway made, the same one every time it is read', () => {
    const parse = (s: string): RequestHead => parseRequestHead(Buffer.from(s, 'latin1'), 0, LIMITS) as RequestHead;
    const info: ForwardInfo = { remoteAddress: '127.0.0.1', proto: 'http', originalPath: '/p' };
    const given = UpstreamFields.ofHead(parse('GET /p HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc\r\n\r\n'), info);
    expect(given.get('x-request-id')).toBe('abc');
    const made = UpstreamFields.ofHead(parse('GET /p HTTP/1.1\r\nHost: a\r\n\r\n'), info);
    const id = made.get('x-request-id');
    expect(id).toMatch(UUID);
    expect(made.list()).toContain(id);
    expect(made.get('x-request-id')).toBe(id);
  });

  it('a made id is the same in every head toward the model and in what reads it, whichever comes first', () => {
    const parse = (s: string): RequestHead => parseRequestHead(Buffer.from(s, 'latin1'), 0, LIMITS) as RequestHead;
    const info: ForwardInfo = { remoteAddress: '127.0.0.1', proto: 'http', originalPath: '/p' };
    const headOnce = (f: UpstreamFields): string => {
      const req: UpstreamRequest = { method: 'GET', path: '/p', headers: f.forClient(), body: null, headersTimeout: 0, bodyTimeout: 0 };
      return requestHead(req, 'model:8000', framingLine(req, -1)).toString('latin1');
    };
    const idOf = (text: string): string => /\r\nx-request-id: ([^\r]*)\r\n/.exec(text)![1]!;
    // Written first (the head toward the model), read after (the access log), written again (a retry).
    const writtenFirst = UpstreamFields.ofHead(parse('GET /p HTTP/1.1\r\nHost: a\r\n\r\n'), info);
    const first = headOnce(writtenFirst);
    expect(idOf(first)).toMatch(UUID);
    const others = Array.from({ length: 5000 }, () => headOnce(UpstreamFields.ofHead(parse('GET /p HTTP/1.1\r\nHost: a\r\n\r\n'), info)));
    expect(new Set(others.map(idOf)).size).toBe(5000);
    expect(others.map(idOf)).not.toContain(idOf(first));
    expect(headOnce(writtenFirst)).toBe(first);
    expect(writtenFirst.get('x-request-id')).toBe(idOf(first));
    expect(writtenFirst.list()).toContain(idOf(first));
    // Read first (a payload log at the start), written after.
    const readFirst = UpstreamFields.ofHead(parse('GET /p HTTP/1.1\r\nHost: a\r\n\r\n'), info);
    const id = readFirst.get('x-request-id')!;
    expect(idOf(headOnce(readFirst))).toBe(id);
    expect(idOf(headOnce(readFirst))).toBe(id);
  });

  it('a Connection that names other fields drops them too (the list form takes it)', () => {
    const head = parseRequestHead(Buffer.from('GET /p HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: s\r\nX-End: e\r\n\r\n', 'latin1'), 0, LIMITS) as RequestHead;
    const fast = UpstreamFields.ofHead(head, { remoteAddress: '127.0.0.1', proto: 'http', originalPath: '/p' });
    const text = written(fast.forClient(), null);
    expect(text).not.toMatch(/x-hop/i);
    expect(text).toMatch(/\r\nX-End: e\r\n/);
  });
});
