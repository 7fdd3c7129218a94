/**
 * A REST request translated between Seldon's protocol and v2 for its model (`Backend.translate`,
 * docs/protocol-translation.md): which requests are (`translationFor`: a Seldon prediction for a v2
 * model, a v2 inference for a Seldon model; feedback never), the path and body the model gets
 * (translated once, when the body is whole: retries and hedges resend it, mirrors and a fallback
 * that speak another protocol get their own), and the answer written back in the client's protocol
 * (`TranslatedAnswer`, a decorator of the exchange's answer, as a bandit's token is). One object per
 * translated request; a route without the annotation pays one property check.
 */
import { isModelSegment, type TranslatePolicy, type WireProtocol } from '../../routing/policies/protocol.js';
import type { Backend } from '../../routing/types.js';
import { TranslateRefusal, type Translation } from '../translate/datatypes.js';
import { DEFAULT_INPUT_NAME, seldonRequestToV2, v2AnswerToSeldon, type SeldonForm } from '../translate/seldon-client.js';
import { seldonAnswerToV2, v2RequestToSeldon, type V2Form } from '../translate/v2-client.js';
import { errorBody } from '../edge/errors.js';
import type { AnswerFields } from '../edge/answer-fields.js';
import type { AnswerSink } from './tagged-answer.js';
import type { ModelMetadata } from '../model-metadata/model-metadata.js';

export const TRANSLATED_HEADER = 'x-seldon-translated';

/** A Seldon prediction path (after the route's rewrite), v1.0 or v0.1. */
const SELDON_PREDICT = /^\/api\/v(?:1\.0|0\.1)\/predictions$/;
/** A v2 inference path: the model, and its version. */
const V2_INFER = /^\/v2\/models\/([^/?]+)(?:\/versions\/([^/?]+))?\/infer$/;

/** The most a model's answer to a translated request may hold (it is read whole to be translated). */
export const MAX_TRANSLATED_ANSWER = 64 * 1024 * 1024;

/** What one request is translated from and to, for one backend; `path`: what its model is asked. */
export class RestTranslation implements Translation {
  private seldonForm: SeldonForm | undefined;
  private v2Form: V2Form | undefined;

  constructor(
    readonly from: WireProtocol,
    readonly to: WireProtocol,
    readonly path: string,
    private readonly policy: TranslatePolicy,
    private readonly v2Model: { name: string; version: string | undefined },
    private readonly backend: Backend,
    /** The v2 models' metadata (model-metadata/): the input's declared name and datatype. */
    private readonly metadata: ModelMetadata | undefined,
  ) {}

  /** `from->to`, as the header, the log and the metric say it. */
  get label(): string {
    return `${this.from}->${this.to}`;
  }

  /** The body the model gets; throws `TranslateRefusal` (400) for what cannot be carried unchanged. */
  request(body: Buffer | null): Buffer {
    const b = body ?? Buffer.alloc(0);
    if (this.to === 'v2') {
      const input = this.metadata?.inputFor(this.backend) ?? { name: DEFAULT_INPUT_NAME, datatype: this.policy.datatype };
      const r = seldonRequestToV2(b, input);
      this.seldonForm = r.form;
      return r.body;
    }
    const r = v2RequestToSeldon(b, this.v2Model.name, this.v2Model.version);
    this.v2Form = r.form;
    return r.body;
  }

  /** The client's answer from the model's (same status); throws `TranslateRefusal` (502) for an answer it cannot read. */
  answer(status: number, body: Buffer): Buffer {
    if (this.to === 'v2') return v2AnswerToSeldon(status, body, this.seldonForm!, this.policy.names);
    return seldonAnswerToV2(status, body, this.v2Form!);
  }
}

/** Whether `path`'s request to `backend` is translated, and how; null: it goes as it came (no annotation, feedback, any other path). */
export function translationFor(backend: Backend, method: string, upstreamPath: string, metadata?: ModelMetadata): RestTranslation | null {
  const t = backend.translate;
  if (t === null || method !== 'POST') return null;
  const q = upstreamPath.indexOf('?');
  const path = q < 0 ? upstreamPath : upstreamPath.slice(0, q);
  const query = q < 0 ? '' : upstreamPath.slice(q);
  if (t.speaks === 'v2' && t.accept.includes('seldon') && SELDON_PREDICT.test(path)) {
    const version = t.modelVersion === null ? '' : `/versions/${t.modelVersion}`;
    return new RestTranslation('seldon', 'v2', `/v2/models/${t.modelName}${version}/infer${query}`, t, { name: t.modelName, version: undefined }, backend, metadata);
  }
  if (t.speaks === 'seldon' && t.accept.includes('v2')) {
    const m = V2_INFER.exec(path);
    if (m !== null)
      return new RestTranslation(
        'v2',
        'seldon',
        `/api/v1.0/predictions${query}`,
        t,
        { name: decodeURIComponentSafe(m[1]!), version: m[2] === undefined ? undefined : decodeURIComponentSafe(m[2]) },
        backend,
        metadata,
      );
  }
  return null;
}

/** A v2 model's (or a version's) metadata or readiness path: the model, the version, and whether `/ready`. */
const V2_MODEL = /^\/v2\/models\/([^/?]+)(?:\/versions\/([^/?]+))?(\/ready)?$/;

/**
 * The gateway's own answer to a v2 client's `GET …/v2/models/<m>[/versions/<v>]` or `…/ready` for a
 * model served by Seldon's wrapper, which has neither: its metadata as far as the gateway knows it
 * (name, the platform, no declared tensors, no versions: whichever version a client names, the one
 * Seldon model answers, as its inference does), and ready (the request was routed to a member with
 * a ready endpoint); another model's name is MLServer's 404. A version that is not one as sent (an encoded byte, `%2F` included, or a
 * separator) is not the gateway's to answer: the request goes as it came. Undefined: not such a request.
 */
export function v2ModelAnswer(backend: Backend, method: string, upstreamPath: string): { status: number; body: string } | undefined {
  const t = backend.translate;
  if (t === null || t.speaks !== 'seldon' || !t.accept.includes('v2') || (method !== 'GET' && method !== 'HEAD')) return undefined;
  const q = upstreamPath.indexOf('?');
  const m = V2_MODEL.exec(q < 0 ? upstreamPath : upstreamPath.slice(0, q));
  if (m === null || (m[2] !== undefined && !isModelSegment(m[2]))) return undefined;
  const name = decodeURIComponentSafe(m[1]!);
  // Another model's name: MLServer's `ModelNotFound` (404, its message), never a claim that such a model is served here.
  if (name !== t.modelName) return { status: 404, body: JSON.stringify({ error: `Model ${name} not found` }) };
  if (m[3] !== undefined) return { status: 200, body: '' };
  return { status: 200, body: JSON.stringify({ name, versions: [], platform: 'seldon', inputs: [], outputs: [] }) };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The model's answer held whole and written in the client's protocol, with its length and
 * `x-seldon-translated`. An answer too large to hold, or that cannot be translated, is a 502 with a
 * Seldon-style error: never passed on changed or half-translated.
 */
export class TranslatedAnswer implements AnswerSink {
  private status = 0;
  private fields: AnswerFields | undefined;
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly inner: AnswerSink,
    private readonly translation: RestTranslation,
    private readonly counted: (result: 'ok' | 'model-error' | 'bad-answer') => void,
  ) {}

  head(statusCode: number, fields: AnswerFields): boolean {
    this.status = statusCode;
    this.fields = fields;
    return true;
  }

  data(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size <= MAX_TRANSLATED_ANSWER) this.chunks.push(chunk);
    return true;
  }

  end(last?: Buffer): void {
    if (last !== undefined) this.data(last);
    const fields = this.fields!;
    let status = this.status;
    let body: Buffer;
    const coding = fields.get('content-encoding');
    try {
      if (this.size > MAX_TRANSLATED_ANSWER) throw new TranslateRefusal(`the model's answer is larger than ${MAX_TRANSLATED_ANSWER} bytes, too large to translate`, 502);
      if (coding !== undefined && coding.toLowerCase() !== 'identity') throw new TranslateRefusal(`the model's answer is encoded (${coding}) and cannot be translated`, 502);
      body = this.translation.answer(status, Buffer.concat(this.chunks, this.size));
      this.counted(status >= 200 && status < 300 ? 'ok' : 'model-error');
    } catch (err) {
      if (!(err instanceof TranslateRefusal)) throw err;
      status = 502;
      body = Buffer.from(errorBody(502, 'UPSTREAM_BAD_RESPONSE', err.message));
      this.counted('bad-answer');
    }
    this.chunks = [];
    fields.ownBody('application/json', body.length);
    fields.add(TRANSLATED_HEADER, this.translation.label);
    // Written as a chunk then the end: a bandit's token decorator (rest/tagged-answer.ts) reads chunks.
    if (this.inner.head(status, fields)) {
      this.inner.data(body);
      this.inner.end();
    }
  }
}
