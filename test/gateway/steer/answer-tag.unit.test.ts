/**
 * The attribution token in answers and back from feedback (docs/bandits.md#what-attribution-needs-from-clients):
 * spliced into JSON answers byte for byte, appended to gRPC SeldonMessages as a `meta` fragment
 * that protobuf decoders merge, and read back from JSON and protobuf Feedback.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ARM_TAG, armTagFragment, DEFAULT_TAG_MAX_BYTES, tagGrpcFrame, tagGrpcMessage, tagJsonAnswer, tokenFromFeedbackJson, tokenFromFeedbackProto } from '../../../gateway/steer/answer-tag.js';
import { readTopObject } from '../../../gateway/steer/json-scan.js';
import { decodeSeldonMessage, encodeSeldonMessage, grpcFrame, loadSeldonProtos, toProtoValue, type Feedback, type SeldonMessage } from '../../fixtures/grpc-backend.js';

/** A length-delimited field spelled by hand (tag, varint length, bytes): the wire format, not the code under test. */
function delimited(field: number, b: Buffer): Buffer {
  const length: number[] = [];
  for (let n = b.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([field * 8 + 2, ...length]), b]);
}

const TOKEN = '1.canary.mjv5k2o0.AAECAwQFBgcICQoL.q2Jm0gB5Zl3r1Xr0b7zF7A';
const tag = (body: string, token = TOKEN): string | null => tagJsonAnswer(Buffer.from(body), token)?.toString('utf8') ?? null;

/** JSON.parse(text) with meta.tags[ARM_TAG] = token set the way the gateway promises. */
function expectedTagged(text: string, token = TOKEN): unknown {
  const v = JSON.parse(text) as { meta?: { tags?: Record<string, unknown> } };
  v.meta ??= {};
  v.meta.tags ??= {};
  v.meta.tags[ARM_TAG] = token;
  return v;
}

describe('tagJsonAnswer', () => {
  it.each([
    ['no meta', '{"data":{"ndarray":[[1,2]]}}', `{"data":{"ndarray":[[1,2]]},"meta":{"tags":{"${ARM_TAG}":"${TOKEN}"}}}`],
    ['an empty object', '{}', `{"meta":{"tags":{"${ARM_TAG}":"${TOKEN}"}}}`],
    ['meta without tags', '{"meta":{"puid":"p1"},"strData":"x"}', `{"meta":{"puid":"p1","tags":{"${ARM_TAG}":"${TOKEN}"}},"strData":"x"}`],
    ['empty tags', '{"meta":{"tags":{}}}', `{"meta":{"tags":{"${ARM_TAG}":"${TOKEN}"}}}`],
    ['other tags', '{"meta":{"tags":{"model":"m1"}}}', `{"meta":{"tags":{"model":"m1","${ARM_TAG}":"${TOKEN}"}}}`],
    ['a tag of that name already', `{"meta":{"tags":{"${ARM_TAG}":"old","b":1}}}`, `{"meta":{"tags":{"${ARM_TAG}":"${TOKEN}","b":1}}}`],
    ['spacing', '{ "meta" : { "tags" : { "a" : 1 } } , "x" : [ ] }\n', `{ "meta" : { "tags" : { "a" : 1 ,"${ARM_TAG}":"${TOKEN}"} } , "x" : [ ] }\n`],
    ['numbers past 2^53', '{"data":{"ndarray":[12345678901234567890123,1.0e+2,-0.0]}}', `{"data":{"ndarray":[12345678901234567890123,1.0e+2,-0.0]},"meta":{"tags":{"${ARM_TAG}":"${TOKEN}"}}}`],
    ['duplicate meta: the last one, as parsers keep', '{"meta":{"puid":"first"},"meta":{"puid":"second"}}', `{"meta":{"puid":"first"},"meta":{"puid":"second","tags":{"${ARM_TAG}":"${TOKEN}"}}}`],
    ['an escaped key', '{"m\\u0065ta":{"t\\u0061gs":{}}}', `{"m\\u0065ta":{"t\\u0061gs":{"${ARM_TAG}":"${TOKEN}"}}}`],
    ['"meta" nested elsewhere only', '{"data":{"meta":{}}}', `{"data":{"meta":{}},"meta":{"tags":{"${ARM_TAG}":"${TOKEN}"}}}`],
  ])('%s', (_name, body, out) => {
    expect(tag(body)).toBe(out);
    expect(JSON.parse(out)).toEqual(expectedTagged(body));
  });

  it.each([
    ['an array', '[{"meta":{}}]'],
    ['a string', '"x"'],
    ['invalid JSON', '{"a":}'],
    ['a truncated object', '{"meta":{"tags":{}}'],
    ['trailing data', '{} {}'],
    ['a byte order mark', '\ufeff{}'],
    ['meta null', '{"meta":null}'],
    ['tags that are a list', '{"meta":{"tags":[]}}'],
    ['empty', ''],
  ])('%s: null, the header alone', (_name, body) => {
    expect(tag(body)).toBeNull();
  });

  it('null over the size limit, tagged at it', () => {
    const body = `{"strData":"${'x'.repeat(DEFAULT_TAG_MAX_BYTES - 14)}"}`;
    expect(Buffer.byteLength(body)).toBe(DEFAULT_TAG_MAX_BYTES);
    expect(tagJsonAnswer(Buffer.from(body), TOKEN)).not.toBeNull();
    expect(tagJsonAnswer(Buffer.from(body + ' '), TOKEN)).toBeNull();
    expect(tagJsonAnswer(Buffer.from('{}'), TOKEN, 1)).toBeNull();
  });

  it('works on a Buffer that is a slice of a larger one', () => {
    const whole = Buffer.from('xx{"meta":{"tags":{}}}yy');
    expect(tagJsonAnswer(whole.subarray(2, whole.length - 2), TOKEN)?.toString()).toBe(`{"meta":{"tags":{"${ARM_TAG}":"${TOKEN}"}}}`);
  });

  it('any JSON object: the output parses to the input plus the tag, or null only for a meta or tags that is not an object', () => {
    const object = fc.dictionary(fc.string(), fc.jsonValue());
    const answer = fc.record(
      {
        body: object,
        meta: fc.oneof(object, fc.record({ tags: fc.oneof(object, fc.jsonValue()) }, { requiredKeys: [] }), fc.jsonValue()),
      },
      { requiredKeys: ['body'] },
    );
    fc.assert(
      fc.property(answer, fc.constantFrom(undefined, 1, '\t'), fc.stringMatching(/^[A-Za-z0-9._~-]{1,80}$/), ({ body, meta }, indent, token) => {
        const value: Record<string, unknown> = { ...body };
        if (meta !== undefined) value['meta'] = meta;
        const text = JSON.stringify(value, null, indent);
        const out = tagJsonAnswer(Buffer.from(text), token);
        const parsed = JSON.parse(text) as { meta?: unknown };
        const m = parsed.meta as { tags?: unknown } | undefined;
        const isObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
        if (out === null) {
          expect(m !== undefined && (!isObject(m) || (m.tags !== undefined && !isObject(m.tags)))).toBe(true);
        } else {
          expect(JSON.parse(out.toString('utf8'))).toEqual(expectedTagged(text, token));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('accepts exactly what JSON.parse accepts as an object, on mutated JSON text', () => {
    const noise = fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', '0', '-', '.', 'e', '+', 't', 'n', 'u', 'x', '\u0001', 'é');
    const mutated = fc.tuple(fc.dictionary(fc.string(), fc.jsonValue()), fc.array(fc.tuple(fc.nat(), fc.nat(3), noise), { maxLength: 4 })).map(([v, edits]) => {
      let s = JSON.stringify(v);
      for (const [at, op, c] of edits) {
        const i = s.length ? at % (s.length + 1) : 0;
        s = op === 0 ? s.slice(0, i) + s.slice(i + 1) : op === 1 ? s.slice(0, i) + c + s.slice(i + 1) : s.slice(0, i) + c + s.slice(i);
      }
      return s;
    });
    fc.assert(
      fc.property(mutated, (text) => {
        const bytes = Buffer.from(text);
        let parsed: unknown;
        try {
          parsed = JSON.parse(bytes.toString('utf8'));
        } catch {
          parsed = undefined;
        }
        const isObject = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
        expect(readTopObject(bytes) !== null).toBe(isObject);
      }),
      { numRuns: 3000 },
    );
  });

  it('deep nesting costs no call stack', () => {
    const deep = `{"data":${'['.repeat(50_000)}${']'.repeat(50_000)}}`;
    expect(JSON.parse(tagJsonAnswer(Buffer.from(deep), TOKEN, 1 << 20)!.toString()).meta.tags[ARM_TAG]).toBe(TOKEN);
    expect(tagJsonAnswer(Buffer.from(`{"data":${'['.repeat(50_000)}}`), TOKEN, 1 << 20)).toBeNull();
  });
});

describe('tagGrpcFrame', () => {
  const rich: SeldonMessage = {
    status: { code: 200, info: 'ok', reason: 'r', status: 'SUCCESS' },
    meta: {
      puid: 'p-1',
      tags: { model: { stringValue: 'm1' }, score: { numberValue: 0.5 } },
      routing: { router: 1 },
      requestPath: { clf: 'image:1' },
      metrics: [{ key: 'latency', type: 'TIMER', value: 1.5, tags: { a: 'b' } }],
    },
    data: { names: ['x', 'y'], tensor: { shape: [1, 2], values: [0.25, 1.5] } },
  };

  /** What `msg` with the tag set from the start decodes to: every field as before, plus the tag. */
  function withTag(msg: SeldonMessage): SeldonMessage {
    return decodeSeldonMessage(encodeSeldonMessage({ ...msg, meta: { ...msg.meta, tags: { ...msg.meta?.tags, [ARM_TAG]: { stringValue: TOKEN } } } }));
  }

  it('the fragment is SeldonMessage { meta { tags { key value { string_value } } } } on the wire', () => {
    const key = Buffer.from(ARM_TAG);
    expect(armTagFragment('T')).toEqual(Buffer.from([0x12, 30, 0x12, 28, 0x0a, key.length, ...key, 0x12, 3, 0x1a, 1, 0x54]));
  });

  it('every original field decodes intact, with the tag added to meta.tags', () => {
    const tagged = tagGrpcFrame(grpcFrame(encodeSeldonMessage(rich)), TOKEN)!;
    expect(tagged.readUInt32BE(1)).toBe(tagged.length - 5);
    expect(tagged[0]).toBe(0);
    expect(decodeSeldonMessage(tagged.subarray(5))).toEqual(withTag(rich));
  });

  it.each<[string, SeldonMessage]>([
    ['strData', { strData: 'hi' }],
    ['binData', { binData: Buffer.from([0, 1, 2, 255]) }],
    ['jsonData', { jsonData: toProtoValue({ a: [1, 'b', null, true] }) }],
    [
      'ndarray',
      {
        data: {
          ndarray: toProtoValue([
            [1, 2],
            [3, 4],
          ]).listValue!,
        },
      },
    ],
    ['empty', {}],
    ['a tag of that name already', { meta: { tags: { [ARM_TAG]: { stringValue: 'old' } } } }],
  ])('%s: intact, tagged', (_name, msg) => {
    const tagged = tagGrpcFrame(grpcFrame(encodeSeldonMessage(msg)), TOKEN)!;
    expect(decodeSeldonMessage(tagged.subarray(5))).toEqual(withTag(msg));
  });

  it('random SeldonMessages decode intact, tagged', () => {
    const str = fc.string({ maxLength: 12 });
    const value = fc.oneof(
      str.map((s) => ({ stringValue: s })),
      fc.double({ noNaN: true }).map((n) => ({ numberValue: n })),
      fc.boolean().map((b) => ({ boolValue: b })),
    );
    const message = fc.record(
      {
        meta: fc.record({ puid: str, tags: fc.dictionary(str, value), routing: fc.dictionary(str, fc.integer({ min: -5, max: 5 })), requestPath: fc.dictionary(str, str) }, { requiredKeys: [] }),
        strData: str,
        status: fc.record({ code: fc.integer({ min: 0, max: 600 }), info: str }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(message, (msg) => {
        const tagged = tagGrpcFrame(grpcFrame(encodeSeldonMessage(msg as SeldonMessage)), TOKEN)!;
        expect(decodeSeldonMessage(tagged.subarray(5))).toEqual(withTag(msg as SeldonMessage));
      }),
      { numRuns: 300 },
    );
  });

  it("the tag goes inside the answer's last meta: protobufjs keeps only the last occurrence of an embedded message", () => {
    const answer = encodeSeldonMessage(rich);
    // What appending a meta fragment alone would do to a @grpc/proto-loader client:
    expect(decodeSeldonMessage(Buffer.concat([answer, armTagFragment(TOKEN)])).meta?.puid).toBe('');
    const tagged = tagGrpcMessage(answer, TOKEN)!;
    expect(decodeSeldonMessage(tagged).meta?.puid).toBe('p-1');
  });

  it('with meta twice (a serializer that splits it), the last one gets the tag', () => {
    const first = encodeSeldonMessage({ meta: { puid: 'first' } });
    const second = encodeSeldonMessage({ meta: { puid: 'second' }, strData: 'x' });
    const decoded = decodeSeldonMessage(tagGrpcMessage(Buffer.concat([first, second]), TOKEN)!);
    expect(decoded.meta?.puid).toBe('second');
    expect(decoded.meta?.tags?.[ARM_TAG]?.stringValue).toBe(TOKEN);
  });

  it('null for a compressed frame, a length that is not the frame, or bytes that are not a message', () => {
    const frame = grpcFrame(encodeSeldonMessage({ strData: 'hi' }));
    expect(tagGrpcFrame(Buffer.concat([Buffer.from([1]), frame.subarray(1)]), TOKEN)).toBeNull();
    expect(tagGrpcFrame(frame.subarray(0, frame.length - 1), TOKEN)).toBeNull();
    expect(tagGrpcFrame(Buffer.concat([frame, Buffer.from([0])]), TOKEN)).toBeNull();
    expect(tagGrpcFrame(Buffer.from([0, 0, 0]), TOKEN)).toBeNull();
    expect(tagGrpcFrame(grpcFrame(Buffer.from([0x2a, 0x05, 0x68])), TOKEN)).toBeNull(); // strData longer than the message
    expect(tagGrpcFrame(grpcFrame(Buffer.from([0xff, 0xff])), TOKEN)).toBeNull(); // a varint that never ends
    expect(tagGrpcFrame(grpcFrame(Buffer.from([0x0b])), TOKEN)).toBeNull(); // a group
    expect(tagGrpcMessage(Buffer.from([0x00, 0x01]), TOKEN)).toBeNull(); // field number 0
  });
});

describe('tokenFromFeedbackJson', () => {
  const answer = tag('{"data":{"names":["p"],"ndarray":[[0.9]]},"meta":{"puid":"q"}}')!;
  const read = (s: string) => tokenFromFeedbackJson(Buffer.from(s));

  it('the Seldon client echoes the answer in response: token and reward', () => {
    expect(read(`{"request":{"data":{"ndarray":[[1,2]]}},"response":${answer},"reward":0.9}`)).toEqual({ token: TOKEN, reward: 0.9 });
    expect(read(`{"reward":1,"truth":{"data":{"ndarray":[[1]]}},"response":${answer}}`)).toEqual({ token: TOKEN, reward: 1 });
  });

  it.each([
    ['absent', '', 0],
    ['null (the proto3 default)', ',"reward":null', 0],
    ['a numeric string (proto3 JSON)', ',"reward":"0.25"', 0.25],
    ['"NaN"', ',"reward":"NaN"', null],
    ['"Infinity"', ',"reward":"Infinity"', null],
    ['an empty string', ',"reward":""', null],
    ['an object', ',"reward":{}', null],
    ['a boolean', ',"reward":true', null],
    ['the last of two', ',"reward":0.1,"reward":0.7', 0.7],
  ])('reward %s', (_name, member, reward) => {
    expect(read(`{"response":${answer}${member}}`)).toEqual({ token: TOKEN, reward });
  });

  it.each([
    ['no response', '{"reward":1}'],
    ['a response without meta', '{"response":{"strData":"x"},"reward":1}'],
    ['tags without the token', '{"response":{"meta":{"tags":{"a":"b"}}},"reward":1}'],
    ['a token that is not a string', `{"response":{"meta":{"tags":{"${ARM_TAG}":5}}},"reward":1}`],
    ['a token elsewhere', `{"request":{"meta":{"tags":{"${ARM_TAG}":"${TOKEN}"}}},"reward":1}`],
    ['a response that is not an object', '{"response":"x","reward":1}'],
  ])('%s: no token', (_name, body) => {
    expect(read(body)).toEqual({ token: null, reward: 1 });
  });

  it('null when the body is not one JSON object', () => {
    expect(read('[1]')).toBeNull();
    expect(read(`{"response":${answer}`)).toBeNull();
  });
});

describe('tokenFromFeedbackProto', () => {
  const feedbackMethod = loadSeldonProtos().seldon['SendFeedback']!;
  const encodeFeedback = (f: Feedback): Buffer => feedbackMethod.requestSerialize(f);
  const taggedAnswer = tagGrpcMessage(encodeSeldonMessage({ meta: { puid: 'q', tags: { model: { stringValue: 'm1' } } }, data: { tensor: { shape: [1], values: [0.9] } } }), TOKEN)!;

  it('a Feedback the client built from the decoded answer: token and reward', () => {
    const response = decodeSeldonMessage(taggedAnswer);
    expect(response.meta?.tags?.[ARM_TAG]?.stringValue).toBe(TOKEN);
    expect(tokenFromFeedbackProto(encodeFeedback({ request: { strData: 'in' }, response, reward: 0.5 }))).toEqual({ token: TOKEN, reward: 0.5 });
  });

  it('a Feedback carrying the answer bytes as they came (meta twice, merged): token and reward', () => {
    const request = encodeSeldonMessage({ strData: 'in' });
    const reward = Buffer.alloc(5);
    reward[0] = 0x1d; // field 3, fixed32
    reward.writeFloatLE(0.75, 1);
    const bytes = Buffer.concat([delimited(1, request), delimited(2, taggedAnswer), reward]);
    expect(tokenFromFeedbackProto(bytes)).toEqual({ token: TOKEN, reward: 0.75 });
  });

  it('reward: 0 when absent, null when not finite', () => {
    const response = decodeSeldonMessage(taggedAnswer);
    expect(tokenFromFeedbackProto(encodeFeedback({ response }))).toEqual({ token: TOKEN, reward: 0 });
    expect(tokenFromFeedbackProto(encodeFeedback({ response, reward: NaN }))).toEqual({ token: TOKEN, reward: null });
    expect(tokenFromFeedbackProto(encodeFeedback({ response, reward: Infinity }))).toEqual({ token: TOKEN, reward: null });
  });

  it('the last entry of the key wins, and only a string value is a token', () => {
    const twice = Buffer.concat([taggedAnswer, armTagFragment('second')]);
    expect(tokenFromFeedbackProto(encodeFeedback({ response: decodeSeldonMessage(twice), reward: 1 }))?.token).toBe('second');
    const numberTag = encodeFeedback({ response: { meta: { tags: { [ARM_TAG]: { numberValue: 3 } } } }, reward: 1 });
    expect(tokenFromFeedbackProto(numberTag)).toEqual({ token: null, reward: 1 });
    // A string first, then a number in a later entry: the number wins, so no token.
    const overridden = Buffer.concat([delimited(2, taggedAnswer), delimited(2, encodeSeldonMessage({ meta: { tags: { [ARM_TAG]: { numberValue: 3 } } } }))]);
    expect(tokenFromFeedbackProto(overridden)).toEqual({ token: null, reward: 0 });
  });

  it('no token: without a response, without the tag, with the tag in the request only', () => {
    expect(tokenFromFeedbackProto(encodeFeedback({ reward: 1 }))).toEqual({ token: null, reward: 1 });
    expect(tokenFromFeedbackProto(encodeFeedback({ response: { strData: 'x' }, reward: 1 }))).toEqual({ token: null, reward: 1 });
    expect(tokenFromFeedbackProto(encodeFeedback({ request: decodeSeldonMessage(taggedAnswer), reward: 1 }))).toEqual({ token: null, reward: 1 });
    expect(tokenFromFeedbackProto(Buffer.alloc(0))).toEqual({ token: null, reward: 0 });
  });

  it('a response field of another wire type is an unknown field: skipped', () => {
    expect(tokenFromFeedbackProto(Buffer.from([0x10, 0x01, 0x1d, 0, 0, 0x80, 0x3f]))).toEqual({ token: null, reward: 1 });
  });

  it('null when malformed along the way', () => {
    expect(tokenFromFeedbackProto(Buffer.from([0x12, 0x05, 0x12]))).toBeNull(); // response longer than the message
    expect(tokenFromFeedbackProto(Buffer.from([0x12, 0x02, 0x12, 0x05]))).toBeNull(); // meta longer than the response
    expect(tokenFromFeedbackProto(Buffer.from([0x1d, 0x00]))).toBeNull(); // a float cut short
  });
});
