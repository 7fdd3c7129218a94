/**
 * The lane's request head parser (gateway/edge/http1-request.ts) as properties, without sockets:
 *   - over the request fuzzer's grammar (fuzz/request-grammar.ts): every head the lane takes,
 *     llhttp reads the same way (method, target, field lines, body length, keep-alive);
 *   - any well-formed head of the lane's shape survives the trip: written out and parsed back,
 *     the same method, target, fields and length, and no prefix of it is ruled out early (a head
 *     arriving a byte at a time is waited for, never handed to `node:http` half read).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MORE, parseRequestHead } from '../../../gateway/edge/http1-request.js';
import { llhttp } from '../../../fuzz/llhttp.js';
import { requestBytes, requestCase } from '../../../fuzz/request-grammar.js';

const LIMITS = { maxHeadBytes: 16 * 1024, maxHeaders: 100 };
const RUNS = Number(process.env.SELDON_GATEWAY_FUZZ_CASES ?? 20_000);

describe("the lane's head parser (properties)", () => {
  it(`${RUNS} generated streams: every head the lane takes, llhttp reads the same way`, () => {
    fc.assert(
      fc.property(requestCase, (c) => {
        const bytes = requestBytes(c, 'abcdefgh');
        const head = parseRequestHead(bytes, 0, LIMITS);
        if (typeof head === 'string') return;
        const ref = llhttp(bytes).requests[0];
        expect(ref, 'llhttp reads a request').toBeDefined();
        expect(ref!.method).toBe(head.method);
        expect(ref!.target).toBe(head.target);
        expect(ref!.rawHeaders).toEqual(head.rawHeaders);
        expect(ref!.keepAlive).toBe(!head.close);
        expect(ref!.upgrade).toBe(false);
        const length = ref!.rawHeaders.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === 'content-length');
        expect(length < 0 ? 0 : Number(ref!.rawHeaders[length + 1])).toBe(head.contentLength);
      }),
      { seed: 20261124, numRuns: RUNS },
    );
  });

  const tchar = fc.constantFrom(...'abcxyzABCXYZ0189-!#$%&*+.^_`|~');
  const name = fc.array(tchar, { minLength: 1, maxLength: 12 }).map((cs) => cs.join(''));
  const vchar = fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
  // A value without surrounding whitespace (that is trimmed), inner SP kept.
  const value = fc.tuple(vchar, fc.array(fc.oneof(vchar, fc.constant(' ')), { maxLength: 20 }), vchar).map(([a, mid, b]) => `${a}${mid.join('')}${b}`);
  const framing = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'proxy-connection', 'expect', 'upgrade', 'content_length', 'transfer_encoding']);
  const head = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
    target: fc.array(fc.constantFrom(..."/abcXYZ019-._~!$&'()*+,;=:@?%"), { maxLength: 30 }).map((cs) => `/${cs.join('')}`),
    fields: fc.array(fc.tuple(name, value), { maxLength: 10 }).map((fs) => fs.filter(([n]) => !framing.has(n.toLowerCase()))),
    length: fc.option(fc.nat(100_000), { nil: undefined }),
    hostAt: fc.nat(10),
  });

  it('a well-formed head of its shape: parsed back the same, and no prefix of it ruled out', () => {
    fc.assert(
      fc.property(head, (h) => {
        const fields: [string, string][] = [...h.fields];
        fields.splice(Math.min(h.hostAt, fields.length), 0, ['Host', 'gw.example']);
        if (h.length !== undefined) fields.push(['Content-Length', String(h.length)]);
        const text = `${h.method} ${h.target} HTTP/1.1\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
        const bytes = Buffer.from(text, 'latin1');
        const parsed = parseRequestHead(bytes, 0, LIMITS);
        if (typeof parsed === 'string') throw new Error(`not taken: ${JSON.stringify(text)}`);
        expect(parsed).toMatchObject({ method: h.method, target: h.target, rawHeaders: fields.flat(), host: 'gw.example', size: bytes.length, contentLength: h.length ?? 0, close: false });
        for (let i = 1; i < bytes.length; i += Math.max(1, Math.floor(bytes.length / 25))) expect(parseRequestHead(bytes.subarray(0, i), 0, LIMITS), `prefix ${i}`).toBe(MORE);
      }),
      { seed: 20261124, numRuns: Math.ceil(RUNS / 4) },
    );
  });
});
