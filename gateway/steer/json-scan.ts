/**
 * A validating JSON scanner over bytes that finds where things are without building them: enough
 * to splice a field into an answer or read one field of a feedback body, keeping every other byte
 * as it came (numbers beyond 2^53, key order, spacing). It accepts exactly the grammar of RFC 8259
 * (as JSON.parse does on the decoded text, byte order mark excluded); positions are byte offsets.
 * Nesting is walked with an explicit stack, so depth costs no call stack.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

// Every read is guarded by the length: a typed array read past its end yields undefined, and a loop
// whose byte may be undefined runs several times slower in V8 than one over numbers only. The hot
// case is a long array of numbers (an ndarray): see skipNumbers.

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** The index of the first non-whitespace byte at or after `i` (the length if there is none). */
export function skipSpace(b: Uint8Array, i: number): number {
  const n = b.length;
  while (i < n && isSpace(b[i]!)) i++;
  return i < n ? i : n;
}

/** Whether `c` is an ASCII hex digit. */
const isHex = (c: number): boolean => (c >= ZERO && c <= NINE) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);

/** The index just after the string that starts at `i` (a quote), or -1 if it is not a valid one. */
export function skipString(b: Uint8Array, i: number): number {
  const n = b.length;
  if (i >= n || b[i] !== QUOTE) return -1;
  i++;
  while (i < n) {
    const c = b[i]!;
    // Most bytes of a string are plain: one comparison each (0x23.. except the backslash, and 0x20, 0x21).
    if (c > QUOTE ? c !== BACKSLASH : c >= 0x20 && c !== QUOTE) {
      i++;
      continue;
    }
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return -1;
    // A backslash.
    if (i + 1 >= n) return -1;
    const e = b[i + 1]!;
    if (e === 0x75) {
      if (i + 5 >= n || !(isHex(b[i + 2]!) && isHex(b[i + 3]!) && isHex(b[i + 4]!) && isHex(b[i + 5]!))) return -1;
      i += 6;
    } else if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) i += 2;
    else return -1;
  }
  return -1;
}

function skipWord(b: Uint8Array, i: number, word: string): number {
  if (i + word.length > b.length) return -1;
  for (let j = 0; j < word.length; j++) if (b[i + j] !== word.charCodeAt(j)) return -1;
  return i + word.length;
}

/** A scalar at `i` (string, number, true, false, null): the index after it, or -1. */
function skipScalar(b: Uint8Array, i: number): number {
  if (i >= b.length) return -1;
  const c = b[i]!;
  if (c === QUOTE) return skipString(b, i);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return skipNumbers(b, i, false);
  if (c === 0x74) return skipWord(b, i, 'true');
  if (c === 0x66) return skipWord(b, i, 'false');
  if (c === 0x6e) return skipWord(b, i, 'null');
  return -1;
}

/** `"key" :` at `i` (whitespace before it skipped): the index of the value's first byte, or -1. */
function skipKey(b: Uint8Array, i: number): number {
  i = skipString(b, skipSpace(b, i));
  if (i < 0) return -1;
  i = skipSpace(b, i);
  return b[i] === COLON ? skipSpace(b, i + 1) : -1;
}

/**
 * The number that starts at `i`: the index just after it, or -1 if there is no valid one there.
 * With `run` (inside an array), it goes on over `, number` for as long as the elements are numbers,
 * an ndarray's row, and returns where the caller goes on: the `]`, or the comma before an element
 * that is not a number. Written out in one loop with no helper calls, since it runs once per element
 * and V8 does not inline every helper into it.
 */
function skipNumbers(b: Uint8Array, i: number, run: boolean): number {
  const n = b.length;
  for (;;) {
    let c = i < n ? b[i]! : 0; // 0 past the end: not part of any token
    if (c === MINUS) c = ++i < n ? b[i]! : 0;
    if (c === ZERO) c = ++i < n ? b[i]! : 0;
    else if (c > ZERO && c <= NINE) {
      do c = ++i < n ? b[i]! : 0;
      while (c >= ZERO && c <= NINE);
    } else return -1;
    if (c === 0x2e) {
      const from = ++i;
      c = i < n ? b[i]! : 0;
      while (c >= ZERO && c <= NINE) c = ++i < n ? b[i]! : 0;
      if (i === from) return -1;
    }
    if (c === 0x65 || c === 0x45) {
      c = ++i < n ? b[i]! : 0;
      if (c === 0x2b || c === MINUS) c = ++i < n ? b[i]! : 0;
      const from = i;
      while (c >= ZERO && c <= NINE) c = ++i < n ? b[i]! : 0;
      if (i === from) return -1;
    }
    if (!run) return i;
    // After the number: a comma (spaces around it allowed), then the next number.
    while (isSpace(c)) c = ++i < n ? b[i]! : 0;
    if (c !== COMMA) return i;
    let j = i + 1;
    c = j < n ? b[j]! : 0;
    while (isSpace(c)) c = ++j < n ? b[j]! : 0;
    if (c !== MINUS && (c < ZERO || c > NINE)) return i;
    i = j;
  }
}

/** The index just after the value that starts at `i` (whitespace before it skipped), or -1 if it is not valid JSON. */
export function skipValue(b: Uint8Array, i: number): number {
  const n = b.length;
  const open: number[] = []; // CLOSE_OBJECT or CLOSE_ARRAY per enclosing container
  i = skipSpace(b, i);
  for (;;) {
    // A value starts at i.
    const c = i < n ? b[i]! : 0;
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const close = c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      const j = skipSpace(b, i + 1);
      if (j < n && b[j] === close) i = j + 1;
      else {
        open.push(close);
        i = close === CLOSE_OBJECT ? skipKey(b, j) : j;
        if (i < 0) return -1;
        continue;
      }
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      // A number in an array is most likely the first of many (an ndarray's row).
      i = skipNumbers(b, i, open.length > 0 && open[open.length - 1] === CLOSE_ARRAY);
      if (i < 0) return -1;
    } else {
      i = skipScalar(b, i);
      if (i < 0) return -1;
    }
    // After a value: close containers, or a comma and the next value.
    for (;;) {
      if (open.length === 0) return i;
      i = skipSpace(b, i);
      if (i >= n) return -1;
      const d = b[i]!;
      const top = open[open.length - 1];
      if (d === top) {
        open.pop();
        i++;
      } else if (d === COMMA) {
        i = top === CLOSE_OBJECT ? skipKey(b, i + 1) : skipSpace(b, i + 1);
        if (i < 0) return -1;
        break;
      } else return -1;
    }
  }
}

/** One member of an object: its key's span (quotes included) and its value's span. */
export interface Member {
  readonly keyStart: number;
  readonly keyEnd: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

/** An object's members and where its braces are. */
export interface ObjectSpan {
  readonly start: number;
  /** The index of the closing brace. */
  readonly close: number;
  readonly members: readonly Member[];
}

/** The object that starts at `i` (whitespace before it skipped), members in order; null if there is no valid object there. */
export function readObject(b: Uint8Array, i: number): ObjectSpan | null {
  const start = skipSpace(b, i);
  if (b[start] !== OPEN_OBJECT) return null;
  const members: Member[] = [];
  i = skipSpace(b, start + 1);
  if (b[i] === CLOSE_OBJECT) return { start, close: i, members };
  for (;;) {
    const keyStart = skipSpace(b, i);
    const keyEnd = skipString(b, keyStart);
    if (keyEnd < 0) return null;
    let j = skipSpace(b, keyEnd);
    if (b[j] !== COLON) return null;
    const valueStart = skipSpace(b, j + 1);
    const valueEnd = skipValue(b, valueStart);
    if (valueEnd < 0) return null;
    members.push({ keyStart, keyEnd, valueStart, valueEnd });
    j = skipSpace(b, valueEnd);
    if (b[j] === CLOSE_OBJECT) return { start, close: j, members };
    if (b[j] !== COMMA) return null;
    i = j + 1;
  }
}

/** The whole of `b` as one object (whitespace around it allowed), or null. */
export function readTopObject(b: Uint8Array): ObjectSpan | null {
  const o = readObject(b, 0);
  return o && skipSpace(b, o.close + 1) === b.length ? o : null;
}

/** Whether the key of `m` is the UTF-8 bytes `key` (escapes decoded, as JSON.parse reads it). */
function keyIs(b: Uint8Array, m: Member, key: Buffer): boolean {
  const from = m.keyStart + 1;
  const to = m.keyEnd - 1;
  for (let i = from; i < to; i++) {
    if (b[i] === BACKSLASH) return Buffer.from(JSON.parse(Buffer.from(b.buffer, b.byteOffset + m.keyStart, m.keyEnd - m.keyStart).toString('utf8')) as string).equals(key);
  }
  if (to - from !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (b[from + i] !== key[i]) return false;
  return true;
}

/** The last member of `o` named `key` (the one JSON.parse keeps), or undefined. */
export function lastMember(b: Uint8Array, o: ObjectSpan, key: string): Member | undefined {
  const k = Buffer.from(key);
  for (let i = o.members.length - 1; i >= 0; i--) if (keyIs(b, o.members[i]!, k)) return o.members[i];
  return undefined;
}

/** The value of `m` as JSON.parse reads it. */
export function memberValue(b: Uint8Array, m: Member): unknown {
  return JSON.parse(Buffer.from(b.buffer, b.byteOffset + m.valueStart, m.valueEnd - m.valueStart).toString('utf8'));
}
