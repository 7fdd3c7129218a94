/**
 * Whole numbers beyond 2^53 anywhere in a message, every direction of the translation, REST and gRPC:
 * the JSON reader makes them bigints (translate/json-exact.ts, gRPC's int64 fields too), and
 * `JSON.stringify` throws a TypeError on a bigint. So no position may reach it: each message is
 * translated (its digits kept exactly) or refused with a TranslateRefusal, never a TypeError (which
 * would be a 500 and a crash of the request's handling).
 */
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { GrpcTranslation } from '../../../gateway/grpc/grpc-translation.js';
import { TranslateRefusal } from '../../../gateway/translate/datatypes.js';
import type { SeldonForm } from '../../../gateway/translate/seldon-client.js';
import type { V2Form } from '../../../gateway/translate/v2-client.js';
import { seldonAnswerToV2, seldonRequestToV2, v2AnswerToSeldon, v2RequestToSeldon } from '../../helpers/translate-text.js';
import type { TranslatePolicy } from '../../../routing/policies/protocol.js';

const BIG = '9007199254740993';
const b = (s: string): Buffer => Buffer.from(s);

/** `f`'s result, or the refusal it threw; anything else (a TypeError) fails the test. */
function translatedOrRefused(f: () => string | Buffer): string {
  try {
    const out = f();
    return typeof out === 'string' ? out : out.toString('latin1');
  } catch (err) {
    if (err instanceof TranslateRefusal) return `refused: ${err.message}`;
    throw err;
  }
}

/** The form of a Seldon client's request: `ndarray` in (answered as ndarray), or `tensor` in (answered as tensor). */
const seldonForm = (kind: 'ndarray' | 'tensor' = 'ndarray'): SeldonForm =>
  seldonRequestToV2(b(kind === 'ndarray' ? '{"data":{"ndarray":[1]}}' : '{"data":{"tensor":{"shape":[1],"values":[1]}}}'), { name: 'input-0', datatype: null }).form;
const v2Form = (): V2Form => v2RequestToSeldon(b('{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]}'), 'm').form;

describe('REST: a whole number beyond 2^53 in any position never throws a TypeError', () => {
  it.each([
    `{"data":{"ndarray":[${BIG}]}}`,
    `{"data":{"tensor":{"shape":[1],"values":[${BIG}]}}}`,
    `{"data":{"tensor":{"shape":[${BIG}],"values":[1]}}}`,
    `{"data":{"names":[${BIG}],"ndarray":[1]}}`,
    `{"meta":{"puid":${BIG}},"data":{"ndarray":[1]}}`,
    `{"meta":{"tags":{"n":${BIG}}},"data":{"ndarray":[1]}}`,
    `{"jsonData":{"n":${BIG}}}`,
    `{"jsonData":${BIG}}`,
    `{"strData":${BIG}}`,
    `{"binData":${BIG}}`,
    `{"data":{"ndarray":[[${BIG}],[1.5]]}}`,
  ])('a Seldon client → v2: %s', (body) => {
    translatedOrRefused(() => seldonRequestToV2(b(body), { name: 'input-0', datatype: null }).body);
    translatedOrRefused(() => seldonRequestToV2(b(body), { name: 'input-0', datatype: 'FP32' }).body);
  });

  it('a Seldon client → v2: the digits reach the model exactly', () => {
    expect(seldonRequestToV2(b(`{"data":{"ndarray":[${BIG}]}}`), { name: 'input-0', datatype: null }).body).toBe(`{"inputs":[{"name":"input-0","shape":[1],"datatype":"INT64","data":[${BIG}]}]}`);
  });

  it.each([
    `{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"INT64","data":[${BIG}]}]}`,
    `{"model_name":"m","outputs":[{"name":"o","shape":[${BIG}],"datatype":"INT64","data":[1]}]}`,
    `{"model_name":${BIG},"id":${BIG},"outputs":[{"name":"o","shape":[1],"datatype":"INT64","data":[1]}]}`,
    `{"model_name":"m","outputs":[{"name":${BIG},"shape":[1],"datatype":"INT64","data":[1]}]}`,
    `{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"INT64","parameters":{"n":${BIG}},"data":[1]}]}`,
    `{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"BYTES","parameters":{"content_type":${BIG}},"data":["a"]}]}`,
    `{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"INT64","data":[${BIG}]},{"name":"b","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}`,
    `{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"FP64","data":[${BIG}]}]}`,
  ])('a v2 model → a Seldon client: %s', (body) => {
    translatedOrRefused(() => v2AnswerToSeldon(200, b(body), seldonForm(), null));
    translatedOrRefused(() => v2AnswerToSeldon(200, b(body), seldonForm('tensor'), ['x']));
  });

  it('a v2 model → a Seldon client: several outputs become jsonData, the digits exact', () => {
    const body = `{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"INT64","data":[${BIG}]},{"name":"b","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}`;
    expect(v2AnswerToSeldon(200, b(body), seldonForm(), null)).toContain(`{"a":[${BIG}],"b":[18446744073709551615]}`);
  });

  it('a v2 model → a Seldon client: an error whose message is a number', () => {
    expect(v2AnswerToSeldon(500, b(`{"error":${BIG}}`), seldonForm(), null)).toBe(JSON.stringify({ status: { code: 500, info: `{"error":${BIG}}`, status: 'FAILURE' } }));
  });

  it.each([
    `{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[${BIG}]}]}`,
    `{"inputs":[{"name":"x","shape":[${BIG}],"datatype":"INT64","data":[1]}]}`,
    `{"id":${BIG},"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]}`,
    `{"inputs":[{"name":${BIG},"shape":[1],"datatype":"INT64","data":[1]}]}`,
    `{"inputs":[{"name":"x","shape":[1],"datatype":${BIG},"data":[1]}]}`,
    `{"parameters":{"n":${BIG}},"inputs":[{"name":"x","shape":[1],"datatype":"INT64","parameters":{"n":${BIG},"content_type":${BIG}},"data":[1]}]}`,
    `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"content_type":"str"},"data":[${BIG}]}]}`,
    `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[${BIG}]}]}`,
    `{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551616]}]}`,
  ])('a v2 client → a Seldon model: %s', (body) => {
    translatedOrRefused(() => v2RequestToSeldon(b(body), 'm').body);
  });

  it('a v2 client → a Seldon model: the digits reach the model exactly', () => {
    expect(v2RequestToSeldon(b(`{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[${BIG}]}]}`), 'm').body).toBe(`{"data":{"names":[],"tensor":{"shape":[1],"values":[${BIG}]}},"meta":{}}`);
  });

  it.each([
    `{"data":{"tensor":{"shape":[1],"values":[${BIG}]}}}`,
    `{"data":{"ndarray":[${BIG}]}}`,
    `{"data":{"tensor":{"shape":[${BIG}],"values":[1]}}}`,
    `{"data":{"names":[${BIG}],"ndarray":[1]}}`,
    `{"meta":{"puid":${BIG},"tags":{"n":${BIG}}},"data":{"ndarray":[1]}}`,
    `{"jsonData":{"n":${BIG}}}`,
    `{"jsonData":[${BIG},{"m":-${BIG}}]}`,
    `{"strData":${BIG}}`,
    `{"binData":${BIG}}`,
  ])('a Seldon model → a v2 client: %s', (body) => {
    translatedOrRefused(() => seldonAnswerToV2(200, b(body), v2Form()));
  });

  it('a Seldon model → a v2 client: jsonData keeps its long integers as digits, numbers still (never strings)', () => {
    const out = JSON.parse(seldonAnswerToV2(200, b(`{"jsonData":{"n":${BIG},"l":[-${BIG},1.5,"s"]}}`), v2Form())) as { outputs: { data: string[]; parameters: unknown; datatype: string }[] };
    expect(out.outputs[0]).toMatchObject({ datatype: 'BYTES', parameters: { content_type: 'json' } });
    expect(out.outputs[0]!.data).toEqual([`{"n":${BIG},"l":[-${BIG},1.5,"s"]}`]);
  });

  it('a Seldon model → a v2 client: an error whose info is a number', () => {
    expect(seldonAnswerToV2(500, b(`{"status":{"code":500,"info":${BIG}}}`), v2Form())).toBe(JSON.stringify({ error: `{"status":{"code":500,"info":${BIG}}}` }));
  });
});

// gRPC: int64 fields (shape, INT64 and UINT64 contents, int64 parameters) are read as bigints.
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const seldonSvc = defs['seldon.protos.Seldon'] as unknown as Record<string, Method>;
const v2Svc = defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>;
const framed = (m: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(m.length, 1);
  return Buffer.concat([head, m]);
};
const policy = (speaks: 'v2' | 'seldon'): TranslatePolicy => ({ speaks, accept: speaks === 'v2' ? ['seldon'] : ['v2'], modelName: 'm', modelVersion: null, datatype: null, names: null, text: '' });

describe('gRPC: a whole number beyond 2^53 (int64 fields) in any position never throws a TypeError', () => {
  const tensor = (o: Msg): Msg => ({ name: 'x', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['1'] }, ...o });
  const v2Messages: Msg[] = [
    { inputs: [tensor({ contents: { int64_contents: [BIG] } })] },
    { inputs: [tensor({ datatype: 'UINT64', contents: { uint64_contents: ['18446744073709551615'] } })] },
    { inputs: [tensor({ shape: [BIG] })] },
    { id: 'x', parameters: { n: { int64_param: BIG } }, inputs: [tensor({ parameters: { n: { int64_param: BIG }, content_type: { int64_param: BIG } } })] },
    { inputs: [tensor({ datatype: 'FP64', contents: { fp64_contents: [2 ** 60] } })] },
  ];

  it.each(v2Messages.map((m) => [JSON.stringify(m), m] as const))('a v2 client → a Seldon model: %s', (_name, m) => {
    const t = new GrpcTranslation('v2', 'seldon', '/seldon.protos.Seldon/Predict', policy('seldon'));
    translatedOrRefused(() => t.request(framed(v2Svc.ModelInfer!.requestSerialize(m))));
  });

  it.each(v2Messages.map((m) => [JSON.stringify(m), m] as const))('a v2 model → a Seldon client: %s', (_name, m) => {
    const t = new GrpcTranslation('seldon', 'v2', '/inference.GRPCInferenceService/ModelInfer', policy('v2'));
    t.request(framed(seldonSvc.Predict!.requestSerialize({ data: { tensor: { shape: [1], values: [1] } } })));
    const answer = { model_name: 'm', outputs: (m.inputs as Msg[]).map((i) => ({ ...i, name: 'o' })), parameters: m.parameters };
    translatedOrRefused(() => t.answer(framed(v2Svc.ModelInfer!.responseSerialize(answer))));
    const several = { model_name: 'm', outputs: [...(answer.outputs as Msg[]), tensor({ name: 'p' })] };
    translatedOrRefused(() => t.answer(framed(v2Svc.ModelInfer!.responseSerialize(several))));
  });

  it('a Seldon model → a v2 client: jsonData, tags and a tensor of doubles as large as 2^60', () => {
    const t = new GrpcTranslation('v2', 'seldon', '/seldon.protos.Seldon/Predict', policy('seldon'));
    t.request(framed(v2Svc.ModelInfer!.requestSerialize({ inputs: [tensor({})] })));
    for (const answer of [{ jsonData: { fields: { n: { numberValue: 2 ** 60 } } } }, { meta: { tags: { n: { numberValue: 2 ** 60 } } }, data: { tensor: { shape: [1], values: [2 ** 60] } } }])
      translatedOrRefused(() => t.answer(framed(seldonSvc.Predict!.responseSerialize(answer))));
  });
});
