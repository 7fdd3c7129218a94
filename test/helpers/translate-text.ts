/** The REST codecs (gateway/translate/) write bodies as bytes; these give them as UTF-8 text, to compare with the text expected; and a refusal, caught. */
import { seldonRequestToV2 as seldonRequestToV2Bytes, v2AnswerToSeldon as v2AnswerToSeldonBytes, type SeldonForm } from '../../gateway/translate/seldon-client.js';
import { TranslateRefusal } from '../../gateway/translate/datatypes.js';
import { seldonAnswerToV2 as seldonAnswerToV2Bytes, v2RequestToSeldon as v2RequestToSeldonBytes, type V2Form } from '../../gateway/translate/v2-client.js';

export const seldonRequestToV2 = (...a: Parameters<typeof seldonRequestToV2Bytes>): { body: string; form: SeldonForm } => {
  const r = seldonRequestToV2Bytes(...a);
  return { body: r.body.toString('utf8'), form: r.form };
};
export const v2RequestToSeldon = (...a: Parameters<typeof v2RequestToSeldonBytes>): { body: string; form: V2Form } => {
  const r = v2RequestToSeldonBytes(...a);
  return { body: r.body.toString('utf8'), form: r.form };
};
export const v2AnswerToSeldon = (...a: Parameters<typeof v2AnswerToSeldonBytes>): string => v2AnswerToSeldonBytes(...a).toString('utf8');
export const seldonAnswerToV2 = (...a: Parameters<typeof seldonAnswerToV2Bytes>): string => seldonAnswerToV2Bytes(...a).toString('utf8');

/** The `TranslateRefusal` that `f` throws (anything else is thrown on; no refusal fails the test). */
export const refusal = (f: () => unknown): TranslateRefusal => {
  try {
    f();
  } catch (err) {
    if (err instanceof TranslateRefusal) return err;
    throw err;
  }
  throw new Error('not refused');
};
