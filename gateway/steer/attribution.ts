/**
 * Attribution tokens (docs/bandits.md#the-attribution-token): what a bandit deployment's answer
 * carries so that its feedback can be credited to the arm that served it, on any replica.
 *
 *   1.<arm>.<issued>.<nonce>.<mac>
 *
 * `1` is the format; `<arm>` the predictor name when it is made of [A-Za-z0-9_-] only, else `~`
 * and its UTF-8 bytes in base64url; `<issued>` the issue time in ms since the epoch, base 36;
 * `<nonce>` 12 random bytes, base64url (each token is credited once: the store keeps the nonce);
 * `<mac>` the first 16 bytes of HMAC-SHA256 over the deployment (namespace/name), the arm, the
 * issue time and the nonce, base64url. Every part is URL-safe, so the token fits a header, a JSON
 * string and a query parameter as it is.
 *
 * Keys: a list, current first. Tokens are issued with the first and accepted with any, so a key
 * is rotated by adding the new one in front and dropping the old one after the attribution TTL.
 */
import { createHash, randomBytes, timingSafeEqual, type Hash } from 'node:crypto';

/** Longer tokens are refused before any parsing or HMAC work. */
export const MAX_TOKEN_LENGTH = 256;
/** How far in the future a token's issue time may be (clocks of replicas differ a little). */
export const DEFAULT_CLOCK_SKEW_MS = 60_000;
export const NONCE_BYTES = 12;
const MAC_BYTES = 16;
const VERSION = '1';

const SIMPLE_ARM = /^[A-Za-z0-9_-]+$/;
const TOKEN = /^1\.(~?[A-Za-z0-9_-]+)\.([0-9a-z]{1,11})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})$/;

export type Keys = Buffer | readonly Buffer[];

export type Verified = { ok: true; arm: string; nonce: string; issuedAt: number } | { ok: false; outcome: 'forged' | 'expired' | 'malformed' };

/** A fresh random key (32 bytes) for a replica set that has none configured. */
export function generateKey(): Buffer {
  return randomBytes(32);
}

function keyList(keys: Keys): readonly Buffer[] {
  const list = Buffer.isBuffer(keys) ? [keys] : keys;
  if (list.length === 0 || list.some((k) => k.length === 0)) throw new TypeError('attribution needs at least one non-empty key');
  return list;
}

/**
 * HMAC-SHA256 with the key's inner and outer hash states computed once and copied per token:
 * `createHmac` spends about 20 µs setting up each call, the copies about 5 µs in all.
 */
const keyStates = new WeakMap<Buffer, { inner: Hash; outer: Hash }>();

function keyState(key: Buffer): { inner: Hash; outer: Hash } {
  let state = keyStates.get(key);
  if (!state) {
    const block = Buffer.alloc(64);
    (key.length > 64 ? createHash('sha256').update(key).digest() : key).copy(block);
    const pad = (byte: number): Buffer => Buffer.from(block.map((b) => b ^ byte));
    state = { inner: createHash('sha256').update(pad(0x36)), outer: createHash('sha256').update(pad(0x5c)) };
    keyStates.set(key, state);
  }
  return state;
}

function mac(key: Buffer, deployment: string, arm: string, issued: string, nonce: string): Buffer {
  // Length-prefixed fields: no two different (deployment, arm, …) tuples give the same input.
  let input = '';
  for (const part of [VERSION, deployment, arm, issued, nonce]) input += `${Buffer.byteLength(part)}:${part};`;
  const { inner, outer } = keyState(key);
  return outer.copy().update(inner.copy().update(input).digest()).digest().subarray(0, MAC_BYTES);
}

/**
 * A token for an answer `arm` of `deployment` (namespace/name) gave at `now` (ms), signed with the
 * first of `keys`. `nonce` (12 bytes) is random unless given. Throws a RangeError if the arm name
 * makes it longer than MAX_TOKEN_LENGTH (the annotation's parser refuses such names).
 */
export function issueToken(keys: Keys, arm: string, deployment: string, now: number, nonce: Buffer = randomBytes(NONCE_BYTES)): string {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`a nonce is ${NONCE_BYTES} bytes, got ${nonce.length}`);
  const armPart = SIMPLE_ARM.test(arm) ? arm : `~${Buffer.from(arm).toString('base64url')}`;
  const issued = Math.floor(now).toString(36);
  const noncePart = nonce.toString('base64url');
  const token = `${VERSION}.${armPart}.${issued}.${noncePart}.${mac(keyList(keys)[0]!, deployment, arm, issued, noncePart).toString('base64url')}`;
  if (token.length > MAX_TOKEN_LENGTH) throw new RangeError(`arm "${arm}" makes an attribution token longer than ${MAX_TOKEN_LENGTH} characters`);
  return token;
}

/**
 * Checks a token against `deployment` at `now`: its form (else `malformed`), its MAC with each of
 * `keys` in constant time (else `forged`; a token of another deployment is forged here), then its
 * age: older than `ttlMs`, or issued more than `skewMs` in the future, is `expired` (a good MAC
 * with a bad time is a clock or TTL matter, not a forgery).
 */
export function verifyToken(keys: Keys, token: string, deployment: string, now: number, ttlMs: number, skewMs = DEFAULT_CLOCK_SKEW_MS): Verified {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, outcome: 'malformed' };
  const m = TOKEN.exec(token);
  if (!m) return { ok: false, outcome: 'malformed' };
  const [, armPart, issued, nonce, macPart] = m as unknown as [string, string, string, string, string];
  let arm = armPart;
  if (armPart.startsWith('~')) {
    const bytes = Buffer.from(armPart.slice(1), 'base64url');
    arm = bytes.toString('utf8');
    // Only the canonical encoding of a valid UTF-8 name that needed it: one token, one spelling.
    if (SIMPLE_ARM.test(arm) || Buffer.from(arm).toString('base64url') !== armPart.slice(1)) return { ok: false, outcome: 'malformed' };
  }
  const given = Buffer.from(macPart, 'base64url');
  if (given.length !== MAC_BYTES || given.toString('base64url') !== macPart) return { ok: false, outcome: 'malformed' };
  let good = false;
  for (const key of keyList(keys)) if (timingSafeEqual(mac(key, deployment, arm, issued, nonce), given)) good = true;
  if (!good) return { ok: false, outcome: 'forged' };
  const issuedAt = parseInt(issued, 36);
  if (now - issuedAt > ttlMs || issuedAt - now > skewMs) return { ok: false, outcome: 'expired' };
  return { ok: true, arm, nonce, issuedAt };
}
