/**
 * gRPC's length-prefixed messages (gRPC over HTTP/2's Length-Prefixed-Message: a compressed flag, a
 * four-byte big-endian length, the message) where the gateway holds one whole: a translated call and
 * its answer, a bandit's tagged answer, a feedback's token, and the calls it makes itself (a model's
 * metadata, ext_authz). A forwarded call's messages are never looked at.
 */

/** The flag and the length before each message. */
export const MESSAGE_HEAD = 5;

/** `message` length-prefixed, uncompressed. */
export function lengthPrefixed(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MESSAGE_HEAD + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, MESSAGE_HEAD);
  return out;
}

/** The bytes are exactly one length-prefixed message, compressed or not: its prefix says all that follows. */
export const framesOneMessage = (whole: Buffer): boolean => whole.length >= MESSAGE_HEAD && whole.readUInt32BE(1) === whole.length - MESSAGE_HEAD;

/** The message of bytes that are exactly one uncompressed length-prefixed message; null for anything else. */
export function onlyMessage(whole: Buffer): Buffer | null {
  return whole.length >= MESSAGE_HEAD && whole[0] === 0 && framesOneMessage(whole) ? whole.subarray(MESSAGE_HEAD) : null;
}
