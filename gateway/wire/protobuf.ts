/**
 * Just enough of the protobuf wire format to add one field to a message and to find one field in
 * another without decoding the rest: a walk over a message's fields, and length-delimited writes.
 * Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32; groups (3, 4) are not accepted
 * (proto3 has none), and a walk that meets one, or runs past its end, reports the message malformed.
 */

export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

/** One field occurrence: number, wire type, where it begins, and where its payload is (for LEN, the bytes inside). */
export interface WireField {
  field: number;
  wire: number;
  /** The index of its tag's first byte. */
  at: number;
  /** The index just after its tag (for LEN, where the length begins). */
  afterTag: number;
  start: number;
  end: number;
}

/** The varint at `i` and the index after it, or null when it runs past `end` or over 10 bytes. */
export function readVarint(b: Uint8Array, i: number, end: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let n = 0; n < 10 && i < end; n++) {
    const c = b[i++]!;
    value += (c & 0x7f) * scale;
    if (c < 0x80) return { value, next: i };
    scale *= 128;
  }
  return null;
}

/**
 * Calls `visit` for each field of the message in b[start, end), in order, with one object reused
 * from call to call. False when the bytes are not a well-formed message at this level (fields
 * inside LEN payloads are not looked at).
 */
export function walkFields(b: Uint8Array, start: number, end: number, visit: (f: WireField) => void): boolean {
  const f: WireField = { field: 0, wire: 0, at: 0, afterTag: 0, start: 0, end: 0 };
  let i = start;
  while (i < end) {
    const tag = readVarint(b, i, end);
    if (!tag || tag.value > 0xffffffff) return false;
    f.field = Math.floor(tag.value / 8);
    f.wire = tag.value % 8;
    if (f.field === 0) return false;
    f.at = i;
    f.afterTag = i = tag.next;
    if (f.wire === VARINT) {
      const v = readVarint(b, i, end);
      if (!v) return false;
      f.start = i;
      i = v.next;
    } else if (f.wire === FIXED64 || f.wire === FIXED32) {
      f.start = i;
      i += f.wire === FIXED64 ? 8 : 4;
    } else if (f.wire === LEN) {
      const len = readVarint(b, i, end);
      if (!len) return false;
      f.start = len.next;
      i = len.next + len.value;
    } else return false;
    if (i > end) return false;
    f.end = i;
    visit(f);
  }
  return true;
}

export function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Field `field` as a length-delimited field holding `payload`. */
export function lenField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([...varintBytes(field * 8 + LEN), ...varintBytes(payload.length)]), payload]);
}
