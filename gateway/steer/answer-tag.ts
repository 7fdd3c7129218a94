/**
 * The attribution token in a bandit deployment's answers, and read back from their feedback
 * (docs/bandits.md#what-attribution-needs-from-clients). The official Seldon client echoes the
 * prediction's answer in `Feedback.response`, so a token in the answer's `meta.tags` comes back.
 *
 * - REST: `meta.tags["seldon.io/gateway-arm"]` spliced into the JSON answer's bytes, every other
 *   byte kept (numbers beyond 2^53, key order, spacing); only for an answer that is one JSON
 *   object, up to a size limit; otherwise null and the caller sends the header alone.
 * - gRPC: the tag's map entry added at the end of the answer's `meta` (a `meta` holding only the
 *   tag appended when it has none), so every decoder keeps the answer's own fields and tags.
 * - Feedback: the token and the reward, found without decoding the rest (JSON or protobuf).
 */
import { lastMember, memberValue, readObject, readTopObject, type ObjectSpan } from './json-scan.js';
import { FIXED32, FIXED64, LEN, ProtoWriter, VARINT, varintBytes, walkFields, type WireField } from '../wire/protobuf.js';
import { lengthPrefixed, onlyMessage } from '../wire/grpc-message.js';

/** The `meta.tags` key that carries the token. */
export const ARM_TAG = 'seldon.io/gateway-arm';
/** Larger JSON answers carry the token in the header only: splicing scans the whole answer. */
export const DEFAULT_TAG_MAX_BYTES = 64 * 1024;

/**
 * An answer held for its tag, REST's and gRPC's alike (rest/tagged-answer.ts, grpc/tagged-answer.ts):
 * its chunks are kept up to the tag limit; one that outgrows it is given back once, to pass on as it
 * comes with the token in its header or metadata only.
 */
export class HeldAnswer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** Outgrew the limit: every later chunk passes on as it comes. */
  passing = false;

  /** Hold `chunk`; when the answer now outgrows the limit, everything held so far, to pass on. */
  hold(chunk: Buffer): Buffer | undefined {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size <= DEFAULT_TAG_MAX_BYTES) return undefined;
    this.passing = true;
    return Buffer.concat(this.chunks, this.size);
  }

  get empty(): boolean {
    return this.size === 0;
  }

  /** The whole answer, held within the limit. */
  whole(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

// ---------------------------------------------------------------------------------------------
// REST answers
// ---------------------------------------------------------------------------------------------

/** `text` inserted as the last member of object `o` in `b`. */
function appendMember(b: Buffer, o: ObjectSpan, text: string): Buffer {
  return Buffer.concat([b.subarray(0, o.close), Buffer.from(o.members.length ? `,${text}` : text), b.subarray(o.close)]);
}

/**
 * The JSON answer `body` with `meta.tags["seldon.io/gateway-arm"] = token` (`meta` and `tags`
 * added when absent, an existing tag of that name replaced), or null when the body is over
 * `maxBytes`, is not one valid JSON object, or has a `meta` or `meta.tags` that is not an object.
 * With duplicate keys, the last one (the one JSON parsers keep) is the one changed.
 */
export function tagJsonAnswer(body: Buffer, token: string, maxBytes = DEFAULT_TAG_MAX_BYTES): Buffer | null {
  if (body.length > maxBytes) return null;
  const top = readTopObject(body);
  if (!top) return null;
  const entry = `${JSON.stringify(ARM_TAG)}:${JSON.stringify(token)}`;
  const meta = lastMember(body, top, 'meta');
  if (!meta) return appendMember(body, top, `"meta":{"tags":{${entry}}}`);
  const metaObject = readObject(body, meta.valueStart);
  if (!metaObject) return null;
  const tags = lastMember(body, metaObject, 'tags');
  if (!tags) return appendMember(body, metaObject, `"tags":{${entry}}`);
  const tagsObject = readObject(body, tags.valueStart);
  if (!tagsObject) return null;
  const existing = lastMember(body, tagsObject, ARM_TAG);
  if (!existing) return appendMember(body, tagsObject, entry);
  return Buffer.concat([body.subarray(0, existing.valueStart), Buffer.from(JSON.stringify(token)), body.subarray(existing.valueEnd)]);
}

// ---------------------------------------------------------------------------------------------
// gRPC answers
// ---------------------------------------------------------------------------------------------

// Field numbers (test/protos/seldon.proto, google/protobuf/struct.proto).
const SELDON_MESSAGE_META = 2;
const META_TAGS = 2;
const MAP_KEY = 1;
const MAP_VALUE = 2;
const VALUE_STRING = 3;
const FEEDBACK_RESPONSE = 2;
const FEEDBACK_REWARD = 3;
/** google.protobuf.Value's kinds by field number: null_value, number_value, string_value, bool_value, struct_value, list_value. */
const VALUE_WIRE: Record<number, number> = { 1: VARINT, 2: FIXED64, 3: LEN, 4: VARINT, 5: LEN, 6: LEN };

/** Meta's `tags` field holding the one map entry `ARM_TAG` → Value { string_value: token }. */
function tagsEntry(token: string): ProtoWriter {
  const value = new ProtoWriter().string(VALUE_STRING, token);
  return new ProtoWriter().message(META_TAGS, new ProtoWriter().string(MAP_KEY, ARM_TAG).message(MAP_VALUE, value));
}

/** A serialized SeldonMessage holding only `meta { tags { key: ARM_TAG value { string_value: token } } }`. */
export function armTagFragment(token: string): Buffer {
  return new ProtoWriter().message(SELDON_MESSAGE_META, tagsEntry(token)).finish();
}

/**
 * The SeldonMessage `message` with the tag added, or null when it is not a well-formed message.
 * Without `meta`, the fragment is appended. With one, the tag's map entry goes at the end of the
 * last `meta` field, whose length is rewritten: parsers that follow the protobuf spec would also
 * merge an appended `meta`, but protobufjs (hence @grpc/proto-loader clients) keeps only the last
 * occurrence of an embedded message and would drop the answer's own `meta` fields.
 */
export function tagGrpcMessage(message: Buffer, token: string): Buffer | null {
  let meta: { at: number; afterTag: number; start: number; end: number } | null = null;
  const ok = walkFields(message, 0, message.length, (f) => {
    if (f.field === SELDON_MESSAGE_META && f.wire === LEN) meta = { at: f.at, afterTag: f.afterTag, start: f.start, end: f.end };
  });
  if (!ok) return null;
  const last = meta as { at: number; afterTag: number; start: number; end: number } | null;
  if (last === null) return Buffer.concat([message, armTagFragment(token)]);
  const entry = tagsEntry(token).finish();
  return Buffer.concat([message.subarray(0, last.afterTag), Buffer.from(varintBytes(last.end - last.start + entry.length)), message.subarray(last.start, last.end), entry, message.subarray(last.end)]);
}

/**
 * One gRPC length-prefixed SeldonMessage with the tag added (`tagGrpcMessage`) and its length
 * fixed, or null when the frame is compressed, not exactly one message, or not a well-formed message.
 */
export function tagGrpcFrame(frame: Buffer, token: string): Buffer | null {
  const payload = onlyMessage(frame);
  const tagged = payload && tagGrpcMessage(payload, token);
  return tagged ? lengthPrefixed(tagged) : null;
}

// ---------------------------------------------------------------------------------------------
// Feedback
// ---------------------------------------------------------------------------------------------

export interface FeedbackReading {
  /** `response.meta.tags["seldon.io/gateway-arm"]` when it is a string; null when absent or not one. */
  readonly token: string | null;
  /**
   * The reward: 0 when absent or null (proto3's default, what the model receives too); null when
   * it is not a finite number (a string that is not one, NaN, an object).
   */
  readonly reward: number | null;
}

function jsonReward(v: unknown): number | null {
  if (v === null) return 0;
  // proto3 JSON also writes floats as strings ("0.5", "NaN").
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

/**
 * The token and reward of a JSON Feedback `{request, response: {meta: {tags: {…}}}, reward}`, or
 * null when the body is not one valid JSON object.
 */
export function tokenFromFeedbackJson(body: Buffer): FeedbackReading | null {
  const top = readTopObject(body);
  if (!top) return null;
  const rewardMember = lastMember(body, top, 'reward');
  const reward = rewardMember ? jsonReward(memberValue(body, rewardMember)) : 0;
  let token: string | null = null;
  const path: [string, string, string] = ['response', 'meta', 'tags'];
  let o: ObjectSpan | null = top;
  for (const key of path) {
    const m = lastMember(body, o, key);
    o = m ? readObject(body, m.valueStart) : null;
    if (!o) break;
  }
  const tag = o && lastMember(body, o, ARM_TAG);
  if (tag) {
    const v = memberValue(body, tag);
    if (typeof v === 'string') token = v;
  }
  return { token, reward };
}

/**
 * The token and reward of a protobuf Feedback (`response` = 2, `reward` = 3 float), or null when
 * it is not well formed along the way. Repeated occurrences merge as protobuf parsers merge them:
 * the last map entry of a key wins, and within a Value the last kind set.
 */
export function tokenFromFeedbackProto(message: Buffer): FeedbackReading | null {
  let token: string | null = null;
  let reward = 0;
  let malformed = false;
  const walk = (start: number, end: number, visit: (f: WireField) => void): void => {
    if (!malformed && !walkFields(message, start, end, visit)) malformed = true;
  };
  // A known field number with another wire type is an unknown field to protobuf parsers: skipped.
  const each = (start: number, end: number, field: number, visit: (start: number, end: number) => void): void =>
    walk(start, end, (f) => {
      if (f.field === field && f.wire === LEN) visit(f.start, f.end);
    });
  const readEntry = (start: number, end: number): void => {
    let key = '';
    let kind = 0;
    let text = '';
    walk(start, end, (f) => {
      if (f.field === MAP_KEY && f.wire === LEN) key = message.toString('utf8', f.start, f.end);
    });
    each(start, end, MAP_VALUE, (vs, ve) =>
      walk(vs, ve, (v) => {
        if (VALUE_WIRE[v.field] !== v.wire) return;
        kind = v.field;
        if (v.field === VALUE_STRING) text = message.toString('utf8', v.start, v.end);
      }),
    );
    if (key === ARM_TAG) token = kind === VALUE_STRING ? text : null;
  };
  walk(0, message.length, (f) => {
    if (f.field === FEEDBACK_REWARD && f.wire === FIXED32) reward = message.readFloatLE(f.start);
  });
  each(0, message.length, FEEDBACK_RESPONSE, (rs, re) => each(rs, re, SELDON_MESSAGE_META, (ms, me) => each(ms, me, META_TAGS, readEntry)));
  if (malformed) return null;
  return { token, reward: Number.isFinite(reward) ? reward : null };
}
