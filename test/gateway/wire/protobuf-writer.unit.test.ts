/**
 * ProtoWriter (gateway/wire/protobuf.ts) writes the protobuf wire format: for any sequence of fields, nested to any
 * depth, its bytes are each field's tag, length and payload as the format spells them, assembled here independently
 * (byte arrays joined, no writer), whatever mix of small payloads (gathered among its own bytes) and large ones
 * (kept by reference) the message holds.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ProtoWriter, readVarint64, walkFields } from '../../../gateway/wire/protobuf.js';

const SEED = 20261128;

type Field =
  | { kind: 'bytes'; field: number; payload: Uint8Array }
  | { kind: 'string'; field: number; text: string }
  | { kind: 'varint'; field: number; value: bigint | number }
  | { kind: 'double'; field: number; value: number }
  | { kind: 'packedVarints'; field: number; values: (bigint | number)[] }
  | { kind: 'packedFloats'; field: number; values: number[]; width: 4 | 8 }
  | { kind: 'message'; field: number; fields: Field[] };

/** A varint as the format spells it: seven bits a byte, low first, the high bit on every byte but the last. */
function varint(v: bigint): number[] {
  let u = v < 0n ? v + (1n << 64n) : v;
  const out: number[] = [];
  do {
    const low = Number(u & 0x7fn);
    u >>= 7n;
    out.push(u > 0n ? low | 0x80 : low);
  } while (u > 0n);
  return out;
}

const tag = (field: number, wire: number): number[] => varint(BigInt(field * 8 + wire));
const delimited = (field: number, payload: number[]): number[] => [...tag(field, 2), ...varint(BigInt(payload.length)), ...payload];

function expected(fields: readonly Field[]): number[] {
  return fields.flatMap((f): number[] => {
    switch (f.kind) {
      case 'bytes':
        return delimited(f.field, [...f.payload]);
      case 'string':
        return delimited(f.field, [...Buffer.from(f.text, 'utf8')]);
      case 'varint':
        return [...tag(f.field, 0), ...varint(BigInt(f.value))];
      case 'double': {
        const b = Buffer.alloc(8);
        b.writeDoubleLE(f.value);
        return [...tag(f.field, 1), ...b];
      }
      case 'packedVarints':
        return f.values.length === 0
          ? []
          : delimited(
              f.field,
              f.values.flatMap((v) => varint(BigInt(v))),
            );
      case 'packedFloats': {
        if (f.values.length === 0) return [];
        const b = Buffer.alloc(f.values.length * f.width);
        f.values.forEach((v, i) => (f.width === 8 ? b.writeDoubleLE(v, i * 8) : b.writeFloatLE(v, i * 4)));
        return delimited(f.field, [...b]);
      }
      case 'message':
        return delimited(f.field, expected(f.fields));
    }
  });
}

function written(fields: readonly Field[]): ProtoWriter {
  const w = new ProtoWriter();
  for (const f of fields) {
    if (f.kind === 'bytes') w.bytes(f.field, Buffer.from(f.payload));
    else if (f.kind === 'string') w.string(f.field, f.text);
    else if (f.kind === 'varint') w.varint(f.field, f.value);
    else if (f.kind === 'double') w.double(f.field, f.value);
    else if (f.kind === 'packedVarints') w.packedVarints(f.field, f.values);
    else if (f.kind === 'packedFloats') w.packedFloats(f.field, f.values, f.width);
    else w.message(f.field, written(f.fields));
  }
  return w;
}

const fieldNumber = fc.integer({ min: 1, max: 536_870_911 });
/** A 64-bit integer as a bigint, or as a number (the writer's fast path: whole, up to 2^53; negative ones go ten bytes). */
const int64 = fc.oneof(fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }), fc.maxSafeInteger(), fc.integer({ min: 0, max: 300 }));
const { field: arbitraryField } = fc.letrec<{ field: Field }>((tie) => ({
  field: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ kind: fc.constant('bytes' as const), field: fieldNumber, payload: fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ minLength: 60, maxLength: 2000 })) }),
    fc.record({ kind: fc.constant('string' as const), field: fieldNumber, text: fc.string({ unit: 'grapheme', maxLength: 40 }) }),
    fc.record({ kind: fc.constant('varint' as const), field: fieldNumber, value: int64 }),
    fc.record({ kind: fc.constant('double' as const), field: fieldNumber, value: fc.double() }),
    fc.record({ kind: fc.constant('packedVarints' as const), field: fieldNumber, values: fc.array(int64, { maxLength: 30 }) }),
    fc.record({ kind: fc.constant('packedFloats' as const), field: fieldNumber, values: fc.array(fc.double(), { maxLength: 40 }), width: fc.constantFrom(4 as const, 8 as const) }),
    fc.record({ kind: fc.constant('message' as const), field: fieldNumber, fields: fc.array(tie('field'), { maxLength: 5 }) }),
  ),
}));

describe('ProtoWriter', () => {
  it('any fields, nested to any depth, small payloads and large: the bytes the format spells', () => {
    fc.assert(
      fc.property(fc.array(arbitraryField, { maxLength: 8 }), (fields) => {
        const out = written(fields).finish();
        expect([...out]).toEqual(expected(fields));
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('a large payload is kept by reference until finish: one copy, into the finished message', () => {
    const large = Buffer.alloc(4096, 7);
    const w = new ProtoWriter().varint(1, 3).bytes(2, large).double(3, 0.5);
    large[0] = 9;
    const out = w.finish();
    const seen: number[] = [];
    expect(walkFields(out, 0, out.length, (f) => seen.push(f.field))).toBe(true);
    expect(seen).toEqual([1, 2, 3]);
    // Written after the call, read at finish: the payload was not copied before.
    expect(out[out.length - 9 - 4096]).toBe(9);
    expect(readVarint64(out, 1, out.length)).toBe(3n);
  });
});
