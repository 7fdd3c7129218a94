/**
 * The request side's verdict on one case: what the gateway did with a stream (what the model
 * received, what the client read) against what llhttp reads of the same bytes. Pure.
 *
 * Classes: `fine` (both read it the same way, or both refuse), `stricter` (the gateway refused a
 * request llhttp reads, by a rule of fuzz/stricter-rules.ts), and the defects: `lenient` (the
 * model received, whole, a request llhttp does not read whole), `framing` (both read a request,
 * differently: method, target, fields or body at the model), `answer` (what the client read is
 * not one well-framed answer per request, each its own), `unexplained` (a refusal no rule names).
 */
import { llhttp, llhttpResponses, NODE_MAX_HEADER_SIZE, type LlhttpRequest, type LlhttpResponse } from './llhttp.js';
import type { ModelRequest } from './model.js';
import { stricterRule } from './stricter-rules.js';

export type DefectClass = 'lenient' | 'framing' | 'answer' | 'unexplained';

export interface Verdict {
  readonly kind: 'fine' | 'stricter' | DefectClass;
  /** What diverged, or the rule that made the gateway stricter. */
  readonly detail: string;
}

/** The deployment the fuzzers' targets name, and what the gateway strips of them. */
const PREFIX = '/seldon/f/m';

/** Request fields the gateway drops or sets itself (docs/edge.md "What passes through"). */
const NOT_END_TO_END = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-seldon-predictor',
  'content-length',
  'host',
]);

/** `[name, value]` of the fields that go from the client to the model unchanged. */
function endToEnd(raw: readonly string[], dropAlso: ReadonlySet<string>): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'connection') for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (NOT_END_TO_END.has(n) || n.startsWith('proxy-') || n.startsWith('x-envoy-') || named.has(n) || dropAlso.has(n)) continue;
    out.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  return out;
}

/** Where the gateway sends a target: the path after the deployment's prefix, runs of `/` as sent (Envoy's default, no `merge_slashes`); undefined: no route. */
export function forwardedTarget(target: string): string | undefined {
  const abs = /^https?:\/\/[^/?#]*/i.exec(target);
  const t = abs ? target.slice(abs[0].length) : target;
  const q = t.indexOf('?');
  const path = q < 0 ? t : t.slice(0, q);
  if (!path.startsWith(`${PREFIX}/`)) return undefined;
  return path.slice(PREFIX.length) + (q < 0 ? '' : t.slice(q));
}

function sameRequest(r: LlhttpRequest, g: ModelRequest): string | undefined {
  if (g.method !== r.method) return `method ${JSON.stringify(g.method)} at the model, ${JSON.stringify(r.method)} in llhttp`;
  const target = forwardedTarget(r.target);
  if (g.target !== target) return `target ${JSON.stringify(g.target)} at the model, ${JSON.stringify(target)} from llhttp's ${JSON.stringify(r.target)}`;
  if (g.body !== r.body) return `body ${JSON.stringify(g.body.slice(0, 80))} (${g.body.length} bytes) at the model, llhttp read ${JSON.stringify(r.body.slice(0, 80))} (${r.body.length})`;
  const clientHasId = r.rawHeaders.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'x-request-id');
  const mine = endToEnd(g.rawHeaders, new Set(clientHasId ? [] : ['x-request-id']));
  const theirs = endToEnd(r.rawHeaders, new Set());
  if (mine.join('\n') !== theirs.join('\n')) return `fields at the model ${JSON.stringify(mine)}, llhttp read ${JSON.stringify(theirs)}`;
  const hosts = r.rawHeaders.filter((_v, i) => i % 2 === 1 && r.rawHeaders[i - 1]!.toLowerCase() === 'host');
  const modelHost = g.rawHeaders.find((_v, i) => i % 2 === 1 && g.rawHeaders[i - 1]!.toLowerCase() === 'host');
  const authority = /^https?:\/\/([^/?#]*)/i.exec(r.target)?.[1];
  if (hosts.length === 1 && modelHost !== (authority ?? hosts[0])) return `Host ${JSON.stringify(modelHost)} at the model, ${JSON.stringify(authority ?? hosts[0])} sent`;
  return undefined;
}

/** The error code in a gateway's JSON error body, for the verdict's words. */
const said = (a: LlhttpResponse): string => /"info":"((?:[^"\\]|\\.)*)"/.exec(a.body)?.[1]?.slice(0, 120) ?? '';

/** How a case's stream ends: a request after it that closes (`sentinel`), or the client's half-close (`fin`). */
export type CaseEnd = 'sentinel' | 'fin' | 'none';

/**
 * How to end the stream `bytes`: where llhttp reads it to a message boundary, a last request with
 * `Connection: close` (the gateway then answers and closes, with no quiet spell to wait out);
 * where llhttp refuses it, nothing (the gateway must close by itself after its refusal); where it
 * stops inside a request, the client's half-close (a client that gives up: what it had in flight
 * may go unanswered, as `node:http` and nginx treat a client's end).
 */
export function caseEnd(bytes: Buffer): CaseEnd {
  const ref = llhttp(bytes, NODE_MAX_HEADER_SIZE);
  if (ref.error !== undefined) return 'none';
  const last = ref.requests[ref.requests.length - 1];
  if (last !== undefined && !last.complete) return 'fin';
  if (last !== undefined && !last.keepAlive) return 'none';
  // Bytes after the last whole request that start one (a request line not yet ended): half-close.
  return 'sentinel';
}

/** The request that ends a case whose stream llhttp reads to a boundary. */
export function sentinel(id: string): string {
  return `GET /seldon/f/m/${id}.e HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n`;
}

/**
 * Judge a case: `bytes` the client sent (then its half-close when `end` is `fin`), `client` what
 * it read until the gateway closed, `got` what the model received of the case, in order.
 */
export function judgeRequestCase(bytes: Buffer, client: Buffer, got: readonly ModelRequest[], end: CaseEnd): Verdict {
  const ref = llhttp(bytes, NODE_MAX_HEADER_SIZE);
  // Answers in request order; one past them (a refusal of bytes llhttp did not read as a request) is read as a GET's.
  const answers = llhttpResponses(
    client,
    ref.requests.map((r) => r.method),
    true,
  );
  const finals = answers.responses.filter((a) => a.status >= 200);
  if (answers.error !== undefined && answers.error !== 'HPE_INVALID_EOF_STATE') return { kind: 'answer', detail: `the client read answer bytes llhttp refuses (${answers.error})` };
  if (finals.some((a) => !a.complete)) return { kind: 'answer', detail: 'the client read an answer cut short' };
  let stricter: string | undefined;
  let gi = 0;
  const verdict = (): Verdict => ({ kind: stricter === undefined ? 'fine' : 'stricter', detail: stricter ?? '' });
  for (let k = 0; k < ref.requests.length; k++) {
    const r = ref.requests[k]!;
    const a = finals[k];
    // The model's next request is this one when it has this one's target (or this one's framing went wrong).
    const g = got[gi];
    if (g !== undefined && (g.target === forwardedTarget(r.target) || a?.status === 200)) {
      gi++;
      if (g.error !== undefined) return { kind: 'framing', detail: `request ${k}: the model could not read what the gateway sent (llhttp: ${g.error})` };
      if (g.complete && !r.complete) return { kind: 'lenient', detail: `request ${k} reached the model whole; llhttp ${ref.error ? `refused it (${ref.error})` : 'did not read its end'}` };
      if (!g.complete) return verdict();
      const diff = sameRequest(r, g);
      if (diff !== undefined) return { kind: 'framing', detail: `request ${k}: ${diff}` };
      if (a === undefined) {
        // A client that gave up mid-request may lose the answers it had in flight.
        if (end === 'fin') return verdict();
        return { kind: 'answer', detail: `request ${k} was served, its answer never reached the client` };
      }
      if (a.status !== 200 || a.body !== (g.method === 'HEAD' ? '' : `{"got":${JSON.stringify(g.target)}}`))
        return { kind: 'answer', detail: `request ${k}'s answer is ${a.status} ${JSON.stringify(a.body.slice(0, 100))}, not the model's answer to it` };
      continue;
    }
    // Not forwarded: refused, unanswered, or cut off by the stream's end.
    if (!r.complete) break;
    if (a === undefined) {
      if (end === 'fin') return verdict();
      return { kind: 'answer', detail: `request ${k} (${r.method} ${JSON.stringify(r.target)}), whole for llhttp, was neither forwarded nor answered` };
    }
    if (a.status < 400) return { kind: 'answer', detail: `request ${k} was answered ${a.status} without reaching the model` };
    if (a.status === 404 && forwardedTarget(r.target) === undefined) {
      // No route for it: the routing table's answer, not a matter of framing.
    } else {
      const rule = stricterRule(r, a.status);
      if (rule === undefined) return { kind: 'unexplained', detail: `request ${k} (${r.method} ${JSON.stringify(r.target)}) refused ${a.status} "${said(a)}"; llhttp reads it` };
      stricter ??= rule.name;
    }
    if (!a.keepAlive) break;
  }
  const extra = got.slice(gi).find((g) => g.complete);
  if (extra !== undefined)
    return {
      kind: 'lenient',
      detail: `${JSON.stringify(extra.target)} reached the model whole: llhttp read ${ref.requests.length} request(s) (${ref.error ?? 'then the end'}), the gateway ${gi} before it`,
    };
  if (finals.length > ref.requests.length + 1) return { kind: 'answer', detail: `${finals.length} answers to ${ref.requests.length} requests` };
  return verdict();
}
