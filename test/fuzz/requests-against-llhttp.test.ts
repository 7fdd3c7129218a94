/**
 * The request side's differential fuzzer, a short run (fuzz/request-fuzz.ts; `npm run fuzz` runs it
 * for hours): generated request streams sent over real sockets to a gateway in front of a recording
 * model, each judged against llhttp reading the same bytes. Seeded from the date, so every day
 * explores new cases; SELDON_GATEWAY_FUZZ_SEED and SELDON_GATEWAY_FUZZ_CASES replay another run.
 * A divergence fails the build with its replay line (`npm run fuzz -- --side request --case s:i`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dateSeed } from '../../fuzz/fuzz-run.js';
import { startGatewayUnderTest, type GatewayUnderTest } from '../../fuzz/gateway-under-test.js';
import { startModel, type Model } from '../../fuzz/model.js';
import { fuzzRequests } from '../../fuzz/request-fuzz.js';

const seed = Number(process.env.SELDON_GATEWAY_FUZZ_SEED ?? dateSeed());
const CASES = Number(process.env.SELDON_GATEWAY_FUZZ_CASES ?? 20_000);

describe('request streams through the gateway, against llhttp', () => {
  let model: Model;
  let gateway: GatewayUnderTest;
  beforeAll(async () => {
    model = await startModel();
    gateway = await startGatewayUnderTest(model.port);
  });
  afterAll(async () => {
    await gateway?.close();
    await model?.close();
  });

  it(`${CASES} generated streams (seed ${seed}): the model receives what llhttp reads, the client one answer per request, refusals only by the documented rules`, async () => {
    const r = await fuzzRequests(gateway, model, { seed, count: CASES, concurrency: 32 });
    const lines = r.divergences.map((d) => `${d.kind} (npm run fuzz -- --side request --case ${d.replay}): ${d.detail}\n  ${d.bytes}`);
    expect(lines).toEqual([]);
    expect(r.cases).toBe(CASES);
    // The sequence reaches both sides of every rule: most streams served, every documented refusal met.
    expect(r.tally.fine ?? 0).toBeGreaterThan(CASES * 0.8);
    expect(Object.keys(r.tally).filter((k) => k.startsWith('stricter: ')).length, JSON.stringify(r.tally)).toBeGreaterThanOrEqual(7);
    console.log(`request fuzz, seed ${seed}: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s (${((r.cases * 1000) / r.ms).toFixed(0)}/s): ${JSON.stringify(r.tally)}`);
  }, 600_000);
});
