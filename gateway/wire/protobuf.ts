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
  varintInto(n, out);
  return out;
}

/** `v` as a 64-bit varint onto `out`: a bigint only where a number cannot say it (negative, or beyond 2^53). */
function varintOf(v: number | bigint, out: number[]): void {
  if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) varintInto(v, out);
  else varint64Bytes(BigInt(v), out);
}

/** `n` (a non-negative integer up to 2^53) as a varint, pushed onto `out`. */
function varintInto(n: number, out: number[]): void {
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

/** The varint at `i` as a bigint (64 bits, unsigned: every bit kept), or null when it runs past `end` or over 10 bytes. */
export function readVarint64(b: Uint8Array, i: number, end: number): bigint | null {
  let value = 0n;
  let shift = 0n;
  for (let n = 0; n < 10 && i < end; n++) {
    const c = b[i++]!;
    value |= BigInt(c & 0x7f) << shift;
    if (c < 0x80) return value & 0xffffffffffffffffn;
    shift += 7n;
  }
  return null;
}

/** `v` as a varint of 64 bits (a negative number two's complement, ten bytes, as int32 and int64 are written). */
export function varint64Bytes(v: bigint, out: number[]): void {
  let u = v < 0n ? v + 0x10000000000000000n : v;
  while (u >= 0x80n) {
    out.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  out.push(Number(u));
}

/** Typed arrays hold numbers in the platform's byte order: little-endian almost everywhere, protobuf's own. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Up to this many, floats are read and written one by one: a typed array's set-up costs more than a few element reads (a 1×4 tensor). */
const FEW_FLOATS = 16;

/**
 * Each little-endian double (`width` 8) or float (4) of b[start, end) pushed onto `out` (the length a
 * multiple of `width`, checked by the caller): read through a typed array over the bytes (copied when they
 * are not aligned), not one `readDoubleLE` each.
 */
export function readPackedFloats(b: Buffer, start: number, end: number, width: 4 | 8, out: number[]): void {
  const n = (end - start) / width;
  if (!LITTLE_ENDIAN || n <= FEW_FLOATS) {
    for (let i = start; i < end; i += width) out.push(width === 8 ? b.readDoubleLE(i) : b.readFloatLE(i));
    return;
  }
  const at = b.byteOffset + start;
  const aligned = at % width === 0 ? b.buffer : b.buffer.slice(at, at + n * width);
  const offset = at % width === 0 ? at : 0;
  const a = width === 8 ? new Float64Array(aligned, offset, n) : new Float32Array(aligned, offset, n);
  for (let i = 0; i < n; i++) out.push(a[i]!);
}

/** Payloads up to this many bytes are copied among the writer's own bytes; larger ones are kept as they are, by reference. */
const SMALL_PAYLOAD = 64;
const SCRATCH = new DataView(new ArrayBuffer(8));

/**
 * A message written field by field, in order: what the gateway composes itself (a translated
 * message), never on a route that does not need it. Tags, lengths, varints, fixed values and small
 * payloads gather in one list of bytes, made a Buffer only where a large payload interrupts it: a
 * small message is one allocation at `finish`, not one per field (a 1×4 tensor's answer had a dozen).
 */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];
  /** Bytes of the parts. */
  private partBytes = 0;
  /** What was written since the last part. */
  private pending: number[] = [];

  /** Bytes written so far. */
  private get size(): number {
    return this.partBytes + this.pending.length;
  }

  private seal(): void {
    if (this.pending.length === 0) return;
    this.parts.push(Buffer.from(this.pending));
    this.partBytes += this.pending.length;
    this.pending = [];
  }

  private push(b: Uint8Array): this {
    if (b.length <= SMALL_PAYLOAD) {
      const pending = this.pending;
      for (let i = 0; i < b.length; i++) pending.push(b[i]!);
      return this;
    }
    this.seal();
    this.parts.push(b as Buffer);
    this.partBytes += b.length;
    return this;
  }

  private head(field: number, wire: number, len?: number): this {
    varintInto(field * 8 + wire, this.pending);
    if (len !== undefined) varintInto(len, this.pending);
    return this;
  }

  /** Fields already written (their tags and payloads), as they are; nothing when empty. */
  fields(encoded: Buffer): this {
    return encoded.length === 0 ? this : this.push(encoded);
  }

  /** A length-delimited field (bytes, a string's UTF-8, a message). */
  bytes(field: number, payload: Uint8Array): this {
    return this.head(field, LEN, payload.length).push(payload);
  }

  string(field: number, s: string): this {
    // Short ASCII text (a name, a datatype) is its own UTF-8: its codes go straight in, no Buffer made.
    if (s.length <= SMALL_PAYLOAD) {
      let ascii = true;
      for (let i = 0; i < s.length && ascii; i++) ascii = s.charCodeAt(i) < 0x80;
      if (ascii) {
        const pending = this.head(field, LEN, s.length).pending;
        for (let i = 0; i < s.length; i++) pending.push(s.charCodeAt(i));
        return this;
      }
    }
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  /** A message field: `m`'s large parts are taken as they are, so a message nested n deep is copied once, at the outermost `finish`. */
  message(field: number, m: ProtoWriter): this {
    this.head(field, LEN, m.size);
    for (const p of m.parts) this.push(p);
    for (const b of m.pending) this.pending.push(b);
    return this;
  }

  /** A varint field (bool, enum, int32, int64, uint32, uint64). */
  varint(field: number, v: number | bigint): this {
    this.head(field, VARINT);
    varintOf(v, this.pending);
    return this;
  }

  double(field: number, v: number): this {
    this.head(field, FIXED64);
    SCRATCH.setFloat64(0, v, true);
    for (let i = 0; i < 8; i++) this.pending.push(SCRATCH.getUint8(i));
    return this;
  }

  /** A packed repeated varint field (empty: not written, as proto3 writes it). */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const out: number[] = [];
    for (const v of values) varintOf(v, out);
    if (out.length > SMALL_PAYLOAD) return this.bytes(field, Buffer.from(out));
    this.head(field, LEN, out.length);
    for (const b of out) this.pending.push(b);
    return this;
  }

  /** A packed repeated double (`width` 8) or float (4) field. */
  packedFloats(field: number, values: readonly number[], width: 4 | 8): this {
    if (values.length === 0) return this;
    if (LITTLE_ENDIAN && values.length > FEW_FLOATS) {
      // The typed array converts in one native pass; its memory is the little-endian payload.
      const a = width === 8 ? new Float64Array(values) : new Float32Array(values);
      return this.bytes(field, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
    }
    this.head(field, LEN, values.length * width);
    const pending = this.pending;
    for (const v of values) {
      if (width === 8) SCRATCH.setFloat64(0, v, true);
      else SCRATCH.setFloat32(0, v, true);
      for (let i = 0; i < width; i++) pending.push(SCRATCH.getUint8(i));
    }
    return this;
  }

  finish(): Buffer {
    this.seal();
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partBytes);
  }
}
