/**
 * Protocol translation's CPU (not a test): per request, a Seldon prediction translated to v2 and the
 * model's v2 answer translated back (gateway/translate/, as rest/rest-translation.ts calls it),
 * beside the floor the target is stated against: parsing and writing the same bodies once
 * (JSON.parse + JSON.stringify of request and answer). FP32 tensors of 1×4, 100×100 and 1×150,528,
 * seeded. CPU time (process.cpuUsage), so a busy machine slows the wall clock more than the figures.
 * This measures the codec in-process; the route's own CPU beside it is the `floor` and `large`
 * scenarios' (npm run bench -- floor).
 *
 *   npm run bench -- translate [--rounds N]
 */
import { seldonRequestToV2, v2AnswerToSeldon } from '../../gateway/translate/seldon-client.js';
import { seededRandom } from '../../routing/table/pick.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[args.indexOf('--rounds') + 1] ?? 3) || 3;
const random = seededRandom(20261127);

interface Case {
  readonly name: string;
  readonly request: Buffer;
  readonly answer: Buffer;
  readonly iterations: number;
}

function makeCase(rows: number, cols: number, iterations: number): Case {
  const values = Array.from({ length: rows * cols }, () => Math.fround(random() * 10 - 5));
  const nested = Array.from({ length: rows }, (_, r) => values.slice(r * cols, (r + 1) * cols));
  const request = Buffer.from(JSON.stringify({ data: { ndarray: nested } }));
  const answer = Buffer.from(JSON.stringify({ model_name: 'm', outputs: [{ name: 'output-0', shape: [rows, cols], datatype: 'FP32', data: values }] }));
  return { name: `${rows}x${cols} FP32`, request, answer, iterations };
}

const CASES = [makeCase(1, 4, 200_000), makeCase(100, 100, 400), makeCase(1, 150_528, 30)];

/** CPU µs per call of `f`, the best of ROUNDS. */
function cpuPerCall(iterations: number, f: () => void): number {
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) f();
    const t = process.cpuUsage(t0);
    best = Math.min(best, (t.user + t.system) / iterations);
  }
  return best;
}

const rows: string[][] = [['case', 'bytes in / answer', 'translate both ways µs', 'parse+write once µs', 'ratio']];
for (const c of CASES) {
  const input = { name: 'input-0', datatype: 'FP32' as const };
  // Warm up both paths.
  for (let i = 0; i < Math.min(c.iterations, 50); i++) {
    const { form } = seldonRequestToV2(c.request, input);
    v2AnswerToSeldon(200, c.answer, form, null);
    JSON.stringify(JSON.parse(c.request.toString()));
  }
  const translated = cpuPerCall(c.iterations, () => {
    const { body, form } = seldonRequestToV2(c.request, input);
    Buffer.from(body);
    Buffer.from(v2AnswerToSeldon(200, c.answer, form, null));
  });
  const floor = cpuPerCall(c.iterations, () => {
    Buffer.from(JSON.stringify(JSON.parse(c.request.toString())));
    Buffer.from(JSON.stringify(JSON.parse(c.answer.toString())));
  });
  rows.push([c.name, `${c.request.length} / ${c.answer.length}`, translated.toFixed(1), floor.toFixed(1), (translated / floor).toFixed(2)]);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
process.stdout.write(`\nNode ${process.version}; CPU per request, best of ${ROUNDS} rounds (the machine may be busy).\n`);
