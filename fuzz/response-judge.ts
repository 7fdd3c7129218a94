/**
 * The response side's verdict on one case: what the client read of a model's answer passed through
 * the gateway's upstream client, against what llhttp reads of the model's bytes. Pure.
 *
 * The client must read exactly the model's answer (status, end-to-end fields, body) when llhttp
 * reads it whole, or the gateway's 502 (allowed where llhttp reads the answer only by a rule of
 * RESPONSE_RULES), and never a whole answer llhttp does not read whole, nor another case's.
 */
import { llhttpResponses, type LlhttpResponse } from './llhttp.js';
import type { Verdict } from './request-judge.js';
import type { ResponseCase } from './response-grammar.js';

/** Answer fields the gateway drops or sets itself (docs/edge.md "What passes through"). */
const NOT_END_TO_END = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'content-length', 'date', 'x-envoy-upstream-service-time']);

function endToEnd(raw: readonly string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'connection') for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (NOT_END_TO_END.has(n) || n.startsWith('proxy-') || named.has(n)) continue;
    out.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  return out;
}

const field = (r: LlhttpResponse, name: string): string[] => r.rawHeaders.filter((_v, i) => i % 2 === 1 && r.rawHeaders[i - 1]!.toLowerCase() === name);

export interface ResponseRule {
  readonly name: string;
  readonly reason: string;
  readonly applies: (r: LlhttpResponse, bytes: string) => boolean;
}

/**
 * Where the gateway answers 502 to a model's answer llhttp reads whole: the documented list
 * (docs/edge.md "Stricter than llhttp"), each with its reason.
 */
export const RESPONSE_RULES: readonly ResponseRule[] = [
  {
    name: 'a transfer coding other than chunked',
    reason: 'the gateway decodes chunked only; passed on unlabelled, a gzip body would reach the client as if plain (nginx ≥ 1.23 and Envoy refuse it too)',
    applies: (r) => field(r, 'transfer-encoding').some((v) => !/^[ \t]*chunked[ \t]*$/i.test(v)) || field(r, 'transfer-encoding').length > 1,
  },
  {
    name: 'Transfer-Encoding in an HTTP/1.0 answer',
    reason: 'RFC 9112 §6.1: a Transfer-Encoding in an HTTP/1.0 message is a framing fault to be treated as such; llhttp decodes it',
    applies: (r) => r.versionMinor === 0 && field(r, 'transfer-encoding').length > 0,
  },
  {
    name: 'an HTTP version other than 1.0 and 1.1',
    reason: 'an HTTP/1.x connection carries HTTP/1.0 and HTTP/1.1 answers only; llhttp reads any digit pair',
    applies: (r) => r.versionMajor !== 1 || r.versionMinor > 1,
  },
  {
    name: 'a control character in the reason phrase',
    reason: 'RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ); llhttp takes any byte but CR and LF',
    applies: (_r, bytes) => /^HTTP\/1\.[01] \d{3} [^\r\n]*[\x00-\x08\x0a-\x1f\x7f]/.test(bytes.replace(/^(?:HTTP\/1\.[01] 1\d\d[^\n]*\n(?:[^\n]*\n)*?\r?\n)*/, '')),
  },
  {
    name: 'a status code under 100',
    reason: 'RFC 9110 §15: status codes are 100 to 599 (the first digit is the class); llhttp reads 000 to 099 as interim answers',
    applies: (_r, bytes) => /^HTTP\/\d\.\d 0\d\d/m.test(bytes),
  },
  {
    name: 'a status the client side cannot carry',
    reason: 'a status under 200 as the final answer (101 without an upgrade asked for) or over 599: not an answer a client of a reverse proxy can be given',
    applies: (r) => r.status > 599 || r.status < 200,
  },
];

/** Judge a case: `answer` the model's bytes (then its close, when the case closes), `client` what the client read. */
export function judgeResponseCase(c: ResponseCase, id: string, answer: Buffer, client: Buffer): Verdict {
  const ref = llhttpResponses(answer, [c.method], c.close);
  const R = ref.responses.find((r) => r.status >= 200 || r.status === 101);
  // Read whole: what follows it (bytes after the body) is no part of it.
  const refOk = R !== undefined && R.complete;
  const got = llhttpResponses(client, [c.method], true);
  if (got.error !== undefined && got.error !== 'HPE_INVALID_EOF_STATE') return { kind: 'answer', detail: `the client read answer bytes llhttp refuses (${got.error})` };
  const F = got.responses.find((r) => r.status >= 200);
  if (F === undefined) return { kind: 'answer', detail: `the client read no answer${refOk ? ` (llhttp reads the model's ${R.status})` : ''}` };
  if (!F.complete) return refOk ? { kind: 'answer', detail: `the client read the answer cut short; llhttp reads the model's whole` } : { kind: 'fine', detail: '' };
  const xcase = field(F, 'x-case')[0];
  // The gateway's own error: a 502 for an answer it cannot frame, a 503 for none at all (the model
  // closed first), a 504 for one that never ends: all fine where llhttp cannot read the answer whole.
  if (xcase === undefined && F.status >= 500) {
    if (!refOk) return { kind: 'fine', detail: '' };
    if (F.status !== 502) return { kind: 'answer', detail: `the gateway answered ${F.status} ${/"info":"((?:[^"\\]|\\.)*)"/.exec(F.body)?.[1] ?? ''}; llhttp reads the model's ${R.status} whole` };
    const rule = RESPONSE_RULES.find((rr) => rr.applies(R, answer.toString('latin1')));
    if (rule === undefined) return { kind: 'unexplained', detail: `502 ${/"info":"((?:[^"\\]|\\.)*)"/.exec(F.body)?.[1] ?? ''}; llhttp reads the model's ${R.status} whole` };
    return { kind: 'stricter', detail: rule.name };
  }
  if (xcase !== id)
    return { kind: 'answer', detail: `the client read ${xcase === undefined ? `an answer (${F.status} ${F.body.slice(0, 160)}) that is not the model's` : `the answer of ${xcase}`}, not its own` };
  if (!refOk) return { kind: 'lenient', detail: `the client read the model's ${F.status} whole; llhttp ${ref.error ? `refuses it (${ref.error})` : 'does not read its end'}` };
  if (F.status !== R.status) return { kind: 'framing', detail: `status ${F.status} at the client, ${R.status} from the model` };
  if (F.body !== R.body)
    return { kind: 'framing', detail: `body ${JSON.stringify(F.body.slice(0, 80))} (${F.body.length} bytes) at the client, llhttp read ${JSON.stringify(R.body.slice(0, 80))} (${R.body.length})` };
  const mine = endToEnd(F.rawHeaders);
  const theirs = endToEnd(R.rawHeaders);
  if (mine.join('\n') !== theirs.join('\n')) return { kind: 'framing', detail: `fields at the client ${JSON.stringify(mine)}, the model sent ${JSON.stringify(theirs)}` };
  return { kind: 'fine', detail: '' };
}
