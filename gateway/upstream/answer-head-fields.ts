/**
 * What the upstream client's response parser (http1-response.ts) reads from an answer's head
 * fields: whether Connection is `keep-alive` alone or names fields, the Keep-Alive timeout, and what
 * each field is to the client-bound head (wire/response-head.ts).
 */
import { latin1, nameIs } from '../wire/field-lines.js';
import { ANSWER_CONTENT_LENGTH, ANSWER_DATE, ANSWER_HOP, ANSWER_PREDICTOR, ANSWER_SERVICE_TIME } from '../wire/response-head.js';

/** A Connection field of `keep-alive` alone (the same string every time: compared by identity). */
export const KEEP_ALIVE = 'keep-alive';

/** The last Keep-Alive value read and its timeout: a model sends the same one on every answer. */
let keepAliveValue = '';
let keepAliveMs = 0;

/** `keepAliveTimeoutMs` of the value at `buf[start, end)`: the last value's, without a string, when the bytes are the same. */
export function keepAliveHint(buf: Uint8Array, start: number, end: number): number {
  const v = keepAliveValue;
  if (end - start === v.length) {
    let same = true;
    for (let i = 0; i < v.length && same; i++) same = buf[start + i] === v.charCodeAt(i);
    if (same) return keepAliveMs;
  }
  return keepAliveTimeoutMs(latin1(buf as Buffer, start, end));
}

/** `timeout=N` of a Keep-Alive header, in ms (0 when absent or invalid). */
function keepAliveTimeoutMs(value: string): number {
  if (value === keepAliveValue) return keepAliveMs;
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i.exec(value);
  keepAliveValue = value;
  keepAliveMs = m ? Number(m[1]) * 1000 : 0;
  return keepAliveMs;
}

/**
 * What a field of an answer is to the client-bound head (wire/response-head.ts), by its name
 * (lengths first: most names are none of these).
 */
export function answerKind(buf: Uint8Array, s: number, e: number): number {
  switch (e - s) {
    case 2:
      return nameIs(buf, s, e, 'te') ? ANSWER_HOP : 0;
    case 4:
      return nameIs(buf, s, e, 'date') ? ANSWER_DATE : 0;
    case 7:
      return nameIs(buf, s, e, 'trailer') || nameIs(buf, s, e, 'upgrade') ? ANSWER_HOP : 0;
    case 10:
      return nameIs(buf, s, e, 'connection') || nameIs(buf, s, e, 'keep-alive') ? ANSWER_HOP : 0;
    case 14:
      return nameIs(buf, s, e, 'content-length') ? ANSWER_CONTENT_LENGTH : 0;
    case 16:
      return nameIs(buf, s, e, 'proxy-connection') ? ANSWER_HOP : 0;
    case 17:
      return nameIs(buf, s, e, 'transfer-encoding') ? ANSWER_HOP : 0;
    case 18:
      return nameIs(buf, s, e, 'proxy-authenticate') ? ANSWER_HOP : nameIs(buf, s, e, 'x-seldon-predictor') ? ANSWER_PREDICTOR : 0;
    case 29:
      return nameIs(buf, s, e, 'x-envoy-upstream-service-time') ? ANSWER_SERVICE_TIME : 0;
    default:
      return 0;
  }
}

/** Whether a Connection value names fields (any option besides close and keep-alive). */
export function namesFields(value: string): boolean {
  const only = value.length === 10 || value.length === 5 ? value.toLowerCase() : '';
  if (only === 'keep-alive' || only === 'close') return false;
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n !== '' && n !== 'close' && n !== 'keep-alive') return true;
  }
  return false;
}
