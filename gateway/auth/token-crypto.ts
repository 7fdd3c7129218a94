/**
 * The cryptography of OAuth tokens (docs/routing.md#oauth-front-end): the key a token's record is
 * stored under, the AES-256-GCM seal of a client's current token under a key derived from its
 * secret, the fingerprint of a registration stored with each token, and the constant-time secret check.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { OAuthClient } from '../../routing/types.js';

const sha256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest();

/** The key under which a token's record is stored. */
export const tokenHash = (token: string): string => sha256(token).toString('base64url');

/** A client's deployment, `ns/name`. */
export const deploymentOf = (c: OAuthClient): string => `${c.namespace}/${c.deployment}`;

/** AES key sealing the client's token; derived from its secret once per registration and process. */
export function derive(c: OAuthClient): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // N = 2^14: about 30 ms and 16 MiB, once per registration and process.
    scrypt(c.secret, `seldon-gateway oauth ${c.clientId}`, 32, { N: 16384, r: 8, p: 1 }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** Fingerprint of a registration: stored with each token, compared on every check. */
export function fingerprint(key: Buffer, c: OAuthClient, identity: string): string {
  return sha256(Buffer.concat([key, Buffer.from(`\u0000${c.clientId}\u0000${deploymentOf(c)}\u0000${identity}`)]))
    .toString('base64url')
    .slice(0, 22);
}

/** The token, sealed under the client's key: only a caller who knows the secret reads it back. */
export function seal(key: Buffer, token: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The sealed token, or undefined when it was not sealed under this key. */
export function unseal(key: Buffer, sealed: string): string | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Same-length digests compared in constant time: neither length nor content leaks. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}
