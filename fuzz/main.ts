/**
 * `npm run fuzz -- [--minutes N] [--side request|response|both] [--seed S] [--concurrency C]`:
 * the differential fuzzers against a gateway started here (this source tree), for as long as asked;
 * prints cases per second as it goes, and a replay line for every divergence.
 * `npm run fuzz -- --case <seed>:<index> --side request|response` runs one case and shows all of it.
 *
 * The seed defaults to today's date (YYYYMMDD), as the short run in `npm test` does.
 */
import { parseArgs } from 'node:util';
import { dateSeed, exchangeBytes, type Divergence, type RunResult } from './fuzz-run.js';
import { startGatewayUnderTest } from './gateway-under-test.js';
import { llhttp, llhttpResponses } from './llhttp.js';
import { startModel } from './model.js';
import { fuzzRequests, requestCaseBytes } from './request-fuzz.js';
import { judgeRequestCase } from './request-judge.js';
import { fuzzResponses, responder, responseCaseOf } from './response-fuzz.js';
import { judgeResponseCase } from './response-judge.js';

function usage(message: string): never {
  process.stderr.write(`seldon-gateway fuzz: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    side: { type: 'string', default: 'both' },
    seed: { type: 'string' },
    from: { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '32' },
    case: { type: 'string' },
  },
});
const side = values.side!;
if (!['request', 'response', 'both'].includes(side)) usage(`--side ${side}: request, response or both`);
const minutes = Number(values.minutes);
if (!(minutes > 0)) usage(`--minutes ${values.minutes}: a positive number`);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) usage(`--concurrency ${values.concurrency}: a positive whole number`);

const show = (d: Divergence): void => void process.stdout.write(`DIVERGENCE ${d.kind} --case ${d.replay} --side ${side}: ${d.detail}\n  bytes ${d.bytes}\n`);

if (values.case !== undefined) {
  const m = /^(-?\d+):(\d+)$/.exec(values.case);
  if (m === null) usage(`--case ${values.case}: <seed>:<index>`);
  if (side === 'both') usage('--case needs --side request or --side response');
  const [seed, index] = [Number(m[1]), Number(m[2])];
  const model = await startModel(side === 'response' ? responder(seed) : undefined);
  const gw = await startGatewayUnderTest(model.port);
  if (side === 'request') {
    const { bytes, splits, id, end } = requestCaseBytes(seed, index);
    const ref = llhttp(bytes);
    const { received } = await exchangeBytes(gw.port, bytes, splits, end === 'fin', 10_000);
    const got = model.take(id, true);
    console.log(
      JSON.stringify(
        { sent: bytes.toString('latin1'), splits, end, llhttp: ref, clientRead: received.toString('latin1'), modelReceived: got, verdict: judgeRequestCase(bytes, received, got, end) },
        null,
        2,
      ),
    );
  } else {
    const { c, id, answer, request } = responseCaseOf(seed, index);
    const { received } = await exchangeBytes(gw.port, request, [], false, 10_000);
    console.log(
      JSON.stringify(
        {
          request: request.toString('latin1'),
          modelAnswer: answer.toString('latin1'),
          splits: c.splits,
          modelCloses: c.close,
          llhttp: llhttpResponses(answer, [c.method], c.close),
          clientRead: received.toString('latin1'),
          verdict: judgeResponseCase(c, id, answer, received),
        },
        null,
        2,
      ),
    );
  }
  await gw.close();
  await model.close();
  process.exit(0);
}

const seed = values.seed === undefined ? dateSeed() : Number(values.seed);
if (!Number.isInteger(seed)) usage(`--seed ${values.seed}: a whole number`);
const from = Number(values.from);
const sides = side === 'both' ? ['request', 'response'] : [side];
const until = performance.now() + minutes * 60_000;
const results: RunResult[] = [];
// Both sides at once, each on its own gateway and model, for the whole time.
await Promise.all(
  sides.map(async (s) => {
    const model = await startModel(s === 'response' ? responder(seed) : undefined);
    const gw = await startGatewayUnderTest(model.port);
    // Progress once a minute, in slices that keep the case numbering of one run.
    let next = from;
    let done = 0;
    let divergences = 0;
    const started = performance.now();
    while (performance.now() < until) {
      const sliceUntil = Math.min(until, performance.now() + 60_000);
      const r =
        s === 'request'
          ? await fuzzRequests(gw, model, { seed, from: next, until: sliceUntil, concurrency, onDivergence: show })
          : await fuzzResponses(gw, { seed, from: next, until: sliceUntil, concurrency, onDivergence: show });
      results.push(r);
      next += r.cases;
      done += r.cases;
      divergences += r.divergences.length;
      const s2 = (performance.now() - started) / 1000;
      process.stdout.write(`${s}: ${done} cases (seed ${seed}, ${from}…${next - 1}) in ${s2.toFixed(0)} s, ${(done / s2).toFixed(0)} cases/s, ${divergences} divergences\n`);
    }
    await gw.close();
    await model.close();
  }),
);
const tally: Record<string, Record<string, number>> = {};
for (const r of results) for (const [k, n] of Object.entries(r.tally)) (tally[r.side] ??= {})[k] = (tally[r.side]![k] ?? 0) + n;
process.stdout.write(`${JSON.stringify(tally, null, 2)}\n`);
const total = results.reduce((n, r) => n + r.divergences.length, 0);
process.stdout.write(total === 0 ? 'no divergence\n' : `${total} divergences (replay lines above)\n`);
process.exit(total === 0 ? 0 : 1);
