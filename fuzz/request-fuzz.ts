/**
 * The request side's differential fuzzer: generated request streams (fuzz/request-grammar.ts), each
 * sent over a real socket to a gateway in front of the recording model (fuzz/model.ts), judged
 * against llhttp's reading of the same bytes (fuzz/request-judge.ts).
 */
import { caseId, sampleCase } from './grammar.js';
import { exchangeBytes, runCases, type RunOptions, type RunResult } from './fuzz-run.js';
import type { GatewayUnderTest } from './gateway-under-test.js';
import type { Model } from './model.js';
import { requestBytes, requestCase } from './request-grammar.js';
import { caseEnd, judgeRequestCase, sentinel, type CaseEnd } from './request-judge.js';

/** How long a case may keep its connection open after the client's end (the gateway's request timeout is 3 s). */
const HANG_MS = 10_000;

/** The bytes of case `index` of sequence `seed`. */
export function requestCaseBytes(seed: number, index: number): { bytes: Buffer; splits: number[]; id: string; end: CaseEnd } {
  const c = sampleCase(requestCase, seed, index);
  const id = caseId(index);
  const stream = requestBytes(c, id);
  const end = caseEnd(stream);
  return { bytes: end === 'sentinel' ? Buffer.concat([stream, Buffer.from(sentinel(id), 'latin1')]) : stream, splits: c.splits, id, end };
}

export async function fuzzRequests(gateway: GatewayUnderTest, model: Model, options: RunOptions): Promise<RunResult> {
  const result = await runCases('request', options, async (index) => {
    const { bytes, splits, id, end } = requestCaseBytes(options.seed, index);
    const { received, hung } = await exchangeBytes(gateway.port, bytes, splits, end === 'fin', HANG_MS);
    const got = model.take(id, end === 'fin');
    if (hung) return { verdict: { kind: 'hang', detail: `the connection stayed open ${HANG_MS} ms after the last byte` }, bytes };
    return { verdict: judgeRequestCase(bytes, received, got, end), bytes };
  });
  // A request that reached the model whole after its case was judged (its client gone) is one whose answer nobody read.
  for (const q of model.late.splice(0)) {
    if (q.complete)
      result.divergences.push({
        replay: `${options.seed}:?`,
        kind: 'answer',
        detail: `a request reached the model whole after its client's connection closed: ${JSON.stringify(q.target)}`,
        bytes: '',
      });
  }
  for (const q of model.strays.splice(0))
    result.divergences.push({ replay: `${options.seed}:?`, kind: 'lenient', detail: `the model received a request no case sent: ${JSON.stringify(q.target)} ${q.error ?? ''}`, bytes: '' });
  return result;
}
