import { describe, expect, it } from 'vitest';
import { readList } from '../../../routing/values/list.js';
import { parseCorsPolicy } from '../../../routing/policies/cors.js';
import { parseAlgorithms, parseCompressionFields } from '../../../routing/compression/config.js';
import { parseProtocolFields } from '../../../routing/policies/protocol.js';

describe('readList: one meaning for a list wherever it is written', () => {
  it('a string and a YAML list of the same entries are the same list; commas split, entries trimmed, empties dropped', () => {
    const same = ['a,b', ' a , b ', 'a,,b', 'a,b,', ',a,b', ['a', 'b'], ['a,b'], [' a', 'b ', ''], ['a,', ',b']];
    for (const v of same) expect(readList(v), JSON.stringify(v)).toEqual({ ok: true, value: ['a', 'b'] });
    expect(readList('')).toEqual({ ok: true, value: [] });
    expect(readList([])).toEqual({ ok: true, value: [] });
    expect(readList('a,a')).toEqual({ ok: true, value: ['a', 'a'] });
  });

  it('anything else is refused, naming it', () => {
    expect(readList(3)).toEqual({ ok: false, error: '3 is not a list or a comma-separated string' });
    expect(readList({ a: 1 })).toMatchObject({ ok: false });
    expect(readList(null)).toMatchObject({ ok: false });
    expect(readList(['a', 2])).toEqual({ ok: false, error: '2 is not a string' });
  });

  it('its callers agree: the same text in each is the same entries (CORS methods, compression algorithms and types)', () => {
    for (const text of ['GET,POST', 'GET, POST,', ['GET', 'POST'], ['GET,POST']]) {
      const p = parseCorsPolicy({ origins: 'https://a.example', methods: text }, 'cors');
      expect(p.ok ? p.value.policy.methods : p.error, JSON.stringify(text)).toEqual(['GET', 'POST']);
    }
    for (const text of ['gzip,br', 'gzip,,br', ['gzip', 'br,']]) {
      const c = parseCompressionFields(JSON.stringify({ algorithms: text, types: text === 'gzip,br' ? 'application/json,' : ['application/json'] }));
      expect(c.ok ? c.value : c.error, JSON.stringify(text)).toEqual({ algorithms: ['gzip', 'br'], types: ['application/json'] });
    }
    expect(parseAlgorithms(['gzip', 'br'])).toEqual({ ok: true, value: ['gzip', 'br'] });
    // seldon.io/gateway-protocol's accept: a trailing comma was an empty protocol, refused; now the same list.
    for (const text of ['seldon,v2', 'seldon,v2,', ['seldon', 'v2']]) {
      const f = parseProtocolFields(JSON.stringify({ accept: text }));
      expect(f.ok ? f.value.accept : f.error, JSON.stringify(text)).toEqual(['seldon', 'v2']);
    }
    expect(parseProtocolFields(JSON.stringify({ accept: 'seldon,grpc' })).ok).toBe(false);
  });
});
