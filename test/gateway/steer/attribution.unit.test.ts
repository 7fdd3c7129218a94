/**
 * Attribution tokens (docs/bandits.md#the-attribution-token): issued and verified by any replica
 * holding the key; anything changed in them, another deployment's, another key's, too old or from
 * too far in the future is refused with its outcome.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CLOCK_SKEW_MS, issueToken, MAX_TOKEN_LENGTH, verifyToken } from '../../../gateway/steer/attribution.js';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER_KEY = Buffer.from('fedcba9876543210fedcba9876543210');
const NONCE = Buffer.from('000102030405060708090a0b', 'hex');
const DEPLOYMENT = 'seldon/income';
const NOW = 1_767_225_600_000;
const TTL = 3_600_000;

/** Replaces part `index` (0-based, dot-separated) of `token`. */
function withPart(token: string, index: number, value: string): string {
  const parts = token.split('.');
  parts[index] = value;
  return parts.join('.');
}

/** `s` with its first or last character changed to another of the base64url alphabet. */
const other = (c: string): string => (c === 'A' ? 'B' : 'A');
const flipLast = (s: string): string => s.slice(0, -1) + other(s.slice(-1));
const flipFirst = (s: string): string => other(s[0]!) + s.slice(1);

describe('issueToken', () => {
  it('is 1.<arm>.<issued, base 36>.<nonce>.<mac>, all URL-safe', () => {
    const token = issueToken(KEY, 'canary', DEPLOYMENT, NOW, NONCE);
    expect(token).toBe(`1.canary.${NOW.toString(36)}.${NONCE.toString('base64url')}.${token.split('.')[4]}`);
    expect(token).toMatch(/^[A-Za-z0-9._~-]+$/);
    expect(token.split('.')[4]).toHaveLength(22);
    expect(encodeURIComponent(token)).toBe(token);
  });

  it('the MAC is HMAC-SHA256 (first 16 bytes) over the length-prefixed version, deployment, arm, time and nonce', () => {
    for (const key of [KEY, Buffer.alloc(100, 7)]) {
      const token = issueToken(key, 'canary', DEPLOYMENT, NOW, NONCE);
      const [, , issued, nonce, mac] = token.split('.') as [string, string, string, string, string];
      const input = ['1', DEPLOYMENT, 'canary', issued, nonce].map((p) => `${Buffer.byteLength(p)}:${p};`).join('');
      expect(mac).toBe(createHmac('sha256', key).update(input).digest().subarray(0, 16).toString('base64url'));
    }
  });

  it('a random nonce each time unless given', () => {
    const a = verifyToken(KEY, issueToken(KEY, 'a', DEPLOYMENT, NOW), DEPLOYMENT, NOW, TTL);
    const b = verifyToken(KEY, issueToken(KEY, 'a', DEPLOYMENT, NOW), DEPLOYMENT, NOW, TTL);
    expect(a.ok && b.ok && a.nonce !== b.nonce).toBe(true);
  });

  it('names outside [A-Za-z0-9_-] travel as ~base64url and come back whole', () => {
    for (const arm of ['model.v2', 'modèle', 'a b', '~x']) {
      const token = issueToken(KEY, arm, DEPLOYMENT, NOW, NONCE);
      expect(token.split('.')[1]).toBe(`~${Buffer.from(arm).toString('base64url')}`);
      expect(verifyToken(KEY, token, DEPLOYMENT, NOW, TTL)).toEqual({ ok: true, arm, nonce: NONCE.toString('base64url'), issuedAt: NOW });
    }
  });

  it('refuses a nonce of another size and an arm too long for a token', () => {
    expect(() => issueToken(KEY, 'a', DEPLOYMENT, NOW, Buffer.alloc(8))).toThrow(RangeError);
    expect(() => issueToken(KEY, 'a'.repeat(250), DEPLOYMENT, NOW, NONCE)).toThrow(RangeError);
    expect(() => issueToken([], 'a', DEPLOYMENT, NOW, NONCE)).toThrow(TypeError);
  });
});

describe('verifyToken', () => {
  const token = issueToken(KEY, 'canary', DEPLOYMENT, NOW, NONCE);

  it('accepts its own token: arm, nonce and issue time', () => {
    expect(verifyToken(KEY, token, DEPLOYMENT, NOW + 1000, TTL)).toEqual({ ok: true, arm: 'canary', nonce: NONCE.toString('base64url'), issuedAt: NOW });
  });

  it.each([
    ['another arm', () => withPart(token, 1, 'main')],
    ['an earlier issue time', () => withPart(token, 2, (NOW - 1).toString(36))],
    ['a later issue time', () => withPart(token, 2, (NOW + 1).toString(36))],
    ['another nonce', () => withPart(token, 3, flipLast(token.split('.')[3]!))],
    ['another MAC', () => withPart(token, 4, flipFirst(token.split('.')[4]!))],
  ])('%s is forged', (_name, make) => {
    expect(verifyToken(KEY, make(), DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'forged' });
  });

  it("another deployment's token is forged here", () => {
    expect(verifyToken(KEY, issueToken(KEY, 'canary', 'seldon/other', NOW, NONCE), DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'forged' });
    expect(verifyToken(KEY, token, 'other/income', NOW, TTL)).toEqual({ ok: false, outcome: 'forged' });
  });

  it('a token signed with another key is forged', () => {
    expect(verifyToken(OTHER_KEY, token, DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'forged' });
  });

  it('key rotation: issued with the first key, accepted with any in the list', () => {
    const fresh = issueToken([OTHER_KEY, KEY], 'canary', DEPLOYMENT, NOW, NONCE);
    expect(verifyToken(OTHER_KEY, fresh, DEPLOYMENT, NOW, TTL).ok).toBe(true);
    expect(verifyToken(KEY, fresh, DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'forged' });
    // An old token, while the old key is still listed after the new one; then not.
    expect(verifyToken([OTHER_KEY, KEY], token, DEPLOYMENT, NOW, TTL).ok).toBe(true);
    expect(verifyToken([OTHER_KEY], token, DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'forged' });
  });

  it('expires after the TTL, not at it', () => {
    expect(verifyToken(KEY, token, DEPLOYMENT, NOW + TTL, TTL).ok).toBe(true);
    expect(verifyToken(KEY, token, DEPLOYMENT, NOW + TTL + 1, TTL)).toEqual({ ok: false, outcome: 'expired' });
  });

  it('a token from the future is accepted within the clock skew, expired beyond it', () => {
    expect(verifyToken(KEY, token, DEPLOYMENT, NOW - DEFAULT_CLOCK_SKEW_MS, TTL).ok).toBe(true);
    expect(verifyToken(KEY, token, DEPLOYMENT, NOW - DEFAULT_CLOCK_SKEW_MS - 1, TTL)).toEqual({ ok: false, outcome: 'expired' });
    expect(verifyToken(KEY, token, DEPLOYMENT, NOW - 5000, TTL, 1000)).toEqual({ ok: false, outcome: 'expired' });
  });

  it('a forged token is forged even when it is also too old', () => {
    expect(verifyToken(OTHER_KEY, token, DEPLOYMENT, NOW + 10 * TTL, TTL)).toEqual({ ok: false, outcome: 'forged' });
  });

  it.each([
    ['empty', ''],
    ['not a token', 'hello'],
    ['another version', '2' + token.slice(1)],
    ['a part missing', token.split('.').slice(0, 4).join('.')],
    ['a part too many', `${token}.x`],
    ['a short MAC', withPart(token, 4, token.split('.')[4]!.slice(1))],
    ['a MAC spelled with bits past its 16 bytes', withPart(token, 4, token.split('.')[4]!.slice(0, -1) + 'B')],
    ['a padded nonce', withPart(token, 3, 'AAECAwQFBgcICQ==')],
    ['an empty arm', withPart(token, 1, '')],
    ['a plain arm written as ~base64url', withPart(token, 1, `~${Buffer.from('canary').toString('base64url')}`)],
    ['an issue time in capitals', withPart(token, 2, NOW.toString(36).toUpperCase())],
    ['spaces around it', ` ${token} `],
  ])('%s is malformed', (_name, bad) => {
    expect(verifyToken(KEY, bad, DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'malformed' });
  });

  it(`longer than ${MAX_TOKEN_LENGTH} characters is malformed before any other work`, () => {
    // An empty key list throws once a MAC is computed: this returns first.
    expect(verifyToken([], token + 'x'.repeat(MAX_TOKEN_LENGTH), DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'malformed' });
    expect(verifyToken([], 'x'.repeat(MAX_TOKEN_LENGTH + 1), DEPLOYMENT, NOW, TTL)).toEqual({ ok: false, outcome: 'malformed' });
  });
});
