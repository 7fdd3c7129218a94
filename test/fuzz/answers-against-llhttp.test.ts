/**
 * The response side's differential fuzzer, a short run (fuzz/response-fuzz.ts; `npm run fuzz` runs
 * it for hours): generated model answers read by the gateway's upstream client and passed to a
 * client over real sockets, each judged against llhttp reading the model's bytes. Seeded from the
 * date; SELDON_GATEWAY_FUZZ_SEED and SELDON_GATEWAY_FUZZ_CASES replay another run. A divergence
 * fails the build with its replay line (`npm run fuzz -- --side response --case s:i`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dateSeed } from '../../fuzz/fuzz-run.js';
import { startGatewayUnderTest, type GatewayUnderTest } from '../../fuzz/gateway-under-test.js';
import { startModel, type Model } from '../../fuzz/model.js';
import { answerEnd, fuzzResponses, responder } from '../../fuzz/response-fuzz.js';

const seed = Number(process.env.SELDON_GATEWAY_FUZZ_SEED ?? dateSeed());
const CASES = Number(process.env.SELDON_GATEWAY_FUZZ_CASES ?? 20_000);

describe("the fuzzing model's answer end", () => {
  it('is where llhttp reads the final answer whole: bytes after it are written with its last piece', () => {
    const first = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}';
    const after = 'HTTP/1.1 200 OK\r\nX-Case: x-2\r\nContent-Length: 2\r\n\r\nhi';
    expect(answerEnd(Buffer.from(first + after), 'GET')).toBe(first.length);
    expect(answerEnd(Buffer.from(first + after), 'HEAD')).toBe(first.length - 2);
    expect(answerEnd(Buffer.from(first.slice(0, -1)), 'GET')).toBe(-1);
  });
});

describe('model answers through the gateway, against llhttp', () => {
  let model: Model;
  let gateway: GatewayUnderTest;
  beforeAll(async () => {
    model = await startModel(responder(seed));
    gateway = await startGatewayUnderTest(model.port);
  });
  afterAll(async () => {
    await gateway?.close();
    await model?.close();
  });

  it(`${CASES} generated answers (seed ${seed}): the client reads the model's answer exactly, or a 502 only by the documented rules, never one llhttp cannot read whole`, async () => {
    const r = await fuzzResponses(gateway, { seed, count: CASES, concurrency: 32 });
    const lines = r.divergences.map((d) => `${d.kind} (npm run fuzz -- --side response --case ${d.replay}): ${d.detail}\n  ${d.bytes}`);
    expect(lines).toEqual([]);
    expect(r.cases).toBe(CASES);
    expect(r.tally.fine ?? 0).toBeGreaterThan(CASES * 0.8);
    expect(Object.keys(r.tally).filter((k) => k.startsWith('stricter: ')).length, JSON.stringify(r.tally)).toBeGreaterThanOrEqual(4);
    console.log(`response fuzz, seed ${seed}: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s (${((r.cases * 1000) / r.ms).toFixed(0)}/s): ${JSON.stringify(r.tally)}`);
  }, 600_000);
});
