/**
 * Sticky assignment on the data plane (docs/rollouts.md#sticky): the point in [0, 1) a request's
 * sticky key falls on (routing/steering/shares.ts `stickyPoint`), which the weighted pick takes instead
 * of a draw. `header:<name>`: the header's value (gRPC: the metadata key). `cookie`: the
 * `seldon-gateway-sticky` cookie, signed by the gateway; a client without a valid one gets a new
 * one with the answer (gRPC: the metadata key `seldon-gateway-sticky`, the client's own value).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { STICKY_COOKIE, stickyPoint } from '../../routing/steering/shares.js';
import type { StickySpec } from '../../routing/steering/sticky.js';
import type { HeaderGetter } from '../../routing/types.js';

const ID_BYTES = 16;
const MAC_BYTES = 16;
/** A year: a client keeps its place for as long as a rollout can run. */
const COOKIE_MAX_AGE_S = 31_536_000;

function mac(key: Buffer, id: string): Buffer {
  return createHmac('sha256', key).update(`sticky\u0000${id}`).digest().subarray(0, MAC_BYTES);
}

/** The value of cookie `name` in a Cookie header (`a=1; b=2`), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class StickyKeys {
  private keys: readonly Buffer[] = [randomBytes(32)];

  /** The replicas' shared keys (gateway/steer/keys.ts): the first signs, all verify. */
  setKeys(keys: readonly Buffer[]): void {
    if (keys.length) this.keys = keys;
  }

  /** A new signed cookie value: `<id>.<mac>`, base64url. */
  mint(): string {
    const id = randomBytes(ID_BYTES).toString('base64url');
    return `${id}.${mac(this.keys[0]!, id).toString('base64url')}`;
  }

  /** The id of a signed cookie value, or undefined when it was not signed by a key of ours. */
  verify(value: string): string | undefined {
    const dot = value.indexOf('.');
    if (dot <= 0 || value.length > 128) return undefined;
    const id = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), 'base64url');
    if (given.length !== MAC_BYTES) return undefined;
    for (const k of this.keys) if (timingSafeEqual(given, mac(k, id))) return id;
    return undefined;
  }

  /** The Set-Cookie header value that hands a client `value`. */
  static setCookie(value: string): string {
    return `${STICKY_COOKIE}=${value}; Path=/; Max-Age=${COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax`;
  }

  /**
   * The request's point under `spec`. For a REST cookie spec without a valid cookie, a new value is
   * minted and set on `mintedFor.minted` (to be set on the answer; no closure per request); gRPC
   * (`rest` false) reads the metadata key instead and mints nothing.
   */
  point(spec: StickySpec, header: HeaderGetter, rest: boolean, mintedFor?: { minted: string | undefined }): number | undefined {
    if (spec.kind === 'header') {
      const v = header(spec.name);
      return v === undefined || v === '' ? undefined : stickyPoint(v);
    }
    if (!rest) {
      const v = header(STICKY_COOKIE);
      return v === undefined || v === '' ? undefined : stickyPoint(v);
    }
    const given = cookieValue(header('cookie'), STICKY_COOKIE);
    const id = given === undefined ? undefined : this.verify(given);
    if (id !== undefined) return stickyPoint(id);
    if (mintedFor === undefined) return undefined;
    const value = this.mint();
    mintedFor.minted = value;
    return stickyPoint(value.slice(0, value.indexOf('.')));
  }
}
