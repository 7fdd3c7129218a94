/**
 * The REST codecs between SeldonMessage and the Open Inference Protocol (v2), pure: golden vectors
 * (each datatype, ranks 0–3, tensor and ndarray, strings and bytes, several outputs), exact 64-bit
 * integers, every refusal, and seeded round trips Seldon → v2 → Seldon.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readV2Tensor, type SeldonForm } from '../../../gateway/translate/seldon-client.js';
import { refusal, seldonAnswerToV2, seldonRequestToV2, v2AnswerToSeldon, v2RequestToSeldon } from '../../helpers/translate-text.js';
import { DATATYPES } from '../../../gateway/translate/datatypes.js';
import { parseExact } from '../../../gateway/translate/json-exact.js';

const b = (s: string): Buffer => Buffer.from(s);
const ANY = { name: 'input-0', datatype: null };
const toV2 = (s: string, input: { name: string; datatype: (typeof DATATYPES)[number] | null } = ANY) => seldonRequestToV2(b(s), input);
/** The v2 answer a model gives, one output. */
const v2Out = (o: object): Buffer => b(JSON.stringify({ model_name: 'm', outputs: [o] }));

describe('Seldon request → v2 request (golden)', () => {
  const cases: [string, string, string?][] = [
    ['{"data":{"ndarray":[[1,2,3,4]]}}', '{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}]}'],
    ['{"data":{"ndarray":[[1.5,2]]}}', '{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP64","data":[1.5,2]}]}'],
    // 1.0 is a float as numpy reads it, though JSON.parse makes it 1.
    ['{"data":{"ndarray":[1.0,2.0]}}', '{"inputs":[{"name":"input-0","shape":[2],"datatype":"FP64","data":[1,2]}]}'],
    ['{"data":{"ndarray":[true,false]}}', '{"inputs":[{"name":"input-0","shape":[2],"datatype":"BOOL","data":[true,false]}]}'],
    ['{"data":{"ndarray":[["a","b"]]}}', '{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"BYTES","data":["a","b"]}]}'],
    ['{"data":{"ndarray":7}}', '{"inputs":[{"name":"input-0","shape":[],"datatype":"INT64","data":[7]}]}'],
    ['{"data":{"ndarray":[[[1],[2]],[[3],[4]]]}}', '{"inputs":[{"name":"input-0","shape":[2,2,1],"datatype":"INT64","data":[1,2,3,4]}]}'],
    ['{"data":{"tensor":{"shape":[2,2],"values":[1,2,3,4]}}}', '{"inputs":[{"name":"input-0","shape":[2,2],"datatype":"INT64","data":[1,2,3,4]}]}'],
    ['{"data":{"tensor":{"shape":[],"values":[0.25]}}}', '{"inputs":[{"name":"input-0","shape":[],"datatype":"FP64","data":[0.25]}]}'],
    ['{"meta":{"puid":"p-1"},"data":{"ndarray":[1]}}', '{"id":"p-1","inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[1]}]}'],
    ['{"strData":"hello"}', '{"inputs":[{"name":"input-0","shape":[1],"datatype":"BYTES","parameters":{"content_type":"str"},"data":["hello"]}]}'],
    ['{"binData":"AAEC"}', '{"inputs":[{"name":"input-0","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["AAEC"]}]}'],
    // The model's metadata (or the annotation) names the datatype.
    ['{"data":{"ndarray":[[1,2]]}}', '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}', 'FP32'],
    ['{"data":{"ndarray":[[255,0]]}}', '{"inputs":[{"name":"x","shape":[1,2],"datatype":"UINT8","data":[255,0]}]}', 'UINT8'],
    ['{"data":{"ndarray":[[-128,127]]}}', '{"inputs":[{"name":"x","shape":[1,2],"datatype":"INT8","data":[-128,127]}]}', 'INT8'],
    ['{"data":{"ndarray":[[65535]]}}', '{"inputs":[{"name":"x","shape":[1,1],"datatype":"UINT16","data":[65535]}]}', 'UINT16'],
    ['{"data":{"ndarray":[-32768]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"INT16","data":[-32768]}]}', 'INT16'],
    ['{"data":{"ndarray":[4294967295]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"UINT32","data":[4294967295]}]}', 'UINT32'],
    ['{"data":{"ndarray":[-2147483648]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[-2147483648]}]}', 'INT32'],
    ['{"data":{"ndarray":[18446744073709551615]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}', 'UINT64'],
    ['{"data":{"ndarray":[-9223372036854775808]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[-9223372036854775808]}]}', 'INT64'],
    ['{"data":{"ndarray":[65504, 0.5]}}', '{"inputs":[{"name":"x","shape":[2],"datatype":"FP16","data":[65504,0.5]}]}', 'FP16'],
    ['{"data":{"ndarray":[1e38]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"BF16","data":[1e+38]}]}', 'BF16'],
    ['{"data":{"ndarray":[1e300]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1e+300]}]}', 'FP64'],
    ['{"data":{"ndarray":[true]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[true]}]}', 'BOOL'],
    ['{"data":{"ndarray":["é"]}}', '{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["é"]}]}', 'BYTES'],
  ];
  it.each(cases)('%s', (seldon, v2, datatype) => {
    const input = datatype === undefined ? ANY : { name: 'x', datatype: datatype as (typeof DATATYPES)[number] };
    expect(toV2(seldon, input).body).toBe(v2);
  });

  it('INT64 beyond 2^53 goes exactly, never through a JavaScript number', () => {
    expect(toV2('{"data":{"ndarray":[9007199254740993, 1]}}').body).toBe('{"inputs":[{"name":"input-0","shape":[2],"datatype":"INT64","data":[9007199254740993,1]}]}');
    expect(toV2('{"data":{"tensor":{"shape":[1],"values":[-9007199254740995]}}}').body).toContain('"data":[-9007199254740995]');
  });

  it('says the form its answer takes', () => {
    expect(toV2('{"data":{"tensor":{"shape":[1],"values":[1]}}}').form).toEqual({ kind: 'tensor', puid: undefined });
    expect(toV2('{"meta":{"puid":"x"},"data":{"ndarray":[1]}}').form).toEqual({ kind: 'ndarray', puid: 'x' });
    expect(toV2('{"strData":"s"}').form.kind).toBe('strData');
    expect(toV2('{"binData":"AA=="}').form.kind).toBe('binData');
  });
});

describe('Seldon request refusals', () => {
  const cases: [string, string, RegExp, string?][] = [
    ['ragged', '{"data":{"ndarray":[[1,2],[3]]}}', /ragged/],
    ['ragged, a list beside a value', '{"data":{"ndarray":[[1,2],3]}}', /ragged/],
    ['mixed kinds', '{"data":{"ndarray":[1,"a"]}}', /mixed array/],
    ['mixed booleans and numbers', '{"data":{"ndarray":[true,1]}}', /mixed array/],
    ['null inside', '{"data":{"ndarray":[1,null]}}', /null/],
    ['count vs shape', '{"data":{"tensor":{"shape":[2,2],"values":[1,2,3]}}}', /3 elements where its shape \[2,2\] holds 4/],
    ['a bad shape', '{"data":{"tensor":{"shape":[-1],"values":[1]}}}', /whole numbers/],
    ['a string among tensor values', '{"data":{"tensor":{"shape":[1],"values":["1"]}}}', /tensor values are numbers/],
    ['a fraction for an integer type', '{"data":{"ndarray":[1.5]}}', /not a whole number \(datatype INT32\)/, 'INT32'],
    ['out of range for UINT8', '{"data":{"ndarray":[256]}}', /out of range for UINT8/, 'UINT8'],
    ['negative for UINT64', '{"data":{"ndarray":[-1]}}', /out of range for UINT64/, 'UINT64'],
    ['beyond INT64', '{"data":{"ndarray":[9223372036854775808]}}', /out of range for INT64/, 'INT64'],
    ['beyond UINT64', '{"data":{"ndarray":[18446744073709551616]}}', /out of range for UINT64/, 'UINT64'],
    ['an inexact whole number beyond 2^53', '{"data":{"ndarray":[1e17]}}', /digits only/, 'INT64'],
    ['out of range for FP16', '{"data":{"ndarray":[65520]}}', /out of range for FP16/, 'FP16'],
    ['out of range for FP32', '{"data":{"ndarray":[1e39]}}', /out of range for FP32/, 'FP32'],
    ['infinite', '{"data":{"ndarray":[1e400]}}', /out of range for FP64/],
    ['FP64 cannot hold 2^53+1', '{"data":{"ndarray":[1.5, 9007199254740993]}}', /FP64 cannot hold exactly/],
    ['a number for BOOL', '{"data":{"ndarray":[1]}}', /not a boolean/, 'BOOL'],
    ['a string for a number type', '{"data":{"ndarray":["1"]}}', /not a number \(datatype FP32\)/, 'FP32'],
    ['strData for a numeric input', '{"strData":"x"}', /strData is bytes/, 'FP32'],
    ['binData not base64', '{"binData":"a-b"}', /not base64/],
    ['jsonData', '{"jsonData":{"a":1}}', /jsonData has no Open Inference Protocol form/],
    ['tftensor', '{"data":{"tftensor":{}}}', /tftensor is not translated/],
    ['no data', '{"meta":{}}', /needs data/],
    ['not JSON', '{"data":', /not valid JSON/],
    ['not an object', '[1]', /JSON object/],
    ['a puid that is not a string', '{"meta":{"puid":1},"data":{"ndarray":[1]}}', /puid/],
    // What an attacker sends.
    ['a NaN literal (Python writes it; JSON has none)', '{"data":{"ndarray":[NaN]}}', /not valid JSON/],
    ['an Infinity literal', '{"data":{"ndarray":[-Infinity]}}', /not valid JSON/],
    ['negative for UINT8', '{"data":{"ndarray":[-1]}}', /out of range for UINT8/, 'UINT8'],
    ['2^64 for UINT64, written as a tensor', '{"data":{"tensor":{"shape":[1],"values":[18446744073709551616]}}}', /out of range for UINT64/, 'UINT64'],
    ['a huge shape', '{"data":{"tensor":{"shape":[4294967296,4294967296],"values":[1]}}}', /1 elements where its shape \[4294967296,4294967296\] holds/],
    ['a shape whose product is beyond 2^53', '{"data":{"tensor":{"shape":[9007199254740991,9007199254740991,2],"values":[1,2]}}}', /2 elements where its shape/],
    ['an object with a long integer among tensor values', '{"data":{"tensor":{"shape":[1],"values":[{"n":12345678901234567890}]}}}', /tensor values are numbers/],
    ['a shape dimension beyond 2^53', '{"data":{"tensor":{"shape":[18446744073709551616],"values":[1]}}}', /whole numbers from 0/],
    ['more than 32 dimensions', `{"data":{"tensor":{"shape":[${Array(33).fill(1).join(',')}],"values":[1]}}}`, /more than 32 dimensions/],
    ['nested 100,000 deep', `{"data":{"ndarray":${'['.repeat(100_000)}1${']'.repeat(100_000)}}}`, /nested deeper than 32 levels/],
    // A long integer makes the parse keep each number's source text: a reviver, which recurses.
    ['nested 100,000 deep beside a long integer', `{"meta":{"tags":{"n":12345678901234567890}},"data":{"ndarray":${'['.repeat(100_000)}1${']'.repeat(100_000)}}}`, /not valid JSON/],
  ];
  it.each(cases)('%s', (_name, seldon, info, datatype) => {
    const r = refusal(() => toV2(seldon, datatype === undefined ? ANY : { name: 'x', datatype: datatype as (typeof DATATYPES)[number] }));
    expect(r.status).toBe(400);
    expect(r.message).toMatch(info);
  });
});

describe('v2 answer → Seldon answer (golden, as the wrapper writes it)', () => {
  const nd: SeldonForm = { kind: 'ndarray', puid: undefined };
  const tensor: SeldonForm = { kind: 'tensor', puid: undefined };
  it('ndarray in, ndarray out nested by the shape, t:0… names for rank 2', () => {
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [2, 2], datatype: 'FP32', data: [0.5, 0.25, 1, 2] }), nd, null)).toBe(
      '{"data":{"names":["t:0","t:1"],"ndarray":[[0.5,0.25],[1.0,2.0]]},"meta":{}}',
    );
  });
  it('rank 0, 1 and 3', () => {
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [], datatype: 'INT64', data: [3] }), nd, null)).toBe('{"data":{"names":[],"ndarray":3},"meta":{}}');
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [2], datatype: 'INT32', data: [3, 4] }), nd, null)).toBe('{"data":{"names":[],"ndarray":[3,4]},"meta":{}}');
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1, 2, 2], datatype: 'UINT8', data: [1, 2, 3, 4] }), nd, null)).toBe('{"data":{"names":["t:0","t:1"],"ndarray":[[[1,2],[3,4]]]},"meta":{}}');
  });
  it("the annotation's names are the model's class names: an answer of rank 2 or more carries them, a lower rank none (client_class_names)", () => {
    const names = ['setosa', 'versicolor'];
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1, 2], datatype: 'FP64', data: [0.25, 0.75] }), nd, names)).toBe(
      '{"data":{"names":["setosa","versicolor"],"ndarray":[[0.25,0.75]]},"meta":{}}',
    );
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [2], datatype: 'FP64', data: [0.25, 0.75] }), tensor, names)).toBe(
      '{"data":{"names":[],"tensor":{"shape":[2],"values":[0.25,0.75]}},"meta":{}}',
    );
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [], datatype: 'INT64', data: [1] }), nd, names)).toBe('{"data":{"names":[],"ndarray":1},"meta":{}}');
  });
  it('tensor in, tensor out for numbers; booleans and strings as an ndarray (numpy: not a number)', () => {
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1, 2], datatype: 'FP64', data: [0.1, 0.9] }), tensor, null)).toBe(
      '{"data":{"names":["t:0","t:1"],"tensor":{"shape":[1,2],"values":[0.1,0.9]}},"meta":{}}',
    );
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [2], datatype: 'BOOL', data: [true, false] }), tensor, null)).toBe('{"data":{"names":[],"ndarray":[true,false]},"meta":{}}');
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1], datatype: 'BYTES', data: ['x'] }), tensor, null)).toBe('{"data":{"names":[],"ndarray":["x"]},"meta":{}}');
  });
  it("the annotation's names, and the request's puid", () => {
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1, 2], datatype: 'FP64', data: [0.1, 0.9] }), { kind: 'ndarray', puid: 'p' }, ['no', 'yes'])).toBe(
      '{"data":{"names":["no","yes"],"ndarray":[[0.1,0.9]]},"meta":{"puid":"p"}}',
    );
  });
  it('data written nested by the model is read against its shape', () => {
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [2, 1], datatype: 'INT64', data: [[1], [2]] }), nd, null)).toBe('{"data":{"names":["t:0"],"ndarray":[[1],[2]]},"meta":{}}');
  });
  it('strData and binData in, strData and binData out', () => {
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1], datatype: 'BYTES', data: ['ok'] }), { kind: 'strData', puid: undefined }, null)).toBe('{"meta":{},"strData":"ok"}');
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1], datatype: 'BYTES', parameters: { content_type: 'base64' }, data: ['AAE='] }), { kind: 'binData', puid: undefined }, null)).toBe(
      '{"binData":"AAE=","meta":{}}',
    );
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1], datatype: 'BYTES', data: ['ok'] }), { kind: 'binData', puid: undefined }, null)).toBe('{"binData":"b2s=","meta":{}}');
  });
  it('several outputs become jsonData, each by its name', () => {
    const body = b(
      JSON.stringify({
        model_name: 'm',
        outputs: [
          { name: 'a', shape: [2], datatype: 'INT64', data: [1, 2] },
          { name: 'b', shape: [1, 1], datatype: 'BYTES', data: ['x'] },
        ],
      }),
    );
    expect(v2AnswerToSeldon(200, body, nd, null)).toBe('{"jsonData":{"a":[1,2],"b":[["x"]]},"meta":{}}');
  });
  it("a float output's whole numbers and negative zero are written as Python writes them (1.0, -0.0), never as integers", () => {
    expect(v2AnswerToSeldon(200, b('{"model_name":"m","outputs":[{"name":"o","shape":[3],"datatype":"FP32","data":[1,-0.0,2.5]}]}'), nd, null)).toBe(
      '{"data":{"names":[],"ndarray":[1.0,-0.0,2.5]},"meta":{}}',
    );
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [2], datatype: 'FP64', data: [3, 1e300] }), tensor, null)).toBe(
      '{"data":{"names":[],"tensor":{"shape":[2],"values":[3.0,1e+300]}},"meta":{}}',
    );
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [], datatype: 'FP16', data: [2] }), nd, null)).toBe('{"data":{"names":[],"ndarray":2.0},"meta":{}}');
    expect(v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [2], datatype: 'INT32', data: [1, 2] }), nd, null)).toBe('{"data":{"names":[],"ndarray":[1,2]},"meta":{}}');
  });
  it('INT64 beyond 2^53 comes back exactly', () => {
    expect(v2AnswerToSeldon(200, b('{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"INT64","data":[9007199254740993]}]}'), nd, null)).toBe(
      '{"data":{"names":[],"ndarray":[9007199254740993]},"meta":{}}',
    );
  });
  it('a v2 error {"error": m} with status s is a Seldon-style error with status s', () => {
    expect(v2AnswerToSeldon(422, b('{"error":"bad input"}'), nd, null)).toBe('{"status":{"code":422,"info":"bad input","status":"FAILURE"}}');
    expect(v2AnswerToSeldon(500, b('oops'), nd, null)).toBe('{"status":{"code":500,"info":"oops","status":"FAILURE"}}');
  });
  it('an answer that cannot be translated is a 502, never passed on changed', () => {
    expect(refusal(() => v2AnswerToSeldon(200, b('{"outputs":[]}'), nd, null)).status).toBe(502);
    expect(refusal(() => v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [3], datatype: 'INT64', data: [1, 2] }), nd, null)).message).toMatch(/2 elements where its shape \[3\] holds 3/);
    expect(refusal(() => v2AnswerToSeldon(200, v2Out({ name: 'o', shape: [1], datatype: 'UINT8', data: [300] }), nd, null)).status).toBe(502);
    expect(refusal(() => v2AnswerToSeldon(200, b('nope'), nd, null)).status).toBe(502);
  });
});

describe('v2 request → Seldon request, and the Seldon answer → v2 answer (golden)', () => {
  it('numbers go as a tensor of the same shape, with the id as puid', () => {
    const r = v2RequestToSeldon(b('{"id":"r1","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[0.5,1]}]}'), 'm');
    expect(r.body).toBe('{"data":{"names":[],"tensor":{"shape":[1,2],"values":[0.5,1.0]}},"meta":{"puid":"r1"}}');
    expect(r.form).toEqual({ modelName: 'm', modelVersion: undefined, id: 'r1', input: { datatype: 'FP32', shape: [1, 2] } });
  });
  it('a float input keeps its whole numbers floats (1.0) and its negative zero; an integer input stays integers', () => {
    expect(v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1.0,-0.0,2]}]}'), 'm').body).toBe(
      '{"data":{"names":[],"tensor":{"shape":[3],"values":[1.0,-0.0,2.0]}},"meta":{}}',
    );
    expect(v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[1,-0]}]}'), 'm').body).toBe('{"data":{"names":[],"tensor":{"shape":[2],"values":[1,-0]}},"meta":{}}');
  });
  it('a negative zero reaches a v2 model with its sign', () => {
    expect(toV2('{"data":{"ndarray":[-0.0,0.5]}}').body).toBe('{"inputs":[{"name":"input-0","shape":[2],"datatype":"FP64","data":[-0,0.5]}]}');
  });
  it('a base64 element that is not base64 is refused (the Seldon model would get other bytes)', () => {
    expect(refusal(() => v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["AA="]}]}'), 'm')).message).toMatch(/not base64/);
  });
  it('booleans and strings as an ndarray; one str or base64 string as strData or binData', () => {
    expect(v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[2,1],"datatype":"BOOL","data":[true,false]}]}'), 'm').body).toBe('{"data":{"names":[],"ndarray":[[true],[false]]},"meta":{}}');
    expect(v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"content_type":"str"},"data":["hi"]}]}'), 'm').body).toBe('{"strData":"hi","meta":{}}');
    expect(v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["AA=="]}]}'), 'm').body).toBe('{"binData":"AA==","meta":{}}');
  });
  it('INT64 beyond 2^53 goes exactly both ways', () => {
    expect(v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[9007199254740993]}]}'), 'm').body).toContain('"values":[9007199254740993]');
    const form = { modelName: 'm', modelVersion: undefined, id: undefined };
    expect(seldonAnswerToV2(200, b('{"data":{"names":[],"tensor":{"shape":[1],"values":[9007199254740993]}},"meta":{}}'), form)).toBe(
      '{"model_name":"m","outputs":[{"name":"output-0","shape":[1],"datatype":"INT64","data":[9007199254740993]}]}',
    );
  });
  it('the answer: model_name, version, id, the output with its shape and datatype', () => {
    const form = { modelName: 'm', modelVersion: '2', id: 'r1' };
    expect(seldonAnswerToV2(200, b('{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]},"meta":{}}'), form)).toBe(
      '{"model_name":"m","model_version":"2","id":"r1","outputs":[{"name":"output-0","shape":[1,2],"datatype":"FP64","data":[0.1,0.9]}]}',
    );
    expect(seldonAnswerToV2(200, b('{"strData":"s"}'), form)).toBe(
      '{"model_name":"m","model_version":"2","id":"r1","outputs":[{"name":"output-0","shape":[1],"datatype":"BYTES","parameters":{"content_type":"str"},"data":["s"]}]}',
    );
    expect(seldonAnswerToV2(500, b('{"status":{"code":-1,"info":"boom","status":"FAILURE"}}'), form)).toBe('{"error":"boom"}');
  });
  it("an answer of the request's shape keeps the request's datatype when every value is one of it; else its values' datatype, nothing refused or rounded", () => {
    const of = (datatype: 'FP32' | 'INT32' | 'UINT8' | 'BOOL', shape: number[]) => ({ modelName: 'm', modelVersion: undefined, id: undefined, input: { datatype, shape } });
    const answer = (values: string, shape = '[1,2]') => b(`{"data":{"names":[],"tensor":{"shape":${shape},"values":${values}}},"meta":{}}`);
    const out = (dt: string, data: string, shape = '[1,2]') => `{"model_name":"m","outputs":[{"name":"output-0","shape":${shape},"datatype":"${dt}","data":${data}}]}`;
    // FP32 in, the wrapper's float64 answer (whole numbers written 2.0): FP32 out, the values' text as the model wrote it.
    expect(seldonAnswerToV2(200, answer('[5.1,2.0]'), of('FP32', [1, 2]))).toBe(out('FP32', '[5.1,2.0]'));
    // A float's negative zero keeps its sign for a Python client (its json reads `-0` as the integer 0).
    expect(seldonAnswerToV2(200, answer('[-0.0,2.0]'), of('FP32', [1, 2]))).toBe(out('FP32', '[-0.0,2.0]'));
    // Integers in, whole numbers out (written either way): the request's integer type.
    expect(seldonAnswerToV2(200, answer('[7,-3]'), of('INT32', [1, 2]))).toBe(out('INT32', '[7,-3]'));
    expect(seldonAnswerToV2(200, answer('[7.0,3.0]'), of('UINT8', [1, 2]))).toBe(out('UINT8', '[7,3]'));
    // A value the request's datatype cannot hold: the answer keeps its values' datatype (never rounded, never refused).
    expect(seldonAnswerToV2(200, answer('[0.5,3]'), of('INT32', [1, 2]))).toBe(out('FP64', '[0.5,3.0]'));
    expect(seldonAnswerToV2(200, answer('[300,1]'), of('UINT8', [1, 2]))).toBe(out('INT64', '[300,1]'));
    expect(seldonAnswerToV2(200, answer('[1e39,1.0]'), of('FP32', [1, 2]))).toBe(out('FP64', '[1e+39,1.0]'));
    // Another shape (class probabilities of a batch): its values' datatype, as MLServer's NumpyCodec gives float64.
    expect(seldonAnswerToV2(200, answer('[0.25,0.75,0.5]', '[1,3]'), of('FP32', [1, 2]))).toBe(out('FP64', '[0.25,0.75,0.5]', '[1,3]'));
    // Booleans in: no numeric datatype to keep.
    expect(seldonAnswerToV2(200, answer('[1,0]'), of('BOOL', [1, 2]))).toBe(out('INT64', '[1,0]'));
  });
  it("a Seldon answer's numbers are checked as a v2 client's are: never written null or beyond their datatype (502)", () => {
    const form = { modelName: 'm', modelVersion: undefined, id: undefined };
    const overflow = refusal(() => seldonAnswerToV2(200, b('{"data":{"names":[],"ndarray":[1e400]},"meta":{}}'), form));
    expect(overflow.status).toBe(502);
    expect(overflow.message).toMatch(/element 0 is Infinity, out of range for FP64/);
    const inexact = refusal(() => seldonAnswerToV2(200, b('{"data":{"tensor":{"shape":[2],"values":[0.5,9007199254740993]}}}'), form));
    expect(inexact.status).toBe(502);
    expect(inexact.message).toMatch(/FP64 cannot hold exactly/);
  });
  it('refusals', () => {
    const cases: [string, RegExp][] = [
      ['{"inputs":[]}', /exactly one/],
      ['{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1]}]}', /1 elements where its shape \[2\] holds 2/],
      ['{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[200]}]}', /out of range for INT8/],
      ['{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[0.5]}]}', /not a whole number/],
      ['{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[0.5]}]}', /v2 datatype/],
      ['{"inputs":[{"name":"x","shape":[1],"datatype":12345678901234567890,"data":[0.5]}]}', /v2 datatype, not "12345678901234567890"/],
      ['{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[[1,2],[3]]}]}', /ragged/],
      ['{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[[1,2,3,4]]}]}', /nested as \[1,4\]/],
      ['{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1,[2]]}]}', /ragged/],
      // An empty tensor of a huge shape: a few bytes that would nest into a billion empty lists.
      ['{"inputs":[{"name":"x","shape":[1000000000,0],"datatype":"BOOL","data":[]}]}', /would be written as more than 4096 nested lists/],
      ['{"inputs":[{"name":"x","shape":[4294967296,0],"datatype":"BYTES","data":[]}]}', /would be written as more than 4096 nested lists/],
    ];
    for (const [body, info] of cases) {
      const r = refusal(() => v2RequestToSeldon(b(body), 'm'));
      expect(r.status).toBe(400);
      expect(r.message).toMatch(info);
    }
  });
});

describe('exact JSON', () => {
  it('parses whole numbers beyond 2^53 as bigints only; says whether a float was written', () => {
    expect(parseExact(b('[9007199254740993, 1, 0.125]'))).toEqual({ value: [9007199254740993n, 1, 0.125], floats: true });
    expect(parseExact(b('{"e":[1,2],"s":"1.5e3","t":true}'))).toEqual({ value: { e: [1, 2], s: '1.5e3', t: true }, floats: false });
    expect(parseExact(b('[1e2]')).floats).toBe(true);
    expect(parseExact(b('["\\"", 12345678901234567890]')).value).toEqual(['"', 12345678901234567890n]);
  });
});

describe('round trips (seeded)', () => {
  const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  const shapes = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 });
  it('random arrays survive Seldon → v2 → Seldon unchanged (ndarray and tensor)', () => {
    fc.assert(
      fc.property(
        shapes,
        fc.constantFrom('int', 'float', 'bool', 'string', 'int64'),
        fc.boolean(),
        fc.infiniteStream(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }))),
        fc.infiniteStream(int64),
        fc.infiniteStream(fc.string()),
        (shape, kind, asTensor, doubles, bigs, strings) => {
          const n = shape.reduce((a, x) => a * x, 1);
          const d = doubles[Symbol.iterator]();
          const bi = bigs[Symbol.iterator]();
          const st = strings[Symbol.iterator]();
          const values: unknown[] = [];
          for (let i = 0; i < n; i++) {
            if (kind === 'int') values.push(Math.trunc(d.next().value as number) % 1_000_000);
            else if (kind === 'float') values.push((d.next().value as number) + 0.5);
            else if (kind === 'bool') values.push(i % 3 === 0);
            else if (kind === 'string') values.push(st.next().value);
            else values.push(bi.next().value);
          }
          if (kind === 'float' && values.every((v) => Number.isInteger(v))) return; // all whole: an INT64 round trip, covered by 'int'
          const text = (v: unknown): string => (typeof v === 'bigint' ? v.toString() : Object.is(v, -0) ? '0' : JSON.stringify(v));
          const nested = (at: number, dim: number): string =>
            dim === shape.length ? text(values[at]) : `[${Array.from({ length: shape[dim]! }, (_, i) => nested(at * shape[dim]! + i, dim + 1)).join(',')}]`;
          const tensor = asTensor && (kind === 'int' || kind === 'float' || kind === 'int64');
          const req = tensor ? `{"data":{"tensor":{"shape":${JSON.stringify(shape)},"values":[${values.map(text).join(',')}]}}}` : `{"data":{"ndarray":${nested(0, 0)}}}`;
          const { body, form } = toV2(req);
          const sent = JSON.parse(body) as { inputs: [{ shape: number[]; datatype: string; data: unknown[] }] };
          const input = readV2Tensor((parseExact(b(body)).value as { inputs: unknown[] }).inputs[0], 'i');
          // A model that answers with its input.
          const answer = `{"model_name":"m","outputs":[{"name":"o","shape":${JSON.stringify(input.shape)},"datatype":"${sent.inputs[0].datatype}","data":[${input.values.map(text).join(',')}]}]}`;
          const back = parseExact(b(v2AnswerToSeldon(200, b(answer), form, null))).value as { data: Record<string, unknown> };
          const original = parseExact(b(req)).value as { data: Record<string, unknown> };
          const numeric = kind !== 'bool' && kind !== 'string';
          if (tensor && numeric) expect(back.data.tensor).toEqual(original.data.tensor);
          else if (tensor) expect(back.data.ndarray).toBeDefined();
          else expect(back.data.ndarray).toEqual(original.data.ndarray);
        },
      ),
      { seed: 20261127, numRuns: 300 },
    );
  });
});
