/**
 * The codec's fast paths give what the plain ones gave, seeded: each plain path is kept here as the
 * reference it replaced (JSON read with a byte scan before the parse, a tensor flattened element by
 * element, each element checked alone, the default names built as strings and written with
 * JSON.stringify or one protobuf field each, packed floats read and written one `readDoubleLE` /
 * `writeDoubleLE` each, a nested message finished at each level, a tensor's elements written one
 * `writeElement` each and joined, protobuf text read by the UTF-8 decoder and written by `Buffer.from`), and random input, good and bad,
 * must give the same value, the same refusal message, the same bytes.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseExact } from '../../../gateway/translate/json-exact.js';
import { elementCount, flatten } from '../../../gateway/translate/tensor.js';
import { tensorJson, writeFlatInto, writeNestedInto } from '../../../gateway/translate/tensor-json.js';
import { JsonOut } from '../../../gateway/translate/json-out.js';
import { writeSeldonAnswerJson, writeV2RequestJson } from '../../../gateway/translate/seldon-client.js';
import { DATATYPES, TranslateRefusal, checkElement, checkElements, inferDatatype, writeElement, type Datatype, type Element } from '../../../gateway/translate/datatypes.js';
import { writeDefaultNames } from '../../../gateway/translate/default-names.js';
import { ProtoWriter, readPackedFloats } from '../../../gateway/wire/protobuf.js';
import { text } from '../../../gateway/translate/seldon-proto.js';

const SEED = 20261127;

/** What `f` gives, or the refusal's message. */
function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (err) {
    if (err instanceof TranslateRefusal || err instanceof SyntaxError) return { refused: err.message };
    throw err;
  }
}

// ---- the plain paths, as they were -------------------------------------------------------------

function plainParseExact(buf: Buffer): { value: unknown; floats: boolean } {
  let inString = false;
  let floats = false;
  let long = false;
  let run = -1;
  let prevDigit = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c >= 0x30 && c <= 0x39) {
      if (run === -1) run = 0;
      if (run >= 0 && ++run >= 16) long = true;
      prevDigit = true;
      continue;
    }
    if (c === 0x22) inString = true;
    if (c === 0x2e || ((c === 0x65 || c === 0x45) && prevDigit)) {
      floats = true;
      run = -2;
    } else if (!((c === 0x2b || c === 0x2d) && run === -2)) run = -1;
    prevDigit = false;
  }
  const exact = (_k: string, v: unknown, ctx?: { source?: string }): unknown =>
    typeof v !== 'number' || Number.isSafeInteger(v) || ctx?.source === undefined || !/^-?[0-9]+$/.test(ctx.source) ? v : BigInt(ctx.source);
  const text = buf.toString('utf8');
  return { value: long ? JSON.parse(text, exact) : JSON.parse(text), floats };
}

function plainFlatten(nested: unknown, what: string): { shape: number[]; values: Element[] } {
  const shape: number[] = [];
  let probe: unknown = nested;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    if (shape.length > 32) throw new TranslateRefusal(`${what} is nested deeper than 32 levels`);
    if (probe.length === 0) break;
    probe = probe[0];
  }
  const values: Element[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(v)) throw new TranslateRefusal(`${what} is ragged: a list where a value of depth ${depth} was expected`);
      if (typeof v !== 'number' && typeof v !== 'bigint' && typeof v !== 'boolean' && typeof v !== 'string')
        throw new TranslateRefusal(`${what} holds ${v === null ? 'null' : 'an object'} at depth ${depth}: only numbers, booleans and strings`);
      values.push(v);
      return;
    }
    if (!Array.isArray(v)) throw new TranslateRefusal(`${what} is ragged: a value where a list of ${shape[depth]} was expected at depth ${depth}`);
    if (v.length !== shape[depth]) throw new TranslateRefusal(`${what} is ragged: a list of ${v.length} where ${shape[depth]} were expected at depth ${depth}`);
    for (const x of v) walk(x, depth + 1);
  };
  walk(nested, 0);
  return { shape, values };
}

function plainCheckElements(dt: Datatype, values: readonly Element[]): void {
  for (let i = 0; i < values.length; i++) checkElement(dt, values[i]!, i);
}

const plainNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `t:${i}`);

/** The datatype inferred one element at a time, every kind in one loop. */
function plainInferDatatype(values: readonly Element[], floats: boolean): Datatype {
  if (values.length === 0) return 'FP64';
  const kindOf = (v: Element): string => (typeof v === 'bigint' ? 'number' : typeof v);
  const kind = kindOf(values[0]!);
  values.forEach((v, i) => {
    if (kindOf(v) !== kind)
      throw new TranslateRefusal(
        `mixed array: element ${i} is ${typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(v)} among ${kind === 'string' ? 'strings' : kind === 'boolean' ? 'booleans' : 'numbers'}`,
      );
  });
  if (kind === 'boolean') return 'BOOL';
  if (kind === 'string') return 'BYTES';
  if (!values.every((v) => typeof v === 'bigint' || Number.isInteger(v)) || floats) return 'FP64';
  return values.some((v) => typeof v === 'bigint' && v > 9223372036854775807n) ? 'UINT64' : 'INT64';
}

// ---- random input ------------------------------------------------------------------------------

/** Numbers as clients write them: whole, long (beyond 2^53), fractions, exponents, negative zero, huge. */
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.constantFrom('1.0', '-0', '-0.0', '1e2', '1E+2', '2.5e-3', '1e400', '9007199254740993', '-9007199254740993', '12345678901234567.5', '0.12345678901234567'),
);
/** Strings that look like numbers, with escapes. */
const stringText = fc.oneof(fc.string(), fc.constantFrom('1.5', '12345678901234567890', 'e', '\\"', 'x\\\\')).map((s) => JSON.stringify(s));
const valueText: fc.Arbitrary<string> = fc.letrec<{ v: string }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    numberText,
    stringText,
    fc.constantFrom('true', 'false', 'null'),
    fc.array(tie('v'), { maxLength: 5 }).map((a) => `[${a.join(',')}]`),
    fc.array(fc.tuple(fc.string(), tie('v')), { maxLength: 4 }).map((kv) => `{${kv.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  ),
})).v;

/** A tensor's elements as JSON text, each by `writeElement`, joined (nested by `shape`; `shape` null: flat). */
function plainWrite(values: readonly Element[], shape: readonly number[] | null, float: boolean): string {
  if (shape === null) return `[${values.map((v) => writeElement(v, float)).join(',')}]`;
  if (shape.length === 0) return writeElement(values[0]!, float);
  let at = 0;
  const level = (d: number): string => {
    const parts: string[] = [];
    for (let i = 0; i < shape[d]!; i++) parts.push(d === shape.length - 1 ? writeElement(values[at++]!, float) : level(d + 1));
    return `[${parts.join(',')}]`;
  };
  return level(0);
}

describe('the fast paths write what the plain ones wrote (seeded)', () => {
  it('JSON read exactly: the same value (bigints beyond 2^53) and the same floats flag', () => {
    fc.assert(
      // Padded with whitespace past 4 KiB, the same document takes the walk (large bodies) instead of the scan (small ones).
      fc.property(valueText, fc.boolean(), (doc, padded) => {
        const text = padded ? `${doc}${' '.repeat(4100)}` : doc;
        const buf = Buffer.from(text);
        const fast = outcome(() => {
          const p = parseExact(buf);
          return { value: p.value, floats: p.floats };
        });
        expect(fast).toEqual(outcome(() => plainParseExact(buf)));
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('a tensor flattened: the same shape and values, or the same refusal', () => {
    // Nested lists, mostly rectangular, sometimes ragged, with nulls, objects and lists among values.
    const leaf = fc.oneof({ weight: 8, arbitrary: fc.oneof(fc.double(), fc.boolean(), fc.string(), fc.bigInt()) }, { weight: 1, arbitrary: fc.constantFrom(null, {}, [1]) });
    const rect = fc
      .tuple(fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }), fc.infiniteStream(leaf), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 1000 }))
      .map(([shape, leaves, breakIt, where]) => {
        const it = leaves[Symbol.iterator]();
        let k = 0;
        const build = (d: number): unknown => {
          if (d === shape.length) return it.next().value;
          const n = shape[d]! + (breakIt < 0.2 && k++ === where % 7 ? 1 : 0);
          return Array.from({ length: n }, () => build(d + 1));
        };
        return build(0);
      });
    fc.assert(
      fc.property(rect, (nested) => {
        expect(outcome(() => flatten(nested, 'x'))).toEqual(outcome(() => plainFlatten(nested, 'x')));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('elements checked for each datatype: passed alike, or refused with the same message', () => {
    const element = fc.oneof(
      fc.double(),
      fc.integer(),
      fc.constantFrom(0, -0, 255, 256, -129, 65504, 65505, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 2 ** 64, Infinity, -Infinity, NaN, 3.4028234663852886e38, 3.5e38, 0.5),
      fc.bigInt({ min: -(2n ** 65n), max: 2n ** 65n }),
      fc.boolean(),
      fc.string({ maxLength: 50 }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...DATATYPES), fc.array(element, { maxLength: 12 }), (dt, values) => {
        expect(outcome(() => checkElements(dt, values))).toEqual(outcome(() => plainCheckElements(dt, values)));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("a model's answer's datatype inferred: the same datatype, or the same refusal, numbers alone or beside any other kind", () => {
    const element = fc.oneof(
      { weight: 8, arbitrary: fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.constantFrom(0, -0, 2 ** 53, 1e300)) },
      { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 64n), max: 2n ** 65n }) },
      { weight: 1, arbitrary: fc.oneof(fc.boolean(), fc.string({ maxLength: 50 })) },
    );
    const list = fc.oneof(fc.array(element, { maxLength: 40 }), fc.array(fc.integer({ min: -5, max: 5 }), { maxLength: 40 }), fc.array(fc.boolean(), { maxLength: 5 }));
    fc.assert(
      fc.property(list, fc.boolean(), (values, floats) => {
        expect(outcome(() => inferDatatype(values, () => floats))).toEqual(outcome(() => plainInferDatatype(values, floats)));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("a tensor's elements written flat and nested: the same text as each element written alone and joined", () => {
    // Mostly fractions, with whole numbers, negative zeros, bigints beyond 2^53, booleans and strings among them.
    const element = fc.oneof(
      { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
      { weight: 2, arbitrary: fc.constantFrom(0, -0, 1, -7, 100, 2 ** 53, 1e21, 1e-7, 0.1, Math.fround(0.3)) },
      { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }) },
      { weight: 1, arbitrary: fc.oneof(fc.boolean(), fc.string({ maxLength: 8 })) },
    );
    const tensor = fc
      .array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 })
      .chain((shape) => fc.tuple(fc.constant(shape), fc.array(element, { minLength: elementCount(shape), maxLength: elementCount(shape) })));
    fc.assert(
      fc.property(tensor, fc.boolean(), ([shape, values], float) => {
        expect(tensorJson(values, null, float)).toBe(plainWrite(values, null, float));
        expect(tensorJson(values, shape, float)).toBe(plainWrite(values, shape, float));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("a numeric tensor's elements patched into the one stringify: the same bytes, few or every element of its own text", () => {
    // Numbers only (the patched path): fractions, with whole numbers, negative zeros and bigints sparse or dense, any nesting, empty lists among them.
    const element = (ownShare: number): fc.Arbitrary<Element> =>
      fc.oneof(
        { weight: 100 - ownShare, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)) },
        {
          weight: ownShare,
          arbitrary: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(-0, 0, 2 ** 53, -(2 ** 60), 1e21, -1e22, 1e300), fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n })),
        },
      );
    const tensor = fc
      .tuple(fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 }), fc.constantFrom(1, 10, 50, 99))
      .chain(([shape, share]) => fc.tuple(fc.constant(shape), fc.array(element(share), { minLength: elementCount(shape), maxLength: elementCount(shape) })));
    fc.assert(
      fc.property(tensor, fc.boolean(), ([shape, values], float) => {
        const out = new JsonOut().add('{"x€":');
        writeNestedInto(out, values, shape, float);
        writeFlatInto(out.add(',"y":'), values, float);
        expect(
          out
            .add('}')
            .finish()
            .equals(Buffer.from(`{"x€":${plainWrite(values, shape, float)},"y":${plainWrite(values, null, float)}}`)),
        ).toBe(true);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('a long flat list with few elements of their own text, written run by run: the same bytes, a run empty or at either end', () => {
    // Fractions (written by JSON.stringify of their run) with sparse whole numbers, negative zeros and bigints (each by writeElement), some adjacent or first or last.
    const own = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(-0, 0, 2 ** 53, 1e21, -1e300), fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }));
    const list = fc
      .tuple(fc.integer({ min: 1, max: 3000 }), fc.array(fc.tuple(fc.nat(), own), { minLength: 1, maxLength: 60 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }))
      .map(([n, placed, step]) => {
        const values: Element[] = Array.from({ length: n }, (_, i) => (Number.isInteger(step * i + 0.5) ? 0.25 : step * i + 0.5));
        for (const [at, v] of placed) values[at % n] = v;
        return values;
      });
    fc.assert(
      fc.property(list, fc.boolean(), (values, float) => {
        const out = new JsonOut().add('{"x€":');
        writeFlatInto(out, values, float);
        expect(
          out
            .add('}')
            .finish()
            .equals(Buffer.from(`{"x€":${plainWrite(values, null, float)}}`)),
        ).toBe(true);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('whole bodies, a small tensor in one JSON.stringify and a larger one by pieces: the same bytes as written by hand', () => {
    // Around the small tensor's bound (64 elements), with and without elements of their own text, strings of any character among them.
    const element = fc.oneof(
      { weight: 8, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
      { weight: 1, arbitrary: fc.constantFrom(-0, 3, 2 ** 53) },
      { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }) },
    );
    const values = fc.oneof(fc.array(element, { maxLength: 80 }), fc.array(fc.string({ unit: 'binary', maxLength: 6 }), { maxLength: 80 }), fc.array(fc.boolean(), { maxLength: 80 }));
    const tensor = values.chain((v) => fc.tuple(fc.constant(v), fc.constantFrom<number[]>([v.length], [1, v.length], [v.length, 1]), fc.boolean()));
    const text = fc.option(fc.string({ unit: 'binary', maxLength: 8 }), { nil: undefined });
    fc.assert(
      fc.property(
        tensor,
        text,
        fc.constantFrom('tensor' as const, 'ndarray' as const),
        fc.option(fc.array(fc.string({ unit: 'binary', maxLength: 4 }), { maxLength: 3 }), { nil: undefined }),
        ([v, shape, float], puid, kind, given) => {
          const meta = puid === undefined ? '{}' : `{"puid":${JSON.stringify(puid)}}`;
          const count = shape.length < 2 ? 0 : shape[1]!;
          const names = given ?? plainNames(count);
          const data = kind === 'tensor' ? `"tensor":{"shape":${JSON.stringify(shape)},"values":${plainWrite(v, null, float)}}` : `"ndarray":${plainWrite(v, shape, float)}`;
          const answer = writeSeldonAnswerJson({ kind, puid, names: given ?? count, shape, values: v, float });
          expect(answer.toString('utf8')).toBe(`{"data":{"names":${JSON.stringify(names)},${data}},"meta":${meta}}`);
          const request = writeV2RequestJson({ id: puid, input: { name: puid ?? 'x', shape, datatype: 'FP64', values: v, contentType: undefined } });
          const id = puid === undefined ? '' : `"id":${JSON.stringify(puid)},`;
          expect(request.toString('utf8')).toBe(`{${id}"inputs":[{"name":${JSON.stringify(puid ?? 'x')},"shape":${JSON.stringify(shape)},"datatype":"FP64","data":${plainWrite(v, null, false)}}]}`);
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('the default names t:0…t:n-1: the same JSON text and the same protobuf fields', () => {
    const counts = fc.oneof(fc.integer({ min: 0, max: 1200 }), fc.constantFrom(1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 10001));
    fc.assert(
      fc.property(counts, (n) => {
        expect(writeDefaultNames(n, true).toString('latin1')).toBe(JSON.stringify(plainNames(n)));
        const plain = new ProtoWriter();
        for (const name of plainNames(n)) plain.string(1, name);
        expect(writeDefaultNames(n, false).equals(plain.finish())).toBe(true);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('packed floats and doubles, read at any alignment and written: the same numbers and the same bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom(4 as const, 8 as const), fc.array(fc.double(), { maxLength: 40 }), fc.integer({ min: 0, max: 7 }), (width, values, pad) => {
        const plain = Buffer.alloc(values.length * width);
        values.forEach((v, i) => (width === 8 ? plain.writeDoubleLE(v, i * 8) : plain.writeFloatLE(v, i * 4)));
        const written = new ProtoWriter().packedFloats(1, values, width).finish();
        const plainField = values.length === 0 ? Buffer.alloc(0) : new ProtoWriter().bytes(1, plain).finish();
        expect(written.equals(plainField)).toBe(true);
        // The payload inside a larger buffer at `pad` bytes: aligned or not.
        const host = Buffer.concat([Buffer.alloc(pad, 0xee), plain, Buffer.alloc(3, 0xee)]);
        const read: number[] = [];
        readPackedFloats(host, pad, pad + plain.length, width, read);
        const expected = values.map((_, i) => (width === 8 ? plain.readDoubleLE(i * 8) : plain.readFloatLE(i * 4)));
        expect(read).toEqual(expected);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('a message nested three deep: the same bytes as finished at each level', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), fc.string(), (chunks, name) => {
        const leaf = (): ProtoWriter => {
          const w = new ProtoWriter().string(1, name);
          for (const c of chunks) w.bytes(2, Buffer.from(c));
          return w;
        };
        const fast = new ProtoWriter().string(1, 'm').message(5, new ProtoWriter().message(3, leaf()).varint(4, 7)).finish();
        const plain = new ProtoWriter().string(1, 'm').bytes(5, new ProtoWriter().bytes(3, leaf().finish()).varint(4, 7).finish()).finish();
        expect(fast.equals(plain)).toBe(true);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('protobuf text, short and long, ASCII, UTF-8 or not UTF-8: read as the fatal UTF-8 decoder reads it, or refused alike', () => {
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const plainText = (b: Uint8Array): string => {
      try {
        return utf8.decode(b);
      } catch {
        throw new TranslateRefusal('a name is not UTF-8 text', 400);
      }
    };
    // ASCII, any bytes, and strings' own UTF-8, around the 64-byte fast path's edge.
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 80 }).map((b) => b.map((x) => x & 0x7f)),
      fc.uint8Array({ maxLength: 80 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }).map((t) => new Uint8Array(Buffer.from(t, 'utf8'))),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        expect(outcome(() => text(b, 'a name', 400))).toEqual(outcome(() => plainText(b)));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('a string field, short ASCII or any text: the same bytes as its UTF-8 written as a payload', () => {
    // ASCII, Latin-1 (one UTF-16 unit under 0x100, two UTF-8 bytes above 0x7f), any code point, around the 64-unit fast path's edge.
    const latin1 = fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c));
    const strings = fc.oneof(
      fc.string({ unit: 'binary-ascii', maxLength: 80 }),
      fc.string({ unit: latin1, maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
    );
    fc.assert(
      fc.property(strings, fc.integer({ min: 1, max: 20000 }), (t, field) => {
        const fast = new ProtoWriter().string(field, t).varint(2, 1).finish();
        const plain = new ProtoWriter().bytes(field, Buffer.from(t, 'utf8')).varint(2, 1).finish();
        expect(fast.equals(plain)).toBe(true);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
