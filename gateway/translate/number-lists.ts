/**
 * Lists of numbers read without boxing them. V8 holds a parsed list of doubles unboxed (its elements a
 * row of float64s). An optimized element load that has seen such a list and a list of anything else
 * (objects, strings, booleans, lists, bigints) converts each list of doubles it then meets into a list of
 * boxed numbers, one heap object an element (an elements-kind transition: ≈ 9 ns an element, then the
 * collector's work, and a slower JSON.stringify after). Every document holds lists of objects (`outputs`,
 * `inputs`) and lists of strings (`names`), so a load that sees every list boxes every tensor.
 *
 * Hence one rule: what leads a list is asked by `at(0)` (a call V8 never converts a list for), and each
 * loop over a list's elements that a list of doubles reaches is a function of its own, given lists led by a
 * number alone. A list led by a number that holds something else (a bigint after a whole number beyond
 * 2^53, a mixed list) still reaches such a loop and makes it box from then on: it costs time, never a value.
 * Pure.
 */

/** Whether `list` is led by a number (so it goes to a loop over numbers), read without converting it. */
export const leadsWithNumber = (list: readonly unknown[]): boolean => typeof list.at(0) === 'number';

/**
 * Where `list` stops being numbers alone: -1 for a list of numbers, else the index of its first other element (0
 * for a list not led by a number). What checks the elements from there is a function of its own, called only
 * then: none of its loads ever sees a list of numbers alone.
 */
export const notNumbersFrom = (list: readonly unknown[]): number => (leadsWithNumber(list) ? firstNotNumber(list) : 0);

function firstNotNumber(list: readonly unknown[]): number {
  for (let i = 0; i < list.length; i++) if (typeof list[i] !== 'number') return i;
  return -1;
}
