/**
 * A tensor's elements as JSON, flat or nested by its shape (numpy's `tolist`), into a translated body
 * (json-out.ts). JSON.stringify writes almost every element as the protocols want it, natively; the few it
 * does not (datatypes.ts `textPlan`: a bigint, a negative zero, with `float` a whole number, which must read
 * `1.0`) are put in place afterwards: the whole tensor is stringified once (bigints stood in by 0), and its
 * text copied into a Buffer with those elements' text patched in, found by counting the elements' tokens.
 * A flat list where they are few (a float tensor's rare whole numbers) skips the count: the runs between
 * them are stringified each and copied straight into the Buffer (`writeRuns`; joined into one string they
 * cost ≈ 2x the one stringify: the join's copy). Pure.
 */
import { textPlan, writeElement, type Element } from './datatypes.js';
import { JsonOut } from './json-out.js';
import { checkNesting, elementCount } from './tensor.js';

const COMMA = 0x2c;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const DOT = 0x2e;
const ZERO = 0x30;

/** `values` as a JSON array into `out`; `float`: numbers as Python writes a float (`1.0`), for the Seldon side, which has no datatype. */
export function writeFlatInto(out: JsonOut, values: readonly Element[], float = false): void {
  writeInto(out, values, null, float);
}

/** `values` nested by `shape` into `out` (rank 0: the one value itself); `float` as `writeFlatInto`. */
export function writeNestedInto(out: JsonOut, values: readonly Element[], shape: readonly number[], float = false): void {
  if (shape.length === 0) {
    out.add(writeElement(values[0]!, float));
    return;
  }
  checkNesting(values.length, shape);
  writeInto(out, values, shape, float);
}

/** The text `writeFlatInto` writes (`shape` null) or `writeNestedInto`. */
export function tensorJson(values: readonly Element[], shape: readonly number[] | null, float = false): string {
  const out = new JsonOut();
  if (shape === null) writeFlatInto(out, values, float);
  else writeNestedInto(out, values, shape, float);
  return out.finish().toString('utf8');
}

/** At most this many elements make a small tensor: its whole body is one JSON.stringify (`smallTensorDoc`). */
const SMALL = 64;

/**
 * A small tensor (`SMALL` elements at most) none of whose elements needs its own text, as a value
 * JSON.stringify writes as `writeNestedInto` (`shape`) or `writeFlatInto` (null) would: a small body is then
 * written by one native JSON.stringify of the whole document (the pieces' calls and joins were ≈ 1–1.5 µs of a
 * 1×4 body's ≈ 2). Undefined: write it by pieces.
 */
export function smallTensorDoc(values: readonly Element[], shape: readonly number[] | null, float: boolean): unknown {
  if (values.length > SMALL || textPlan(values, float).own !== null) return undefined;
  if (shape === null) return values;
  if (shape.length === 0) return values[0];
  checkNesting(values.length, shape);
  return nest(values, shape, 0, 0);
}

function writeInto(out: JsonOut, values: readonly Element[], shape: readonly number[] | null, float: boolean): void {
  const { own, strings } = textPlan(values, float);
  const doc = (v: readonly Element[]): unknown => (shape === null ? v : nest(v, shape, 0, 0));
  if (own === null) {
    const text = JSON.stringify(doc(values));
    if (strings) out.add(text);
    else out.addAscii(text);
  } else if (strings) {
    // Strings beside numbers (a mixed list: never one the checks let through): each element alone, no token counting across strings' commas.
    out.add(
      shape === null
        ? `[${values.map((v) => writeElement(v, float)).join(',')}]`
        : JSON.stringify(
            nest(
              values.map((v) => rawJSON(writeElement(v, float))),
              shape,
              0,
              0,
            ),
          ),
    );
  } else if (shape === null && own.length * SPARSE <= values.length) writeRuns(out, values, own, float);
  else {
    const json = JSON.stringify(doc(standIns(values, own)));
    let size = json.length;
    for (const i of own) size += growth(values[i]!, float);
    out.addFilled(size, (buf, at) => patch(buf, at, size, json, values, own, float));
  }
}

/** A flat list with at most one element in this many of its own text is written by `writeRuns`, not patched. */
const SPARSE = 16;

/**
 * A flat list of numbers with few elements of their own text (`own`, ascending): the runs between them each
 * one JSON.stringify of its slice (a copy of doubles, no element boxed), and each element at `own` by
 * `writeElement`, into the body's buffer with the commas between. Patching the one stringify instead must find
 * those elements by counting every comma of the text: a JavaScript loop over each byte (≈ 3 ms of 1.3 MB, a
 * tenth of the write), where the runs cost their slices alone.
 */
function writeRuns(out: JsonOut, values: readonly Element[], own: readonly number[], float: boolean): void {
  // Each piece's text in order: a run's elements without its brackets, or one element of its own.
  const pieces: string[] = [];
  let size = 1;
  let start = 0;
  for (let k = 0; k <= own.length; k++) {
    const end = k < own.length ? own[k]! : values.length;
    if (end > start) pieces.push(JSON.stringify(values.slice(start, end)).slice(1, -1));
    if (k < own.length) pieces.push(writeElement(values[end]!, float));
    start = end + 1;
  }
  for (const p of pieces) size += p.length + 1;
  out.addFilled(size, (buf, at) => {
    buf[at] = OPEN;
    let to = at + 1;
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0) buf[to++] = COMMA;
      to += buf.write(pieces[i]!, to, 'latin1');
    }
    buf[to] = CLOSE;
  });
}

/** `values` with its bigints as 0 (JSON.stringify throws on a bigint), copied only when it holds one. */
function standIns(values: readonly Element[], own: readonly number[]): readonly Element[] {
  let copy: Element[] | null = null;
  for (const i of own) if (typeof values[i] === 'bigint') (copy ??= values.slice())[i] = 0;
  return copy ?? values;
}

/** How many bytes element `v`'s own text adds to what JSON.stringify wrote for it (its number, or a bigint's stand-in `0`). */
function growth(v: Element, float: boolean): number {
  if (typeof v === 'number' && !Object.is(v, -0)) return float && Math.abs(v) < 1e21 ? 2 : 0;
  return writeElement(v, float).length - 1;
}

/**
 * `json` (JSON.stringify's ASCII text of the elements, flat or nested, no strings) into `out` at `at`, `size`
 * bytes, with the elements at `own` (ascending) written by `writeElement`. The text is written at the
 * region's end and moved forward piece by piece as the patches widen it: the bytes not yet read are never
 * overwritten (what is written lags what is read by the growth still to come), and no buffer of its own.
 */
function patch(out: Buffer, at: number, size: number, json: string, values: readonly Element[], own: readonly number[], float: boolean): void {
  const end = at + size;
  let from = end - json.length;
  out.write(json, from, 'latin1');
  let to = at;
  let element = -1;
  let k = 0;
  let next = own[0]!;
  // An element's token starts after `[` or `,` at anything but a list's bracket.
  for (let p = from + 1; p < end; p++) {
    const b = out[p - 1]!;
    if (b !== OPEN && b !== COMMA) continue;
    const c = out[p]!;
    if (c === OPEN || c === CLOSE || ++element !== next) continue;
    let tokenEnd = p + 1;
    while (out[tokenEnd] !== COMMA && out[tokenEnd] !== CLOSE) tokenEnd++;
    out.copyWithin(to, from, p);
    to += p - from;
    const v = values[next]!;
    if (typeof v === 'number' && !Object.is(v, -0)) {
      // A whole number: its digits as written, then `.0` (from 1e21 it is written with an exponent: a float already).
      out.copyWithin(to, p, tokenEnd);
      to += tokenEnd - p;
      if (float && Math.abs(v) < 1e21) {
        out[to++] = DOT;
        out[to++] = ZERO;
      }
    } else to += out.write(writeElement(v, float), to, 'latin1');
    from = tokenEnd;
    p = tokenEnd;
    if (++k === own.length) break;
    next = own[k]!;
  }
  out.copyWithin(to, from, end);
}

/** JSON.rawJSON (Node 21+; not in the ES2023 lib's types): a value JSON.stringify writes as the text given. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** The elements from `start` nested by `shape` from dimension `d` (the last dimension a slice: JSON.stringify writes it natively). */
function nest(values: readonly unknown[], shape: readonly number[], d: number, start: number): unknown[] {
  const n = shape[d]!;
  if (d === shape.length - 1) return start === 0 && n === values.length ? (values as unknown[]) : values.slice(start, start + n);
  const stride = elementCount(shape.slice(d + 1));
  const out: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = nest(values, shape, d + 1, start + i * stride);
  return out;
}
