/**
 * A gRPC call translated between Seldon's protocol and v2 for its model (`Backend.translate`,
 * docs/protocol-translation.md), the gRPC twin of rest/rest-translation.ts over the same rules
 * (translate/): which calls are (`grpcTranslationFor`: `seldon.protos.Seldon/Predict` for a v2
 * model, `inference.GRPCInferenceService/ModelInfer` for a Seldon one; a v2 client's `ModelMetadata`
 * and `ModelReady` of a Seldon model are the gateway's own answers), the method and message the model
 * gets (translated once, the request read whole: retries and hedges resend it), and
 * `TranslatedGrpcAnswer`, the decorator that writes the model's answer in the client's protocol. A
 * translated call carries exactly one uncompressed message each way. One object per translated call;
 * a route without the annotation pays one property check.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { GrpcStatus } from '../edge/errors.js';
import { isModelSegment, type TranslatePolicy, type WireProtocol } from '../../routing/policies/protocol.js';
import type { Backend } from '../../routing/types.js';
import { TranslateRefusal, type Translation } from '../translate/datatypes.js';
import { DEFAULT_INPUT_NAME, seldonMessageToV2, v2OutputsToSeldon, type SeldonForm } from '../translate/seldon-client.js';
import { sameDatatype, seldonMessageToV2Output, v2InferToSeldon, type V2Form } from '../translate/v2-client.js';
import { readSeldonMessage, writeSeldonMessage } from '../translate/seldon-proto.js';
import { seldonAnswerParams } from '../translate/meta-params.js';
import { readInferMessage, readModelRef, writeInferRequest, writeInferResponse, writeModelReady, writeSeldonModelMetadata } from '../translate/v2-proto.js';
import type { TranslationResult } from '../observe/translation-metrics.js';
import type { CallAnswerChain } from './tagged-answer.js';
import { answerStatus } from './mirror.js';
import type { ModelMetadata } from '../model-metadata/model-metadata.js';
import { encodeGrpcMessage } from './answer.js';
import { MESSAGE_HEAD, framesOneMessage, lengthPrefixed } from '../wire/grpc-message.js';

export const TRANSLATED_METADATA = 'x-seldon-translated';

const SELDON_PREDICT = '/seldon.protos.Seldon/Predict';
const V2_INFER = '/inference.GRPCInferenceService/ModelInfer';
const V2_METADATA = '/inference.GRPCInferenceService/ModelMetadata';
const V2_READY = '/inference.GRPCInferenceService/ModelReady';

/** A gRPC SeldonMessage's numbers are all doubles (numpy's float64), whole or not. */
const DOUBLES = (): boolean => true;

/** The most a translated call's message may hold, each way (it is read whole to be translated). */
export const MAX_TRANSLATED_MESSAGE = 64 * 1024 * 1024;
/** The most elements a v2 message translated to a SeldonMessage may hold: each becomes an eight-byte double. */
const MAX_TRANSLATED_ELEMENTS = MAX_TRANSLATED_MESSAGE / 8;

/** The one message of a whole gRPC request or answer (length-prefixed); anything else is refused (`status`). */
export function oneMessage(whole: Buffer, status: number): Buffer {
  if (whole.length < MESSAGE_HEAD) throw new TranslateRefusal('a translated call carries exactly one message, and none came', status);
  if (whole[0] !== 0) throw new TranslateRefusal('a compressed message cannot be translated: send it uncompressed', status);
  if (!framesOneMessage(whole)) throw new TranslateRefusal('a translated call carries exactly one message', status);
  return whole.subarray(MESSAGE_HEAD);
}

export class GrpcTranslation implements Translation {
  private seldonForm: SeldonForm | undefined;
  private v2Form: V2Form | undefined;

  constructor(
    readonly from: WireProtocol,
    readonly to: WireProtocol,
    /** The method the model is called with; for the gateway's own answer, the client's. */
    readonly path: string,
    private readonly policy: TranslatePolicy,
    /** `ModelMetadata` / `ModelReady` of a Seldon model: answered by the gateway, nothing sent. */
    readonly own: 'metadata' | 'ready' | undefined = undefined,
    private readonly backend?: Backend,
    /** The v2 models' metadata (model-metadata/): the input's declared name and datatype; absent: by the values. */
    private readonly metadata?: ModelMetadata,
  ) {}

  /** `from->to`, as the metadata, the log and the metric say it. */
  get label(): string {
    return `${this.from}->${this.to}`;
  }

  /**
   * The whole request the model gets (framed); throws `TranslateRefusal` (400: INVALID_ARGUMENT) for what
   * cannot be carried unchanged, and (413: RESOURCE_EXHAUSTED) for a message that translation grew beyond
   * MAX_TRANSLATED_MESSAGE (INT8's one-byte varints are a SeldonMessage's eight-byte doubles).
   */
  request(whole: Buffer): Buffer {
    const sent = this.translated(whole);
    if (sent.length > MAX_TRANSLATED_MESSAGE + MESSAGE_HEAD)
      throw new TranslateRefusal(`the translated request message is ${sent.length - MESSAGE_HEAD} bytes, larger than ${MAX_TRANSLATED_MESSAGE}`, 413);
    return sent;
  }

  private translated(whole: Buffer): Buffer {
    const payload = oneMessage(whole, 400);
    if (this.to === 'v2') {
      // A gRPC SeldonMessage's numbers are doubles: numpy's float64.
      const input = this.metadata !== undefined && this.backend !== undefined ? this.metadata.inputFor(this.backend) : { name: DEFAULT_INPUT_NAME, datatype: this.policy.datatype };
      const r = seldonMessageToV2(readSeldonMessage(payload, 400), DOUBLES, input);
      this.seldonForm = r.form;
      return lengthPrefixed(writeInferRequest(r.request, this.policy.modelName, this.policy.modelVersion));
    }
    const req = readInferMessage(payload, false, 400, MAX_TRANSLATED_ELEMENTS);
    const name = typeof req.model_name === 'string' && req.model_name !== '' ? req.model_name : this.policy.modelName;
    const version = typeof req.model_version === 'string' && req.model_version !== '' ? req.model_version : undefined;
    const r = v2InferToSeldon(req, name, version);
    this.v2Form = r.form;
    return lengthPrefixed(writeSeldonMessage(r.message, 400));
  }

  /** The client's whole answer from the model's (framed); throws `TranslateRefusal` (502: INTERNAL) for an answer it cannot read. */
  answer(whole: Buffer): Buffer {
    const payload = oneMessage(whole, 502);
    if (this.to === 'v2') return lengthPrefixed(writeSeldonMessage(v2OutputsToSeldon(readInferMessage(payload, true, 502, MAX_TRANSLATED_ELEMENTS), this.seldonForm!, this.policy.names), 502));
    const msg = readSeldonMessage(payload, 502);
    const o = seldonMessageToV2Output(msg, DOUBLES);
    const params = seldonAnswerParams(msg.meta);
    const same = sameDatatype(o, this.v2Form!, true);
    if (same !== null) {
      try {
        return lengthPrefixed(writeInferResponse(same, this.v2Form!, params));
      } catch (err) {
        // A float the request's datatype cannot hold exactly in its binary field: the answer keeps its values' datatype.
        if (!(err instanceof TranslateRefusal)) throw err;
      }
    }
    return lengthPrefixed(writeInferResponse(o, this.v2Form!, params));
  }

  /**
   * The gateway's own answer (framed) to `ModelMetadata` / `ModelReady`, as REST's `GET …/v2/models/<m>[/versions/<v>]`
   * is (rest/rest-translation.ts `v2ModelAnswer`): a Seldon model has no versions, so whichever version a client
   * names, the one model answers. What MLServer does not serve is refused as it refuses it (`ModelNotFound`:
   * NOT_FOUND, its message): a name other than the model's, a version that is not one (`isModelSegment`).
   * Throws `TranslateRefusal` (status 404: NOT_FOUND; 400: a request that cannot be read).
   */
  ownAnswer(whole: Buffer): Buffer {
    let ref: { name: string; version: string };
    try {
      ref = readModelRef(oneMessage(whole, 400));
    } catch (err) {
      throw err instanceof TranslateRefusal ? err : new TranslateRefusal('the request message cannot be read', 400);
    }
    if (ref.name !== this.policy.modelName) throw new TranslateRefusal(`Model ${ref.name} not found`, 404);
    if (ref.version !== '' && !isModelSegment(ref.version)) throw new TranslateRefusal(`Model ${ref.name} with version ${ref.version} not found`, 404);
    return lengthPrefixed(this.own === 'ready' ? writeModelReady() : writeSeldonModelMetadata(ref.name));
  }
}

/** Whether a call of method `path` to `backend` is translated, and how; null: it goes as it came. */
export function grpcTranslationFor(backend: Backend, path: string, metadata?: ModelMetadata): GrpcTranslation | null {
  const t = backend.translate;
  if (t === null) return null;
  if (t.speaks === 'v2' && path === SELDON_PREDICT && t.accept.includes('seldon')) return new GrpcTranslation('seldon', 'v2', V2_INFER, t, undefined, backend, metadata);
  if (t.speaks === 'seldon' && t.accept.includes('v2')) {
    if (path === V2_INFER) return new GrpcTranslation('v2', 'seldon', SELDON_PREDICT, t);
    if (path === V2_METADATA) return new GrpcTranslation('v2', 'seldon', path, t, 'metadata');
    if (path === V2_READY) return new GrpcTranslation('v2', 'seldon', path, t, 'ready');
  }
  return null;
}

/** What a translated answer needs of its call. */
export interface TranslatedAnswerOwner {
  /** The model's trailers, once they came. */
  trailers(): OutgoingHttpHeaders | undefined;
  /** The answer could not be translated: the call's status becomes INTERNAL, with `message`. */
  badAnswer(message: string): void;
  /** The message of an INTERNAL status the call answers with: `text` given where the answer came from. */
  failure(text: (where: string) => string): string;
  counted(result: TranslationResult): void;
}

/**
 * The model's answer held whole (at most MAX_TRANSLATED_MESSAGE) and written in the client's
 * protocol once it ended. A model's error status passes as it came (its message, in the model's
 * protocol, is dropped); an answer that cannot be translated ends the call INTERNAL, never passed on
 * changed or half-translated. The call's answer from the moment its request was translated
 * (grpc/call-start.ts): its head is edited here, so a call that is not translated never asks.
 */
export class TranslatedGrpcAnswer implements CallAnswerChain {
  private chunks: Buffer[] = [];
  private size = 0;
  /** No message to translate (an error status, trailers only): what comes passes as it came. */
  private passing = false;

  constructor(
    private inner: CallAnswerChain,
    private readonly translation: GrpcTranslation,
    private readonly owner: TranslatedAnswerOwner,
  ) {}

  /** The answer says it was translated and comes uncompressed; an OK without a message is an INTERNAL (nothing to translate). */
  editHead(headers: IncomingHttpHeaders, trailersOnly: boolean, httpStatus: number): void {
    headers[TRANSLATED_METADATA] = this.translation.label;
    delete headers['grpc-encoding'];
    delete headers['content-length'];
    if (!trailersOnly && httpStatus === 200) return;
    this.passing = true;
    if (answerStatus(headers, httpStatus) !== GrpcStatus.OK) return this.owner.counted('model-error');
    // OK without a message: nothing to translate, and an OK would tell the client it got one.
    this.owner.counted('bad-answer');
    headers['grpc-status'] = String(GrpcStatus.INTERNAL);
    headers['grpc-message'] = encodeGrpcMessage(this.owner.failure((w) => `${w} answered OK without a message: nothing to translate`));
  }

  /** A bandit's token goes into the client's SeldonMessage: the translated one, so beneath this decorator; a v2 client's answer has none. */
  tagged(token: string): CallAnswerChain {
    if (this.translation.from === 'seldon') this.inner = this.inner.tagged(token);
    return this;
  }

  write(chunk: Buffer): void {
    if (this.passing) return this.inner.write(chunk);
    this.size += chunk.length;
    if (this.size <= MAX_TRANSLATED_MESSAGE + MESSAGE_HEAD) this.chunks.push(chunk);
  }

  end(last?: Buffer): void {
    if (this.passing) return this.inner.end(last);
    if (last !== undefined) this.write(last);
    const whole = Buffer.concat(this.chunks, Math.min(this.size, MAX_TRANSLATED_MESSAGE + MESSAGE_HEAD));
    this.chunks = [];
    const t = this.owner.trailers();
    if (t !== undefined && answerStatus(t, 200) !== 0) {
      this.owner.counted('model-error');
      this.inner.end();
      return;
    }
    let translated: Buffer;
    try {
      if (this.size > MAX_TRANSLATED_MESSAGE + MESSAGE_HEAD) throw new TranslateRefusal(`the model's answer is larger than ${MAX_TRANSLATED_MESSAGE} bytes, too large to translate`, 502);
      translated = this.translation.answer(whole);
    } catch (err) {
      if (!(err instanceof TranslateRefusal)) throw err;
      this.owner.counted('bad-answer');
      this.owner.badAnswer(`the model's answer cannot be translated (${this.translation.label}): ${err.message}`);
      this.inner.end();
      return;
    }
    this.owner.counted('ok');
    this.inner.write(translated);
    this.inner.end();
  }
}
