/**
 * Run by unboxed-doubles.test.ts as `node --allow-natives-syntax --no-concurrent-recompilation --no-concurrent-osr`:
 * the REST translations (the built gateway's, dist/) are fed every kind of list a gateway sees (lists of objects,
 * strings, booleans, nested lists, long integers) until they are optimized, then a fresh tensor of doubles goes
 * through each, and what stays a list of unboxed doubles is printed as JSON. A load site of optimized code that has
 * seen a list of doubles and a list of anything else converts every list of doubles it meets into boxed numbers
 * (V8's elements-kind transition): ≈ 9 ns an element, and as many heap numbers for the collector.
 */
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { seldonAnswerToV2, v2RequestToSeldon } from '../../../../dist/gateway/translate/v2-client.js';
import { seldonRequestToV2, v2AnswerToSeldon } from '../../../../dist/gateway/translate/seldon-client.js';

// Natives syntax in a Function, so that this file parses as plain JavaScript.
const holdsDoubles = new Function('a', 'return %HasDoubleElements(a)');

/** Every document JSON.parse made since the last `parsed()`: the translation's own parses, unchanged. */
const parse = JSON.parse;
let docs = [];
JSON.parse = function (...args) {
  const v = parse.apply(this, args);
  docs.push(v);
  return v;
};
const parsed = () => {
  const d = docs;
  docs = [];
  return d;
};

const body = (o) => Buffer.from(JSON.stringify(o));
const raw = (s) => Buffer.from(s);
const floats = (n, k = 1) => Array.from({ length: n }, (_, i) => (i + 0.5) * k + 0.25);
const rows = (r, c) => Array.from({ length: r }, (_, i) => floats(c, i + 1));
const input = { name: 'input-0', datatype: null };
const form = (kind) => ({ kind, puid: undefined });
const v2Form = { modelName: 'm', modelVersion: undefined, id: undefined };

/** Lists of each kind, of `n` elements; bodies of several kilobytes, which json-exact.ts walks (a small one it scans). */
const words = (n) => Array.from({ length: n }, (_, i) => `w${i}`);
const flags = (n) => Array.from({ length: n }, (_, i) => i % 3 === 0);
const ints = (n) => Array.from({ length: n }, (_, i) => i * 7);
const nest = (list, c) => Array.from({ length: list.length / c }, (_, i) => list.slice(i * c, (i + 1) * c));
const N = 600;
/** A list led by a whole number beyond 2^53 (a bigint once read exactly), then whole numbers. */
const longInts = `[9007199254740993,${ints(N - 1).join(',')}]`;
const output = (datatype, data, shape = [N]) => ({ name: 'o', shape, datatype, data });
const answer = (...outputs) => body({ model_name: 'm', outputs });
const seldonAnswer = (data) => body({ data: { names: [], ...data }, meta: {} });

/** What a gateway translates, every kind of list in it, small and large. */
const traffic = [
  () => seldonRequestToV2(body({ data: { tensor: { shape: [2, N / 2], values: floats(N) } } }), input),
  () => seldonRequestToV2(body({ data: { tensor: { shape: [1, 4], values: floats(4) } } }), input),
  () => seldonRequestToV2(body({ data: { ndarray: rows(20, 30) } }), input),
  () => seldonRequestToV2(body({ data: { ndarray: nest(words(N), 30) } }), input),
  () => seldonRequestToV2(body({ data: { ndarray: nest(flags(N), 30) } }), input),
  () => seldonRequestToV2(body({ data: { ndarray: nest(ints(N), 30) } }), input),
  () => seldonRequestToV2(body({ data: { names: words(N), ndarray: [floats(N)] }, meta: { tags: { a: ints(4), b: words(2), c: { d: [0.5] } } } }), input),
  () => seldonRequestToV2(raw(`{"data":{"ndarray":[${longInts}]}}`), input),
  () => seldonRequestToV2(body({ strData: words(N).join(' ') }), input),
  () => v2AnswerToSeldon(200, answer(output('FP64', floats(N))), form('tensor'), null),
  () => v2AnswerToSeldon(200, answer(output('FP64', floats(4), [1, 4])), form('tensor'), null),
  () => v2AnswerToSeldon(200, answer(output('FP64', rows(20, 30), [20, 30])), form('ndarray'), null),
  () => v2AnswerToSeldon(200, answer(output('BYTES', words(N))), form('ndarray'), null),
  () => v2AnswerToSeldon(200, answer(output('BOOL', flags(N))), form('ndarray'), null),
  () => v2AnswerToSeldon(200, answer(output('INT32', ints(N))), form('ndarray'), null),
  () => v2AnswerToSeldon(200, raw(`{"model_name":"m","outputs":[{"name":"o","shape":[${N}],"datatype":"INT64","data":${longInts}}]}`), form('ndarray'), null),
  () => v2AnswerToSeldon(200, answer({ ...output('FP32', floats(N)), name: 'a' }, { ...output('BYTES', words(N)), name: 'b' }), form('ndarray'), null),
  () => v2RequestToSeldon(body({ inputs: [output('FP64', floats(N))] }), 'm'),
  () => v2RequestToSeldon(body({ inputs: [output('BYTES', words(N))] }), 'm'),
  () => v2RequestToSeldon(body({ inputs: [output('INT32', nest(ints(N), 30), [N / 30, 30])] }), 'm'),
  () => v2RequestToSeldon(raw(`{"inputs":[{"name":"i","shape":[${N}],"datatype":"INT64","data":${longInts}}]}`), 'm'),
  () => seldonAnswerToV2(200, seldonAnswer({ tensor: { shape: [N], values: floats(N) } }), v2Form),
  () => seldonAnswerToV2(200, seldonAnswer({ ndarray: nest(words(N), 30) }), v2Form),
  () => seldonAnswerToV2(200, seldonAnswer({ ndarray: rows(20, 30) }), v2Form),
  () => seldonAnswerToV2(200, seldonAnswer({ ndarray: [flags(N)] }), v2Form),
];

/** Each list of numbers in `doc` (its lists of lists followed), whether it still holds unboxed doubles; read by `at`, which never converts a list. */
function numberLists(doc, out = []) {
  if (Array.isArray(doc)) {
    if (typeof doc.at(0) === 'number') out.push(holdsDoubles(doc));
    else for (let i = 0; i < doc.length; i++) numberLists(doc.at(i), out);
  } else if (typeof doc === 'object' && doc !== null) for (const k of Object.keys(doc)) if (k !== 'shape') numberLists(doc[k], out);
  return out;
}

/** A fresh tensor of doubles through each translation: its lists after it (and each was one before: checked on a copy first). */
const probes = {
  'a Seldon tensor to a v2 model': () => seldonRequestToV2(body({ data: { tensor: { shape: [100, 100], values: floats(10000) } } }), input),
  'a Seldon ndarray to a v2 model': () => seldonRequestToV2(body({ data: { ndarray: rows(100, 100) } }), input),
  "a v2 model's flat answer to a Seldon client": () =>
    v2AnswerToSeldon(200, body({ model_name: 'm', outputs: [{ name: 'o', shape: [100, 100], datatype: 'FP64', data: floats(10000) }] }), form('tensor'), null),
  "a v2 model's nested answer to a Seldon client": () =>
    v2AnswerToSeldon(200, body({ model_name: 'm', outputs: [{ name: 'o', shape: [100, 100], datatype: 'FP64', data: rows(100, 100) }] }), form('ndarray'), null),
  'a v2 request to a Seldon model': () => v2RequestToSeldon(body({ inputs: [{ name: 'i', shape: [100, 100], datatype: 'FP64', data: floats(10000) }] }), 'm'),
  // Whole numbers beyond 2^31: a list of doubles too.
  'a v2 INT64 request to a Seldon model': () =>
    v2RequestToSeldon(body({ inputs: [{ name: 'i', shape: [100, 100], datatype: 'INT64', data: Array.from({ length: 10000 }, (_, i) => 2 ** 40 + i) }] }), 'm'),
  "a Seldon model's tensor answer to a v2 client": () => seldonAnswerToV2(200, body({ data: { names: [], tensor: { shape: [100, 100], values: floats(10000) } }, meta: {} }), v2Form),
  "a Seldon model's ndarray answer to a v2 client": () => seldonAnswerToV2(200, body({ data: { names: [], ndarray: rows(100, 100) }, meta: {} }), v2Form),
};
/** Each probe once: how many lists of numbers its documents held, and how many of them still hold unboxed doubles. */
function probe() {
  const result = {};
  for (const [name, run] of Object.entries(probes)) {
    run();
    const lists = parsed().flatMap((d) => numberLists(d));
    result[name] = { lists: lists.length, doubles: lists.filter(Boolean).length };
  }
  return result;
}

// Before: nothing is optimized yet, so every list must be found holding doubles (the check itself works).
const before = probe();
for (let i = 0; i < 1500; i++) for (const t of traffic) t();
parsed();
process.stdout.write(JSON.stringify({ before, after: probe() }));
