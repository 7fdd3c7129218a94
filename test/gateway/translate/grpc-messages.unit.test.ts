/**
 * The protobuf side of the translation (translate/seldon-proto.ts, translate/v2-proto.ts) and the
 * gRPC translation (grpc/grpc-translation.ts), pure: fields read packed and unpacked, int32 and int64
 * two's complement, 64-bit integers exact, oneofs (last wins), malformed bytes, values a double
 * cannot hold, nesting bombs, and seeded round trips Seldon → v2 → Seldon and v2 → Seldon → v2
 * through the real @grpc/proto-loader codecs.
 */
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../fixtures/grpc-backend.js';
import { refusal } from '../../helpers/translate-text.js';
import { readSeldonMessage, writeSeldonMessage } from '../../../gateway/translate/seldon-proto.js';
import { readInferMessage } from '../../../gateway/translate/v2-proto.js';
import { GrpcTranslation } from '../../../gateway/grpc/grpc-translation.js';
import { lengthPrefixed } from '../../../gateway/wire/grpc-message.js';
import { ProtoWriter } from '../../../gateway/wire/protobuf.js';
import type { TranslatePolicy } from '../../../routing/policies/protocol.js';

const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
type Msg = Record<string, unknown>;
type Method = protoLoader.MethodDefinition<Msg, Msg>;
const predict = (defs['seldon.protos.Seldon'] as unknown as Record<string, Method>).Predict!;
const infer = (defs['inference.GRPCInferenceService'] as unknown as Record<string, Method>).ModelInfer!;

const policy = (speaks: 'seldon' | 'v2'): TranslatePolicy => ({ speaks, accept: [speaks === 'v2' ? 'seldon' : 'v2'], modelName: 'm', modelVersion: null, datatype: null, names: null, text: '' });
const payload = (framed: Buffer): Buffer => framed.subarray(5);

describe('reading a SeldonMessage', () => {
  it('reads tensor fields unpacked as well as packed, and int32 shapes two’s complement', () => {
    const tensor = new ProtoWriter().varint(1, -1).varint(1, 2).double(2, 1.5).double(2, -0);
    const msg = new ProtoWriter().message(3, new ProtoWriter().message(2, tensor)).finish();
    expect(readSeldonMessage(msg, 400)).toEqual({ data: { names: [], tensor: { shape: [-1, 2], values: [1.5, -0] } } });
  });
  it('keeps the last member of a oneof, as protobuf does', () => {
    const msg = new ProtoWriter()
      .string(5, 'first')
      .bytes(4, Buffer.from([1, 2]))
      .finish();
    expect(readSeldonMessage(msg, 400)).toEqual({ binData: 'AQI=' });
  });
  it('refuses bytes that are not a message, and strings that are not UTF-8', () => {
    expect(refusal(() => readSeldonMessage(Buffer.from([0x2a, 0x05, 0x61]), 400)).message).toMatch(/not a well-formed protobuf message/);
    expect(refusal(() => readSeldonMessage(new ProtoWriter().bytes(5, Buffer.from([0xff])).finish(), 400)).message).toBe('strData is not UTF-8 text');
  });
});

describe('reading a ModelInfer message', () => {
  it('keeps INT64 and UINT64 exact at their limits, packed or not', () => {
    const contents = new ProtoWriter().packedVarints(3, [-9223372036854775808n, 9223372036854775807n]).varint(3, 9007199254740993n);
    const tensor = new ProtoWriter().string(1, 'x').string(2, 'INT64').varint(3, 3).message(5, contents);
    const r = readInferMessage(new ProtoWriter().message(5, tensor).finish(), false, 400);
    expect(r).toEqual({ inputs: [{ name: 'x', datatype: 'INT64', shape: [3], parameters: {}, data: [-9223372036854775808n, 9223372036854775807n, 9007199254740993n] }] });
    const u = new ProtoWriter()
      .string(1, 'x')
      .string(2, 'UINT64')
      .varint(3, 1)
      .message(5, new ProtoWriter().packedVarints(5, [18446744073709551615n]));
    expect((readInferMessage(new ProtoWriter().message(5, u).finish(), false, 400).inputs as Msg[])[0]!.data).toEqual([18446744073709551615n]);
  });
  it('reads negative INT32 (ten-byte varints)', () => {
    const t = new ProtoWriter()
      .string(1, 'x')
      .string(2, 'INT32')
      .varint(3, 2)
      .message(5, new ProtoWriter().packedVarints(2, [-1, -2147483648]));
    expect((readInferMessage(new ProtoWriter().message(5, t).finish(), false, 400).inputs as Msg[])[0]!.data).toEqual([-1, -2147483648]);
  });
  it('refuses raw contents that do not pair with the tensors, or sit beside typed ones', () => {
    const t = new ProtoWriter().string(1, 'x').string(2, 'FP32').varint(3, 1);
    expect(refusal(() => readInferMessage(new ProtoWriter().message(5, t).bytes(7, Buffer.alloc(4)).bytes(7, Buffer.alloc(4)).finish(), false, 400)).message).toMatch(/2 raw contents for 1 inputs/);
    const typed = new ProtoWriter()
      .string(1, 'x')
      .string(2, 'FP32')
      .varint(3, 1)
      .message(5, new ProtoWriter().packedFloats(6, [1], 4));
    expect(refusal(() => readInferMessage(new ProtoWriter().message(5, typed).bytes(7, Buffer.alloc(4)).finish(), false, 400)).message).toMatch(/both contents and raw contents/);
  });
});

describe('writing a SeldonMessage', () => {
  it('refuses a whole number a double cannot hold, with the status of its side', () => {
    const m = { kind: 'tensor', puid: undefined, shape: [1], values: [9007199254740993n], float: false } as const;
    const r = refusal(() => writeSeldonMessage(m, 502));
    expect(r.status).toBe(502);
    expect(r.message).toMatch(/9007199254740993, which a SeldonMessage \(doubles\) cannot hold exactly/);
    expect(predict.requestDeserialize(writeSeldonMessage({ ...m, values: [9007199254740992n] }, 502))).toEqual({ meta: {}, data: { tensor: { shape: [1], values: [9007199254740992] } } });
  });
  it('refuses an empty shape that would nest into a billion lists, and a rank-0 ndarray', () => {
    expect(refusal(() => writeSeldonMessage({ kind: 'ndarray', puid: undefined, names: [], shape: [1e9, 0], values: [], float: false }, 502)).message).toMatch(/more than 4096 nested lists/);
    expect(refusal(() => writeSeldonMessage({ kind: 'ndarray', puid: undefined, names: [], shape: [], values: [1], float: false }, 502)).message).toMatch(/rank-0/);
  });
});

describe('round trips (seeded)', () => {
  const shapes = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });
  const tensors = shapes.chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      values: fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) }),
    }),
  );

  it('a Seldon tensor → ModelInfer → its echo → the same tensor back', () => {
    fc.assert(
      fc.property(tensors, ({ shape, values }) => {
        const t = new GrpcTranslation('seldon', 'v2', '/inference.GRPCInferenceService/ModelInfer', policy('v2'));
        const sent = infer.requestDeserialize(payload(t.request(lengthPrefixed(predict.requestSerialize({ data: { tensor: { shape, values } } })))));
        const inputs = sent.inputs as Msg[];
        const echo = infer.responseSerialize({ model_name: 'm', outputs: [{ ...inputs[0], name: 'output-0' }] });
        const back = predict.responseDeserialize(payload(t.answer(lengthPrefixed(echo))));
        expect((back.data as Msg).tensor).toEqual({ shape, values });
      }),
      { seed: 75, numRuns: 200 },
    );
  });

  it('a v2 FP64 input → Predict → its echo → the same tensor back', () => {
    fc.assert(
      fc.property(tensors, ({ shape, values }) => {
        const t = new GrpcTranslation('v2', 'seldon', '/seldon.protos.Seldon/Predict', policy('seldon'));
        const req = { model_name: 'm', inputs: [{ name: 'x', datatype: 'FP64', shape: shape.map(String), contents: { fp64_contents: values } }] };
        const sent = predict.requestDeserialize(payload(t.request(lengthPrefixed(infer.requestSerialize(req)))));
        const back = infer.responseDeserialize(payload(t.answer(lengthPrefixed(predict.responseSerialize(sent)))));
        expect(back).toEqual({ model_name: 'm', outputs: [{ name: 'output-0', datatype: 'FP64', shape: shape.map(String), contents: { fp64_contents: values } }] });
      }),
      { seed: 75, numRuns: 200 },
    );
  });
});
