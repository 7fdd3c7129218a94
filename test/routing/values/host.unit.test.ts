/**
 * `validHost`: the Host / :authority values RFC 9112 §3.2 and RFC 3986 §3.2.2 allow, as Envoy's header
 * validator reads them, and the attacker's shapes it refuses. Over sockets: test/gateway/edge/host-and-target.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validHost } from '../../../routing/values/host.js';

describe('validHost', () => {
  it.each([
    'a',
    'api.example.com',
    'API.Example.COM',
    'api.example.com.',
    'api.example.com:8080',
    '10.0.0.1',
    '10.0.0.1:80',
    '[::1]',
    '[::1]:8000',
    '[2001:db8::1]:443',
    '[::ffff:10.0.0.1]',
    'my_host-1.local',
    'a%41b',
    "x!$&'()*+;=~y",
    'h:1',
    'h:65535',
    'h:00080',
  ])('%j is valid', (host) => expect(validHost(host)).toBe(true));

  it.each([
    '',
    'api.example.com@evil.com',
    'user@h',
    '@h',
    'a b',
    ' a',
    'a\t',
    'x,y',
    '[::1',
    '::1',
    '[]',
    '[:]',
    '[::1]x',
    '[::1]:',
    '[::1]:0',
    '[v1.x]',
    '[::g]',
    'h:80:80',
    'h:',
    ':80',
    ':',
    'h:8o',
    'h:-1',
    'h:+80',
    'h:65536',
    'h:99999',
    'h:123456',
    'h:0',
    'h/x',
    'h\\x',
    'h?x',
    'h#x',
    'h%',
    'h%4',
    'h%zz',
    'h"x',
    '<x>',
    'h\u00e9',
    'h\u0000',
    'h\r\nx: y',
  ])('%j is invalid', (host) => expect(validHost(host)).toBe(false));

  it('every value of RFC 3986 reg-name characters (no `,`) with a port 1..65535 is valid; one character outside them makes it invalid', () => {
    const regChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+;=".split(''));
    fc.assert(
      fc.property(fc.array(regChar, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 65535 }), fc.boolean(), (chars, port, withPort) => {
        const host = chars.join('') + (withPort ? `:${port}` : '');
        expect(validHost(host)).toBe(true);
      }),
      { seed: 74, numRuns: 500 },
    );
    const bad = fc.constantFrom(...' ,@/\\?#"<>[]{}|^`\u0000\u007f\u00ff'.split(''));
    fc.assert(
      fc.property(fc.array(regChar, { minLength: 1, maxLength: 20 }), bad, fc.nat(), (chars, c, at) => {
        const i = at % (chars.length + 1);
        expect(validHost([...chars.slice(0, i), c, ...chars.slice(i)].join(''))).toBe(false);
      }),
      { seed: 74, numRuns: 500 },
    );
  });
});
