/**
 * The names Seldon's wrapper gives an answer of rank 2 or more when its model has none
 * (`client_class_names`): `t:0` … `t:n-1`, one per column, so a 1×150,528 answer carries 150,528 of
 * them. Written straight as bytes, digits counted in place: no string per name (building and
 * joining them cost more than writing the answer's numbers). Pure.
 */

/** How many default names an answer of `shape` has: its second dimension, none below rank 2. */
export const defaultNameCount = (shape: readonly number[]): number => (shape.length < 2 ? 0 : shape[1]!);

const QUOTE = 0x22;
const COMMA = 0x2c;
const T = 0x74;
const COLON = 0x3a;
const ZERO = 0x30;
const NINE = 0x39;
/** A protobuf tag: field 1 (`names`), length-delimited. */
const NAMES_TAG = 0x0a;

/**
 * `t:0` … `t:n-1` as JSON array text (`json`) or as protobuf `names` fields (field 1, each its
 * length then its bytes: a name is at most 2 + 16 bytes, so its length is one byte).
 */
export function writeDefaultNames(n: number, json: boolean): Buffer {
  if (n === 0) return Buffer.from(json ? '[]' : '');
  const most = String(n - 1).length;
  const out = Buffer.allocUnsafe(2 + n * (most + 5));
  const digits = Buffer.alloc(most, ZERO);
  // The counter's digits are digits[first, most).
  let first = most - 1;
  let at = 0;
  if (json) out[at++] = 0x5b;
  for (let i = 0; i < n; i++) {
    const len = most - first;
    if (json) {
      if (i > 0) out[at++] = COMMA;
      out[at++] = QUOTE;
    } else {
      out[at++] = NAMES_TAG;
      out[at++] = len + 2;
    }
    out[at++] = T;
    out[at++] = COLON;
    for (let d = first; d < most; d++) out[at++] = digits[d]!;
    if (json) out[at++] = QUOTE;
    // One more, carried leftwards.
    let d = most - 1;
    while (d >= 0 && digits[d] === NINE) digits[d--] = ZERO;
    if (d >= 0) {
      digits[d] = digits[d]! + 1;
      if (d < first) first = d;
    }
  }
  if (json) out[at++] = 0x5d;
  return out.subarray(0, at);
}
