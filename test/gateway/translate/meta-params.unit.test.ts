/**
 * A SeldonMessage's `meta` ⇄ the Open Inference Protocol's `parameters` (translate/meta-params.ts), each
 * direction, REST text and gRPC messages (through the real @grpc/proto-loader codecs): the attacker's
 * inputs first (a tag named as a v2 server's own parameter, `__proto__` and `constructor` keys, nesting
 * bombs, NUL and astral text, long integers), then the mapping: tags carried key by key, values exact;
 * what has no place on the other side refused with its status, never dropped.
 */
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { GrpcTranslation } from '../../../gateway/grpc/grpc-translation.js';
import { lengthPrefixed } from '../../../gateway/wire/grpc-message.js';
import type { TranslatePolicy } from '../../../routing/policies/protocol.js';
import { ProtoWriter, varintBytes } from '../../../gateway/wire/protobuf.js';
import { refusal, seldonAnswerToV2, seldonRequestToV2, v2AnswerToSeldon, v2RequestToSeldon } from '../../helpers/translate-text.js';

const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const predict = (defs['seldon.protos.Seldon'] as unknown as Record<string, Method>).Predict!;
const infer = (defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>).ModelInfer!;

const b = (s: string): Buffer => Buffer.from(s);
const ANY = { name: 'input-0', datatype: null };
const toV2 = (s: string): string => seldonRequestToV2(b(s), ANY).body;
const ND = '"data":{"ndarray":[1]}';
const V2IN = '"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]';
const v2Answer = (params: string): Buffer => b(`{"model_name":"m",${params}"outputs":[{"name":"o","shape":[1],"datatype":"INT64","data":[2]}]}`);
const formOf = (meta: string) => seldonRequestToV2(b(`{"meta":${meta},${ND}}`), ANY).form;

describe('the attacker: a Seldon client’s meta', () => {
  it('refuses a tag a v2 server would read as its own parameter (content_type, headers), nothing written', () => {
    const ct = refusal(() => toV2(`{"meta":{"tags":{"content_type":"pd"}},${ND}}`));
    expect([ct.status, ct.message]).toEqual([400, 'meta.tags["content_type"] would be read by the v2 server as its own parameter content_type: rename the tag']);
    expect(refusal(() => toV2(`{"meta":{"tags":{"headers":{"x":"1"}}},${ND}}`)).message).toMatch(/parameter headers/);
  });

  it('carries __proto__ and constructor as keys like any other, and pollutes no prototype', () => {
    const out = toV2(`{"meta":{"tags":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}},${ND}}`);
    expect(out).toBe('{"parameters":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}},"inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[1]}]}');
    const back = v2AnswerToSeldon(200, v2Answer('"parameters":{"__proto__":{"a":1}},'), formOf('{"tags":{"constructor":1}}'), null);
    expect(back).toBe('{"data":{"names":[],"ndarray":[2]},"meta":{"tags":{"__proto__":{"a":1},"constructor":1}}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });

  it('refuses a tag nested 10,000 deep with 400, never a stack overflow', () => {
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const r = refusal(() => toV2(`{"meta":{"tags":{"t":${deep}}},${ND}}`));
    // Found before the walk that reads its numbers as written (a reviver recurses on the stack).
    expect([r.status, r.message]).toEqual([400, 'meta is nested too deeply to be written back']);
    // 65 levels: read exactly, then refused by the tag's own bound.
    const d65 = `${'['.repeat(65)}1${']'.repeat(65)}`;
    expect(refusal(() => toV2(`{"meta":{"tags":{"t":${d65}}},${ND}}`)).message).toBe('meta.tags["t"] nests lists and objects deeper than 64 levels');
    const list = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    expect(refusal(() => v2RequestToSeldon(b(`{"parameters":{"l":${list}},${V2IN}}`), 'm')).status).toBe(400);
    expect(refusal(() => v2AnswerToSeldon(200, v2Answer(`"parameters":{"l":${list}},`), formOf('{}'), null)).status).toBe(502);
    expect(refusal(() => seldonAnswerToV2(200, b(`{"meta":{"tags":{"t":${deep}}},${ND}}`), v2RequestToSeldon(b(`{${V2IN}}`), 'm').form)).status).toBe(502);
  });

  it('keeps NUL, escapes and astral text exactly', () => {
    const s = 'a\u0000b"\\\n\u2028😀';
    const out = JSON.parse(toV2(JSON.stringify({ meta: { tags: { [s]: s } }, data: { ndarray: [1] } }))) as { parameters: Record<string, string> };
    expect(out.parameters).toEqual({ [s]: s });
  });

  it('keeps an integer beyond 2^53 as its digits, never through a JavaScript number', () => {
    expect(toV2(`{"meta":{"tags":{"n":9007199254740993,"m":-18446744073709551617}},${ND}}`)).toBe(
      '{"parameters":{"n":9007199254740993,"m":-18446744073709551617},"inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[1]}]}',
    );
    expect(v2RequestToSeldon(b(`{"parameters":{"n":9007199254740993},${V2IN}}`), 'm').body).toBe('{"data":{"names":[],"tensor":{"shape":[1],"values":[1]}},"meta":{"tags":{"n":9007199254740993}}}');
  });

  it('refuses a non-empty routing, requestPath or metrics (written into answers by Seldon; a v2 request has no field), and a field meta has not', () => {
    for (const [k, v] of [
      ['routing', '{"router":1}'],
      ['requestPath', '{"m":"image:1"}'],
      ['metrics', '[{"key":"c","type":"COUNTER","value":1}]'],
    ] as const) {
      const r = refusal(() => toV2(`{"meta":{"${k}":${v}},${ND}}`));
      expect([r.status, r.message]).toEqual([400, `meta.${k} is written by Seldon's executor into answers, and a v2 request has no field for it: send the request without it`]);
    }
    // Empty, they carry nothing (protobuf cannot tell them from absent).
    expect(toV2(`{"meta":{"puid":"p","routing":{},"requestPath":{},"metrics":[]},${ND}}`)).toBe('{"id":"p","inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[1]}]}');
    expect(refusal(() => toV2(`{"meta":{"extra":1},${ND}}`)).message).toBe("meta.extra is not a field of a SeldonMessage's meta");
    expect(refusal(() => toV2(`{"meta":[],${ND}}`)).message).toBe('meta must be an object');
    expect(refusal(() => toV2(`{"meta":{"tags":[1]},${ND}}`)).message).toBe('meta.tags must be an object');
  });
});

describe('the attacker: a v2 client’s parameters', () => {
  it('refuses an input’s parameter other than content_type (a SeldonMessage has no place for it)', () => {
    const r = refusal(() => v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","parameters":{"__proto__":1},"data":[1]}]}'), 'm'));
    expect([r.status, r.message]).toEqual([400, 'inputs[0].parameters["__proto__"] has no place in a SeldonMessage: a tensor\'s one parameter there is content_type']);
    expect(refusal(() => v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","parameters":{"content_type":1},"data":[1]}]}'), 'm')).message).toBe(
      'inputs[0].parameters.content_type must be a string',
    );
    expect(refusal(() => v2RequestToSeldon(b(`{"parameters":"x",${V2IN}}`), 'm')).message).toBe('parameters must be an object');
  });
});

describe('REST: the mapping', () => {
  it('a Seldon client’s tags reach a v2 model as its request parameters, and come back in the answer’s tags with the model’s, keys sorted', () => {
    const r = seldonRequestToV2(b(`{"meta":{"puid":"p1","tags":{"zeta":[1,{"b":2,"a":1}],"alpha":"x"}},${ND}}`), ANY);
    expect(r.body).toBe('{"id":"p1","parameters":{"zeta":[1,{"b":2,"a":1}],"alpha":"x"},"inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[1]}]}');
    // The model's parameters replace a request tag of their name; content_type is its codec's, not a tag.
    const out = v2AnswerToSeldon(200, v2Answer('"parameters":{"content_type":"np","alpha":"y","score":0.5},'), r.form, null);
    expect(out).toBe('{"data":{"names":[],"ndarray":[2]},"meta":{"puid":"p1","tags":{"alpha":"y","score":0.5,"zeta":[1,{"a":1,"b":2}]}}}');
    // headers (MLServer moves its own to the HTTP answer) is a model's parameter like any other here.
    expect(v2AnswerToSeldon(200, v2Answer('"parameters":{"headers":{"x":"1"}},'), formOf('{}'), null)).toBe('{"data":{"names":[],"ndarray":[2]},"meta":{"tags":{"headers":{"x":"1"}}}}');
  });

  it('sorts tags by code point, as Python does (not by UTF-16 unit)', () => {
    const out = v2AnswerToSeldon(200, v2Answer('"parameters":{"\uff01":1,"😀":2,"a":3},'), formOf('{}'), null);
    expect(out).toBe('{"data":{"names":[],"ndarray":[2]},"meta":{"tags":{"a":3,"\uff01":1,"😀":2}}}');
  });

  it('keeps each number as written, both ways (1.0 stays a float, 0.50 and 1e5 their text)', () => {
    // (A float written anywhere in the message makes its data FP64, as before: datatypes.ts.)
    expect(toV2(`{"meta":{"tags":{"f":1.0,"e":1e5,"n":9007199254740993}},${ND}}`)).toMatch(/^\{"parameters":\{"f":1\.0,"e":1e5,"n":9007199254740993\},"inputs"/);
    const r = v2RequestToSeldon(b(`{"parameters":{"f":1.0,"e":1e5,"s":"x"},${V2IN}}`), 'm');
    expect(r.body).toBe('{"data":{"names":[],"tensor":{"shape":[1],"values":[1]}},"meta":{"tags":{"f":1.0,"e":1e5,"s":"x"}}}');
    expect(seldonAnswerToV2(200, b(`{"meta":{"tags":{"p":0.50},"metrics":[{"key":"k","value":2.0}]},${ND}}`), r.form)).toContain('"parameters":{"p":0.50,"metrics":[{"key":"k","value":2.0}]}');
    expect(v2AnswerToSeldon(200, v2Answer('"parameters":{"p":2.0},'), formOf('{"tags":{"q":3.0}}'), null)).toBe('{"data":{"names":[],"ndarray":[2]},"meta":{"tags":{"p":2.0,"q":3.0}}}');
  });

  it('refuses a v2 model’s output parameter other than content_type with 502 (the answer has no place for it)', () => {
    const body = b('{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"INT64","parameters":{"precision":"high"},"data":[2]}]}');
    const r = refusal(() => v2AnswerToSeldon(200, body, formOf('{}'), null));
    expect([r.status, r.message]).toEqual([
      502,
      'the model\'s answer cannot be translated: outputs[0].parameters["precision"] has no place in a SeldonMessage: a tensor\'s one parameter there is content_type',
    ]);
  });

  it('a v2 client’s parameters reach a Seldon model as meta.tags (content_type is the request’s codec), and its answer’s meta comes back as parameters', () => {
    const r = v2RequestToSeldon(b(`{"id":"i","parameters":{"content_type":"np","user":"u1","n":3,"flag":true},${V2IN}}`), 'm');
    expect(r.body).toBe('{"data":{"names":[],"tensor":{"shape":[1],"values":[1]}},"meta":{"puid":"i","tags":{"user":"u1","n":3,"flag":true}}}');
    const answer = b(
      '{"data":{"names":[],"ndarray":[2]},"meta":{"puid":"i","tags":{"user":"u1","model":"m"},"requestPath":{"classifier":"img:1"},"routing":{"router":0},"metrics":[{"key":"c","type":"COUNTER","value":1}]}}',
    );
    expect(seldonAnswerToV2(200, answer, r.form)).toBe(
      '{"model_name":"m","id":"i","parameters":{"user":"u1","model":"m","requestPath":{"classifier":"img:1"},"routing":{"router":0},"metrics":[{"key":"c","type":"COUNTER","value":1}]},"outputs":[{"name":"output-0","shape":[1],"datatype":"INT64","data":[2]}]}',
    );
  });

  it('refuses a Seldon answer’s tag a v2 client would read as the server’s, or one named as a field beside it (502)', () => {
    const form = v2RequestToSeldon(b(`{${V2IN}}`), 'm').form;
    const ct = refusal(() => seldonAnswerToV2(200, b(`{"meta":{"tags":{"content_type":"np"}},${ND}}`), form));
    expect([ct.status, ct.message]).toEqual([502, 'the model\'s answer meta.tags["content_type"] would be read by a v2 client as the server\'s parameter content_type']);
    const both = refusal(() => seldonAnswerToV2(200, b(`{"meta":{"tags":{"routing":"x"},"routing":{"r":1}},${ND}}`), form));
    expect(both.message).toBe("the model's answer has both meta.routing and a tag named routing: a v2 answer has one parameter of that name");
    // Alone, a tag named routing is a tag.
    expect(seldonAnswerToV2(200, b(`{"meta":{"tags":{"routing":"x"}},${ND}}`), form)).toContain('"parameters":{"routing":"x"}');
    expect(refusal(() => seldonAnswerToV2(200, b(`{"meta":{"other":1},${ND}}`), form)).status).toBe(502);
  });
});

const policy = (speaks: 'seldon' | 'v2'): TranslatePolicy => ({ speaks, accept: [speaks === 'v2' ? 'seldon' : 'v2'], modelName: 'm', modelVersion: null, datatype: null, names: null, text: '' });
const payload = (framed: Buffer): Buffer => framed.subarray(5);
const seldonToV2 = (): GrpcTranslation => new GrpcTranslation('seldon', 'v2', '/inference.GRPCInferenceService/ModelInfer', policy('v2'));
const v2ToSeldon = (): GrpcTranslation => new GrpcTranslation('v2', 'seldon', '/seldon.protos.Seldon/Predict', policy('seldon'));
const data = { ndarray: { values: [{ numberValue: 1 }] } };
const str = (s: string) => ({ stringValue: s });

describe('gRPC: the mapping', () => {
  it('a Seldon client’s tags become InferParameters (bool, int64, string), and the model’s parameters come back as tags', () => {
    const t = seldonToV2();
    const sent = t.request(
      lengthPrefixed(predict.requestSerialize({ meta: { puid: 'p', tags: { s: str('a\u0000😀'), b: { boolValue: true }, n: { numberValue: 3 }, big: { numberValue: 2 ** 60 } } }, data })),
    );
    const got = infer.requestDeserialize(payload(sent));
    expect(got.parameters).toEqual({ s: { string_param: 'a\u0000😀' }, b: { bool_param: true }, n: { int64_param: '3' }, big: { int64_param: '1152921504606846976' } });
    const answer = infer.responseSerialize({
      model_name: 'm',
      parameters: { content_type: { string_param: 'np' }, s: { string_param: 'b' }, n: { int64_param: '9007199254740992' } },
      outputs: [{ name: 'o', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['2'] } }],
    });
    const back = predict.responseDeserialize(payload(t.answer(lengthPrefixed(answer))));
    expect(back.meta).toEqual({ puid: 'p', tags: { s: str('b'), b: { boolValue: true }, n: { numberValue: 9007199254740992 }, big: { numberValue: 2 ** 60 } } });
  });

  it('refuses a tag an InferParameter cannot hold (a fraction, -0.0, null, a struct, a list), naming it: INVALID_ARGUMENT, nothing sent', () => {
    for (const [v, shown] of [
      [{ numberValue: 0.5 }, '0.5'],
      [{ numberValue: -0 }, '-0.0'],
      [{ nullValue: 'NULL_VALUE' }, 'null'],
      [{ structValue: { fields: { a: str('b') } } }, '{"a":"b"}'],
      [{ listValue: { values: [] } }, '[]'],
      [{ numberValue: 2 ** 63 }, '9223372036854776000'],
    ] as const) {
      const r = refusal(() => seldonToV2().request(lengthPrefixed(predict.requestSerialize({ meta: { tags: { t: v } }, data }))));
      expect([r.status, r.message]).toEqual([400, `meta.tags["t"] is ${shown}, which a gRPC InferParameter (a bool, an int64 or a string) cannot hold`]);
    }
  });

  it('refuses a Seldon gRPC client’s routing, requestPath or metrics, and a tag named content_type', () => {
    const refused = (meta: Msg): string => refusal(() => seldonToV2().request(lengthPrefixed(predict.requestSerialize({ meta, data })))).message;
    expect(refused({ routing: { r: 1 } })).toMatch(/^meta.routing is written by Seldon's executor into answers/);
    expect(refused({ requestPath: { m: 'i' } })).toMatch(/^meta.requestPath is written/);
    expect(refused({ metrics: [{ key: 'c', value: 1 }] })).toMatch(/^meta.metrics is written/);
    expect(refused({ tags: { content_type: str('np') } })).toMatch(/own parameter content_type/);
  });

  it('refuses a v2 model’s int64 parameter a double cannot hold (INTERNAL, never rounded)', () => {
    const t = seldonToV2();
    t.request(lengthPrefixed(predict.requestSerialize({ data })));
    const answer = infer.responseSerialize({
      model_name: 'm',
      parameters: { n: { int64_param: '9007199254740993' } },
      outputs: [{ name: 'o', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['2'] } }],
    });
    const r = refusal(() => t.answer(lengthPrefixed(answer)));
    expect([r.status, r.message]).toEqual([502, 'meta.tags["n"] is 9007199254740993, which a SeldonMessage (doubles) cannot hold exactly']);
  });

  it('a v2 client’s parameters reach a Seldon model as tags, and its answer’s meta comes back: tags as InferParameters, Seldon’s own fields as their JSON text', () => {
    const t = v2ToSeldon();
    const req = infer.requestSerialize({
      id: 'i',
      parameters: { content_type: { string_param: 'np' }, user: { string_param: 'u' }, n: { int64_param: '-5' }, f: { bool_param: false } },
      inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['1'] } }],
    });
    const sent = predict.requestDeserialize(payload(t.request(lengthPrefixed(req))));
    expect(sent.meta).toEqual({ puid: 'i', tags: { user: str('u'), n: { numberValue: -5 }, f: { boolValue: false } } });
    const answer = predict.responseSerialize({
      meta: {
        puid: 'i',
        tags: { user: str('u'), n: { numberValue: 7 } },
        requestPath: { classifier: 'img:1' },
        routing: { router: -1 },
        metrics: [{ key: 'c', type: 'GAUGE', value: 0.5, tags: { k: 'v' } }],
      },
      data: { tensor: { shape: [1], values: [2] } },
    });
    const back = infer.responseDeserialize(payload(t.answer(lengthPrefixed(answer))));
    expect(back.parameters).toEqual({
      user: { string_param: 'u' },
      n: { int64_param: '7' },
      requestPath: { string_param: '{"classifier":"img:1"}' },
      routing: { string_param: '{"router":-1}' },
      metrics: { string_param: '[{"key":"c","type":"GAUGE","value":0.5,"tags":{"k":"v"}}]' },
    });
  });

  it('refuses a Seldon answer’s tag an InferParameter cannot hold (INTERNAL), and an input parameter other than content_type (INVALID_ARGUMENT)', () => {
    const t = v2ToSeldon();
    t.request(lengthPrefixed(infer.requestSerialize({ inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['1'] } }] })));
    const answer = predict.responseSerialize({ meta: { tags: { score: { numberValue: 0.93 } } }, data: { tensor: { shape: [1], values: [2] } } });
    const r = refusal(() => t.answer(lengthPrefixed(answer)));
    expect([r.status, r.message]).toEqual([502, 'the model\'s answer meta.tags["score"] is 0.93, which a gRPC InferParameter (a bool, an int64 or a string) cannot hold']);
    const withParam = infer.requestSerialize({ inputs: [{ name: 'x', datatype: 'INT64', shape: ['1'], parameters: { precision: { int64_param: '2' } }, contents: { int64_contents: ['1'] } }] });
    expect(refusal(() => v2ToSeldon().request(lengthPrefixed(withParam))).message).toBe(
      'inputs[0].parameters["precision"] has no place in a SeldonMessage: a tensor\'s one parameter there is content_type',
    );
  });

  it('reads a tag’s struct nested 10,000 deep no deeper than 64 levels (INVALID_ARGUMENT)', () => {
    // Value { struct_value { fields { key: "a" value: … } } }, 10,000 times around a number, written from the inside out.
    const prefixes: Buffer[] = [];
    let size = 9;
    for (let i = 0; i < 10_000; i++) {
      const entry = Buffer.from([0x0a, 0x01, 0x61, 0x12, ...varintBytes(size)]);
      const struct = Buffer.from([0x0a, ...varintBytes(entry.length + size)]);
      const value = Buffer.from([0x2a, ...varintBytes(struct.length + entry.length + size)]);
      size += value.length + struct.length + entry.length;
      prefixes.push(Buffer.concat([value, struct, entry]));
    }
    const deep = Buffer.concat([...prefixes.reverse(), Buffer.from([0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f])]);
    const msg = new ProtoWriter().message(2, new ProtoWriter().message(2, new ProtoWriter().string(1, 't').bytes(2, deep))).finish();
    const r = refusal(() => seldonToV2().request(lengthPrefixed(msg)));
    expect([r.status, r.message]).toEqual([400, 'structs are nested deeper than 64 levels']);
  });
});
