/**
 * A tensor as both protocols hold it: a shape and its elements flat in row-major order. Nested
 * arrays (Seldon's `ndarray`, a v2 `data` written nested) are flattened only when rectangular, and
 * a flat list is nested again by its shape. Pure.
 */
import { TranslateRefusal, jsonText, type Element } from './datatypes.js';
import { leadsWithNumber, notNumbersFrom } from './number-lists.js';

/** Most dimensions a tensor may have (numpy's limit). */
export const MAX_RANK = 32;

/** `nested` flattened with the shape of its nesting; ragged or mixed arrays (a list beside a scalar) are refused. */
export function flatten(nested: unknown, what: string): { shape: number[]; values: Element[] } {
  const shape: number[] = [];
  let probe: unknown = nested;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    if (shape.length > MAX_RANK) throw new TranslateRefusal(`${what} is nested deeper than ${MAX_RANK} levels`);
    if (probe.length === 0) break;
    // `at`: a load that saw the outer lists too would box the innermost (number-lists.ts).
    probe = probe.at(0);
  }
  if (shape.length === 0) {
    checkScalar(nested, 0, what);
    return { shape, values: [nested as Element] };
  }
  const leaves: unknown[][] = [];
  walk(nested, shape, 0, leaves, what);
  // One list of values (a batch of one, or rank 1): the parsed list itself, no copy.
  if (leaves.length === 1) return { shape, values: leaves[0] as Element[] };
  const values: Element[] = new Array(elementCount(shape));
  let at = 0;
  // Numbers copied by a loop of their own only when every list is led by one: `values` is then a list of numbers alone.
  const copy = leaves.every(leadsWithNumber) ? copyNumbers : copyElements;
  for (const leaf of leaves) at = copy(leaf, values, at);
  return { shape, values };
}

/** `leaf` into `values` from `at`; the next index. Lists of numbers have their own copy (number-lists.ts). */
function copyNumbers(leaf: readonly unknown[], values: Element[], at: number): number {
  for (let i = 0; i < leaf.length; i++) values[at++] = leaf[i] as Element;
  return at;
}

/** The same loop as `copyNumbers`, for lists of strings and booleans: its own, so that its loads never see a list of doubles. */
function copyElements(leaf: readonly unknown[], values: Element[], at: number): number {
  for (let i = 0; i < leaf.length; i++) values[at++] = leaf[i] as Element;
  return at;
}

/** Collect the innermost lists of `v` in order, each checked (its length, its values scalars), in the order the elements come. */
function walk(v: unknown, shape: readonly number[], depth: number, leaves: unknown[][], what: string): void {
  if (!Array.isArray(v)) throw new TranslateRefusal(`${what} is ragged: a value where a list of ${shape[depth]} was expected at depth ${depth}`);
  if (v.length !== shape[depth]) throw new TranslateRefusal(`${what} is ragged: a list of ${v.length} where ${shape[depth]} were expected at depth ${depth}`);
  if (depth === shape.length - 1) {
    // A list of numbers, the common case, checked by number-lists.ts alone.
    const from = notNumbersFrom(v);
    if (from >= 0) checkScalars(v, from, depth + 1, what);
    leaves.push(v);
    return;
  }
  for (let i = 0; i < v.length; i++) walk(v[i], shape, depth + 1, leaves, what);
}

/** Throw unless each of `v` from `from` is a value (a list of numbers alone never comes here: number-lists.ts). */
function checkScalars(v: readonly unknown[], from: number, depth: number, what: string): void {
  for (let i = from; i < v.length; i++) {
    const e: unknown = v[i];
    if (typeof e !== 'number') checkScalar(e, depth, what);
  }
}

/** Throw unless `v` is a value: a number, bigint, boolean or string (`depth`: where, for the message). */
function checkScalar(v: unknown, depth: number, what: string): void {
  if (Array.isArray(v)) throw new TranslateRefusal(`${what} is ragged: a list where a value of depth ${depth} was expected`);
  if (typeof v !== 'number' && typeof v !== 'bigint' && typeof v !== 'boolean' && typeof v !== 'string')
    throw new TranslateRefusal(`${what} holds ${v === null ? 'null' : 'an object'} at depth ${depth}: only numbers, booleans and strings`);
}

/** A shape as sent: whole numbers from 0, at most MAX_RANK of them. */
export function checkShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape)) throw new TranslateRefusal(`${what} must be a list of whole numbers`);
  if (shape.length > MAX_RANK) throw new TranslateRefusal(`${what} has more than ${MAX_RANK} dimensions`);
  for (const d of shape) if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw new TranslateRefusal(`${what} must be a list of whole numbers from 0, not ${jsonText(shape)}`);
  return shape as number[];
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Throw unless `count` elements fill `shape`. */
export function checkCount(count: number, shape: readonly number[], what: string): void {
  const n = elementCount(shape);
  if (n !== count) throw new TranslateRefusal(`${what} has ${count} elements where its shape ${JSON.stringify(shape)} holds ${n}`);
}

/**
 * Most lists an empty tensor is written as: a shape such as [1e9, 0] holds nothing and fits in a
 * few bytes, but nested it is a billion empty lists. A tensor with elements writes at most
 * MAX_RANK lists per element.
 */
export const MAX_EMPTY_LISTS = 4096;

/** Throw unless `shape` nests into at most MAX_RANK lists per element (MAX_EMPTY_LISTS for an empty one); `status`: the refusal's. */
export function checkNesting(count: number, shape: readonly number[], status = 400): void {
  const most = Math.max(count * MAX_RANK, MAX_EMPTY_LISTS);
  let lists = 1;
  let level = 1;
  for (let d = 0; d < shape.length - 1 && level > 0; d++) {
    level *= shape[d]!;
    lists += level;
    if (lists > most) throw new TranslateRefusal(`the shape ${JSON.stringify(shape)} of ${count} elements would be written as more than ${most} nested lists`, status);
  }
}
