/**
 * A predictor's `traffic` as its weight (docs/routing.md#weights-and-normalisation): a bad value is
 * taken as 0 or clamped, with a warning; one nothing reads is still reported, as ignored.
 */
import type { Findings } from './annotations.js';
import type { PredictorSpec } from './deployment.js';
import { MAX_INT32, readWholeNumber } from '../values/whole-number.js';

/** `traffic` as a number in 0..100 (missing is 0: Go writers drop zero values), and what is wrong with it if anything. */
function readTraffic(p: PredictorSpec): { value: number; problem: string | null } {
  const t = p.traffic as unknown;
  if (t === undefined || t === null) return { value: 0, problem: null };
  // Seldon's `traffic` is an int32: the one reader of whole numbers, a minus read so it is reported as out of range.
  const r = readWholeNumber(t, { min: -MAX_INT32 });
  if (!r.ok) return { value: 0, problem: `traffic ${JSON.stringify(t)} is not a whole number` };
  const n = r.value;
  if (n < 0 || n > 100) return { value: n < 0 ? 0 : 100, problem: `traffic ${n} is outside 0..100` };
  return { value: n, problem: null };
}

/** The predictor's `traffic` as its weight: a bad value is taken as 0 or clamped, with a warning. */
export function trafficOf(p: PredictorSpec, f: Findings): number {
  const { value, problem } = readTraffic(p);
  if (problem !== null) f.warn(`predictor "${p.name}": ${problem}: ${problem.endsWith('not a whole number') ? 'taken as 0' : `clamped to ${value}`}`);
  return value;
}

/** A `traffic` nothing reads (`why` says what decides instead): a bad value is still reported, as ignored. */
export function ignoredTraffic(p: PredictorSpec, why: string, f: Findings): void {
  const { problem } = readTraffic(p);
  if (problem !== null) f.warn(`predictor "${p.name}": ${problem}, and is ignored anyway: ${why}`);
}
