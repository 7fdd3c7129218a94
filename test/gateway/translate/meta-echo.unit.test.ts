/**
 * A Seldon client's `meta.tags`, `metrics` and `requestPath` come back in the translated answer's `meta`,
 * as Seldon's wrapper echoes them (`construct_response_json`), written as the client wrote them: numbers
 * as their text, keys sorted. The attacker's bodies first: where the scan for `meta` could be fooled,
 * what could pollute a prototype, what nests deeper than a stack.
 */
import { describe, expect, it } from 'vitest';
import { refusal, seldonRequestToV2, v2AnswerToSeldon } from '../../helpers/translate-text.js';
import { memberText } from '../../../gateway/translate/json-exact.js';

const INPUT = { name: 'input-0', datatype: null };
const V2_ANSWER = Buffer.from('{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"INT64","data":[7]}]}');

/** The Seldon answer a client gets for `sent`, and the v2 request the model got. */
function roundTrip(sent: string): { atModel: string; answer: string } {
  const r = seldonRequestToV2(Buffer.from(sent), INPUT);
  return { atModel: r.body, answer: v2AnswerToSeldon(200, V2_ANSWER, r.form, null) };
}

describe("the request's meta, echoed in the translated answer", () => {
  it('tags, metrics and requestPath as written (1.0 stays 1.0, 2^53+1 exact), keys sorted at every level, puid among them; routing is not echoed (nor by the wrapper)', () => {
    const sent =
      '{"meta":{"tags":{"z":1.0,"a":{"y":9007199254740993,"b":"x"},"e":1e5},"puid":"p","routing":{"clf":-1},"requestPath":{"clf":"img:1"},"metrics":[{"type":"COUNTER","key":"k","value":1}]},"data":{"ndarray":[1.5]}}';
    const { atModel, answer } = roundTrip(sent);
    expect(atModel).toBe('{"id":"p","inputs":[{"name":"input-0","shape":[1],"datatype":"FP64","data":[1.5]}]}');
    expect(answer).toBe(
      '{"data":{"names":[],"ndarray":[7]},"meta":{"metrics":[{"key":"k","type":"COUNTER","value":1}],"puid":"p","requestPath":{"clf":"img:1"},"tags":{"a":{"b":"x","y":9007199254740993},"e":1e5,"z":1.0}}}',
    );
  });

  it('empty or null members are left out, as the wrapper leaves them; no meta: {}', () => {
    expect(roundTrip('{"meta":{"tags":{},"metrics":[],"requestPath":null},"data":{"ndarray":[1]}}').answer).toBe('{"data":{"names":[],"ndarray":[7]},"meta":{}}');
    expect(roundTrip('{"data":{"ndarray":[1]}}').answer).toBe('{"data":{"names":[],"ndarray":[7]},"meta":{}}');
  });

  it('every answer form carries it: tensor, strData, jsonData', () => {
    const tags = '"meta":{"tags":{"t":true}}';
    const tensor = seldonRequestToV2(Buffer.from(`{${tags},"data":{"tensor":{"shape":[1],"values":[1]}}}`), INPUT);
    expect(v2AnswerToSeldon(200, V2_ANSWER, tensor.form, null)).toBe('{"data":{"names":[],"tensor":{"shape":[1],"values":[7]}},"meta":{"tags":{"t":true}}}');
    const str = seldonRequestToV2(Buffer.from(`{${tags},"strData":"hi"}`), INPUT);
    const strAnswer = Buffer.from('{"model_name":"m","outputs":[{"name":"o","shape":[1],"datatype":"BYTES","data":["yo"]}]}');
    expect(v2AnswerToSeldon(200, strAnswer, str.form, null)).toBe('{"meta":{"tags":{"t":true}},"strData":"yo"}');
    const two = Buffer.from('{"model_name":"m","outputs":[{"name":"a","shape":[1],"datatype":"INT64","data":[1]},{"name":"b","shape":[1],"datatype":"INT64","data":[2]}]}');
    expect(v2AnswerToSeldon(200, two, tensor.form, null)).toBe('{"jsonData":{"a":[1],"b":[2]},"meta":{"tags":{"t":true}}}');
  });

  describe("the attacker's bodies", () => {
    it('a key spelled with escapes is the key JSON.parse reads ("m\\u0065ta" is meta); of two, the last counts, as JSON.parse keeps it', () => {
      expect(roundTrip('{"m\\u0065ta":{"tags":{"a":1}},"data":{"ndarray":[1]}}').answer).toBe('{"data":{"names":[],"ndarray":[7]},"meta":{"tags":{"a":1}}}');
      expect(roundTrip('{"meta":{"tags":{"a":1}},"data":{"ndarray":[1]},"meta":{"tags":{"b":2}}}').answer).toBe('{"data":{"names":[],"ndarray":[7]},"meta":{"tags":{"b":2}}}');
    });

    it('brackets, quotes and "meta" inside strings elsewhere do not move the scan', () => {
      const sent = '{"data":{"ndarray":["}{\\"meta\\":{\\"tags\\":{\\"x\\":1}}","]"]},"meta":{"tags":{"k":"]}\\""}} ,"strX":"{"}';
      expect(memberText(Buffer.from(sent), 'meta')).toBe('{"tags":{"k":"]}\\""}}');
      const { answer } = roundTrip('{"data":{"ndarray":["}{\\"meta\\":1","]"]} , "meta" : {"tags":{"k":"]}\\""}}}');
      expect(answer).toContain(',"meta":{"tags":{"k":"]}\\""}}}');
    });

    it('__proto__ and constructor are keys like any: echoed, and no prototype changes', () => {
      const { answer } = roundTrip('{"meta":{"tags":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}},"data":{"ndarray":[1]}}');
      expect(answer).toBe('{"data":{"names":[],"ndarray":[7]},"meta":{"tags":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}}}');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('tags nested 200,000 deep: refused (400), never a stack overflow or a tag silently lost', () => {
      const sent = `{"meta":{"tags":${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}},"data":{"ndarray":[1]}}`;
      const e = refusal(() => seldonRequestToV2(Buffer.from(sent), INPUT));
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/nested too deeply/);
    });

    it('a member of another type than the wrapper reads is refused (tags and requestPath are maps, metrics a list)', () => {
      for (const [meta, what] of [
        ['{"tags":[1]}', /meta\.tags must be a map/],
        ['{"tags":"x"}', /meta\.tags must be a map/],
        ['{"metrics":{"k":1}}', /meta\.metrics must be a list/],
        ['{"requestPath":"clf"}', /meta\.requestPath must be a map/],
      ] as const) {
        const e = refusal(() => seldonRequestToV2(Buffer.from(`{"meta":${meta},"data":{"ndarray":[1]}}`), INPUT));
        expect(e.status).toBe(400);
        expect(e.message).toMatch(what);
      }
    });
  });
});
