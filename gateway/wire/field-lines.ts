/**
 * HTTP/1.1 field lines read as offsets over the bytes they arrived in (nginx's `ngx_table_elt_t`
 * points into the buffer read; haproxy's HTX keeps one structure per message): a head is parsed
 * into a flat list of numbers, FIELD_STRIDE per field, and no string is made for a name or a value
 * unless something reads it as one. A head written out again (toward the model, back to the client)
 * copies the ranges of the lines it keeps (`copyRange`), so a request is carried by the buffer it
 * came in and one small array.
 *
 * Strict as http1-syntax.ts `headerLines` (the same grammar, the one both of the gateway's parsers
 * share): `token ":" field-value CRLF`, no controls but HTAB in a value, CRLF only.
 */
import { isTchar, isVchar } from './http1-syntax.js';

/** Numbers per field in a field list: where its name starts and ends, where its value (trimmed) starts and ends, and its kind. */
export const FIELD_STRIDE = 5;
export const NAME_START = 0;
export const NAME_END = 1;
export const VALUE_START = 2;
export const VALUE_END = 3;
/** What the reader made of the field (a code of its own: the request parser's `FieldKind`, 0 for any other). */
export const KIND = 4;

/** Where fields are parsed into before they are copied out at their exact size (parsing never yields: one is enough). */
const scratch: number[] = [];

/**
 * Parse the field lines of `buf` from `from` to `end` (the index of the empty line that ends the
 * head: every line before it ends in CRLF) into a new list, kind 0 each; null when a line is not
 * `token ":" field-value CRLF`. The list is made once, at its size: grown by pushes it cost a
 * request about 700 bytes of copies.
 */
export function parseFieldLines(buf: Uint8Array, from: number, end: number): number[] | null {
  const out = scratch;
  let n = 0;
  let i = from;
  while (i < end) {
    const start = i;
    while (i < end && isTchar(buf[i]!)) i++;
    if (i === start || i >= end || buf[i] !== 58) return null;
    const nameEnd = i++;
    while (i < end && isVchar(buf[i]!)) i++;
    // The line must end here, in CRLF (`end` is the empty line's CR: the last line's CRLF is before it).
    if (i + 1 > end || buf[i] !== 13 || buf[i + 1] !== 10) return null;
    let vs = nameEnd + 1;
    let ve = i;
    while (vs < ve && (buf[vs] === 32 || buf[vs] === 9)) vs++;
    while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
    out[n] = start;
    out[n + 1] = nameEnd;
    out[n + 2] = vs;
    out[n + 3] = ve;
    out[n + 4] = 0;
    n += FIELD_STRIDE;
    i += 2;
  }
  return out.slice(0, n);
}

/** Whether the bytes `buf[start, end)` are the field name `lower` (given in lower case), in any case. */
export function nameIs(buf: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = buf[start + i]!;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

declare global {
  interface Buffer {
    /** Node's own decoder behind `toString('latin1', start, end)`, without its argument handling (on every Buffer; not in the types). */
    latin1Slice(start: number, end: number): string;
  }
}

/** The bytes `buf[start, end)` as text, one character per byte (as field values are read). */
export function latin1(buf: Buffer, start: number, end: number): string {
  return end <= start ? '' : buf.latin1Slice(start, end);
}

/**
 * Copy `buf[start, end)` into `out` at `at`; the index after. A short range (a name, a value) is
 * copied by a loop, a longer one (a run of field lines) by `Buffer#copy`: its call into C++ costs
 * about what a loop does over 24 bytes (35 ns here, the loop 28 ns for 16 and 130 for 128).
 */
export function copyRange(buf: Buffer, start: number, end: number, out: Buffer, at: number): number {
  const n = end - start;
  if (n > 24) {
    buf.copy(out, at, start, end);
    return at + n;
  }
  for (let i = 0; i < n; i++) out[at + i] = buf[start + i]!;
  return at + n;
}

/**
 * A head's field lines written from the bytes they arrived in (edge/upstream-fields.ts,
 * edge/answer-fields.ts): a line that goes as it came (`name: value`, one space, nothing after the
 * value) joins the run of such lines before it, the run written in one copy; another line is
 * written as `name: value` CRLF. The pending run is module state, as a head is written in one
 * synchronous loop (`startLines`, `writeLine` for each, `endLines`): no object per head.
 */
let runStart = -1;
let runEnd = -1;

export function startLines(): void {
  runStart = -1;
  runEnd = -1;
}

/** The field line `buf[ns, ne)`: `buf[vs, ve)` written into `out` at `at` (or joined to the pending run); the index after. */
export function writeLine(buf: Buffer, ns: number, ne: number, vs: number, ve: number, out: Buffer, at: number): number {
  const asCame = vs === ne + 2 && buf[ne + 1] === 32 && buf[ve] === 13;
  if (asCame && ns === runEnd) {
    runEnd = ve + 2;
    return at;
  }
  at = endLines(buf, out, at);
  if (asCame) {
    runStart = ns;
    runEnd = ve + 2;
    return at;
  }
  at = copyRange(buf, ns, ne, out, at);
  out[at++] = 58;
  out[at++] = 32;
  at = copyRange(buf, vs, ve, out, at);
  out[at++] = 13;
  out[at++] = 10;
  return at;
}

/** The pending run written (before a line of the writer's own, or at the end); the index after. */
export function endLines(buf: Buffer, out: Buffer, at: number): number {
  if (runStart >= 0) at = copyRange(buf, runStart, runEnd, out, at);
  runStart = -1;
  runEnd = -1;
  return at;
}

/** A Content-Length value of 1 to 15 digits as a number; -1 otherwise. */
export function lengthDigits(buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n < 1 || n > 15) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/**
 * The index in `fields` of the first field named `lower` (lower case) after the field at `after`
 * (-1: from the first), or -1 when there is none.
 */
export function findField(buf: Uint8Array, fields: readonly number[], lower: string, after = -1): number {
  for (let i = after < 0 ? 0 : after + FIELD_STRIDE; i < fields.length; i += FIELD_STRIDE) {
    if (fields[i + NAME_END]! - fields[i + NAME_START]! === lower.length && nameIs(buf, fields[i + NAME_START]!, fields[i + NAME_END]!, lower)) return i;
  }
  return -1;
}

/** The fields as `[name, value, …]` strings (names as sent, values trimmed), for readers of the whole list. */
export function fieldPairs(buf: Buffer, fields: readonly number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += FIELD_STRIDE) out.push(latin1(buf, fields[i + NAME_START]!, fields[i + NAME_END]!), latin1(buf, fields[i + VALUE_START]!, fields[i + VALUE_END]!));
  return out;
}
