/**
 * The seeded random tests' shared pieces (test/gateway/edge/http1-lane.test.ts, test/gateway/rest/broken-model-answers.test.ts):
 * the sequence to run, and the two ways a case is drawn from it.
 */

/** SELDON_GATEWAY_FUZZ_SEED and SELDON_GATEWAY_FUZZ_CASES run another sequence, or a longer one. */
export function fuzzSequence(defaultCases: number): { seed: number; cases: number } {
  return { seed: Number(process.env.SELDON_GATEWAY_FUZZ_SEED ?? 20261123), cases: Number(process.env.SELDON_GATEWAY_FUZZ_CASES ?? defaultCases) };
}

/** One of `xs`, and a coin that comes up true with probability `p`, both drawn from `r`. */
export function draws(r: () => number): { pick: <T>(xs: readonly T[]) => T; maybe: (p: number) => boolean } {
  return { pick: (xs) => xs[Math.floor(r() * xs.length)]!, maybe: (p) => r() < p };
}
