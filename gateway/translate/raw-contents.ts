/**
 * The v2 protocol's raw contents (`raw_input_contents` / `raw_output_contents` of gRPC): a tensor's
 * elements little-endian back to back; BOOL one byte each (0 or 1); BYTES each element a 4-byte
 * length then its bytes; FP16 and BF16, which have no typed contents, only here. 64-bit integers
 * are bigints (exact); FP16 and BF16 read into the numbers they are (exact in a double) and are
 * written only when the number is exactly one of theirs. Pure.
 */
import { TranslateRefusal, type Datatype, type Element } from './datatypes.js';
import { readPackedFloats } from '../wire/protobuf.js';

const SIZE: Readonly<Partial<Record<Datatype, number>>> = { BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, BF16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8 };

/** The elements of `raw` for `dt` (BYTES: each element's bytes, as a Buffer); more than `limit` of them: `tooMany()` thrown, before they are read. */
export function readRaw(dt: Datatype, raw: Buffer, limit = Infinity, tooMany: () => Error = () => new TranslateRefusal(`raw ${dt} contents hold more than ${limit} elements`)): (Element | Buffer)[] {
  if (dt === 'BYTES') {
    const out: Buffer[] = [];
    let at = 0;
    while (at < raw.length) {
      if (out.length >= limit) throw tooMany();
      if (at + 4 > raw.length) throw new TranslateRefusal('raw BYTES contents end inside an element length');
      const n = raw.readUInt32LE(at);
      if (at + 4 + n > raw.length) throw new TranslateRefusal('raw BYTES contents end inside an element');
      out.push(raw.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
    return out;
  }
  const size = SIZE[dt]!;
  if (raw.length % size !== 0) throw new TranslateRefusal(`raw ${dt} contents of ${raw.length} bytes are not whole ${size}-byte elements`);
  if (raw.length / size > limit) throw tooMany();
  if (dt === 'FP32' || dt === 'FP64') {
    const floats: number[] = [];
    readPackedFloats(raw, 0, raw.length, size as 4 | 8, floats);
    return floats;
  }
  const n = raw.length / size;
  const out: Element[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (dt) {
      case 'BOOL': {
        const b = raw[o]!;
        if (b > 1) throw new TranslateRefusal(`raw BOOL element ${i} is ${b}, not 0 or 1`);
        out[i] = b === 1;
        break;
      }
      case 'UINT8':
        out[i] = raw.readUInt8(o);
        break;
      case 'INT8':
        out[i] = raw.readInt8(o);
        break;
      case 'UINT16':
        out[i] = raw.readUInt16LE(o);
        break;
      case 'INT16':
        out[i] = raw.readInt16LE(o);
        break;
      case 'UINT32':
        out[i] = raw.readUInt32LE(o);
        break;
      case 'INT32':
        out[i] = raw.readInt32LE(o);
        break;
      case 'UINT64':
        out[i] = raw.readBigUInt64LE(o);
        break;
      case 'INT64':
        out[i] = raw.readBigInt64LE(o);
        break;
      case 'FP16':
        out[i] = halfToNumber(raw.readUInt16LE(o));
        break;
      case 'BF16':
        out[i] = bfloatToNumber(raw.readUInt16LE(o));
        break;
      default:
        // FP32 and FP64 were read above, whole.
        throw new TranslateRefusal(`raw ${dt} contents are not read element by element`);
    }
  }
  return out;
}

/** `values` (already checked for `dt`, datatypes.ts) as raw contents; FP32 takes the nearest float32, FP16/BF16 only a value they hold exactly. */
export function writeRaw(dt: Datatype, values: readonly (Element | Buffer)[]): Buffer {
  if (dt === 'BYTES') {
    const parts = values.map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8')));
    const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.writeUInt32LE(p.length, at);
      p.copy(out, at + 4);
      at += 4 + p.length;
    }
    return out;
  }
  const size = SIZE[dt]!;
  const out = Buffer.allocUnsafe(values.length * size);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const o = i * size;
    const n = typeof v === 'bigint' ? v : Number(v);
    switch (dt) {
      case 'BOOL':
        out[o] = v === true ? 1 : 0;
        break;
      case 'UINT8':
        out.writeUInt8(n as number, o);
        break;
      case 'INT8':
        out.writeInt8(n as number, o);
        break;
      case 'UINT16':
        out.writeUInt16LE(n as number, o);
        break;
      case 'INT16':
        out.writeInt16LE(n as number, o);
        break;
      case 'UINT32':
        out.writeUInt32LE(n as number, o);
        break;
      case 'INT32':
        out.writeInt32LE(n as number, o);
        break;
      case 'UINT64':
        out.writeBigUInt64LE(BigInt(n), o);
        break;
      case 'INT64':
        out.writeBigInt64LE(BigInt(n), o);
        break;
      case 'FP16':
        out.writeUInt16LE(exactly(numberToHalf(Number(n)), halfToNumber, Number(n), dt, i), o);
        break;
      case 'BF16':
        out.writeUInt16LE(exactly(numberToBfloat(Number(n)), bfloatToNumber, Number(n), dt, i), o);
        break;
      case 'FP32': {
        // The nearest float32, as the model's own parser reads the same number sent as JSON text over REST
        // (FP32's range was checked, datatypes.ts); only a value that would vanish to zero is refused.
        const v = Number(n);
        if (v !== 0 && Math.fround(v) === 0) throw new TranslateRefusal(`element ${i} is ${String(n)}, too small for FP32 (it would be 0)`);
        out.writeFloatLE(v, o);
        break;
      }
      default:
        if (typeof n === 'bigint' && BigInt(Number(n)) !== n) throw new TranslateRefusal(`element ${i} is ${String(n)}, which FP64 cannot hold exactly`);
        out.writeDoubleLE(Number(n), o);
    }
  }
  return out;
}

function exactly(bits: number, back: (b: number) => number, v: number, dt: Datatype, i: number): number {
  if (back(bits) !== v && !(Number.isNaN(v) && Number.isNaN(back(bits)))) throw new TranslateRefusal(`element ${i} is ${v}, which ${dt} cannot hold exactly`);
  return bits;
}

/** IEEE 754 binary16 bits → the number. */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The binary16 bits of `v` when it is one (any other value gives bits that read back differently). */
export function numberToHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const exp = Math.floor(Math.log2(a));
  const e = Math.min(exp + 15, 0x1f);
  const frac = Math.round((a / 2 ** exp - 1) * 1024);
  return sign | (e << 10) | (frac & 0x3ff);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits (the top half of a binary32) → the number. */
export function bfloatToNumber(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}

/** The bfloat16 bits of `v` (truncated: exact when `v` is a bfloat16). */
export function numberToBfloat(v: number): number {
  f32[0] = v;
  return u32[0]! >>> 16;
}
