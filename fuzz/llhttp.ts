/**
 * llhttp, Node's own HTTP/1.1 parser (the one behind `node:http`'s server and client), called
 * directly and strict (no lenient flag, as `node:http` runs it without `insecureHTTPParser`): the
 * reference the fuzzer (fuzz/) and the edge tests compare the gateway's reading with. `_http_common`
 * is Node's module that holds it; the running Node's llhttp is the one compared against.
 */
import { createRequire } from 'node:module';

interface ParserClass {
  new (): Parser;
  REQUEST: number;
  RESPONSE: number;
  kLenientNone: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | (Error & { code: string; bytesParsed?: number });
  finish(): undefined | (Error & { code: string });
  /** Release the native parser (without it, each parser and what its callbacks hold stays alive). */
  close(): void;
  [callback: number]: unknown;
}

const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass; methods: string[] };
const { HTTPParser, methods } = common;

/** Node's default --max-http-header-size: the oracle's head limit, which the fuzzers give the gateway under test (FUZZ_ARGS). */
export const NODE_MAX_HEADER_SIZE = 16 * 1024;

export interface LlhttpRequest {
  readonly method: string;
  readonly target: string;
  readonly versionMinor: number;
  /** `[name, value, …]` as `node:http` gives them (IncomingMessage.rawHeaders). */
  readonly rawHeaders: string[];
  /** llhttp's keep-alive verdict for this message. */
  readonly keepAlive: boolean;
  readonly upgrade: boolean;
  /** The decoded body (latin1). */
  body: string;
  /** The message ended (its body whole). */
  complete: boolean;
}

/**
 * What llhttp reads of `bytes` (strict, as `node:http` runs it): the requests it started, then its
 * error code, if any. Given as pieces, each is one `execute` (one socket read).
 */
export function llhttp(bytes: Buffer | readonly Buffer[], maxHeaderSize = NODE_MAX_HEADER_SIZE): { requests: LlhttpRequest[]; error: string | undefined } {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, maxHeaderSize, HTTPParser.kLenientNone);
  const requests: LlhttpRequest[] = [];
  // Node's parser hands a long head over in parts (kOnHeaders, with the target so far) before its end.
  let pending: string[] = [];
  let pendingUrl = '';
  p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    pending.push(...headers);
    pendingUrl += url;
  };
  p[HTTPParser.kOnHeadersComplete] = (
    _major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    _s: unknown,
    _m: unknown,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    requests.push({ method: methods[method]!, target: url ?? pendingUrl, versionMinor: minor, rawHeaders: headers ?? pending, keepAlive, upgrade, body: '', complete: false });
    pending = [];
    pendingUrl = '';
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => void (requests[requests.length - 1]!.body += Buffer.from(b).toString('latin1'));
  p[HTTPParser.kOnMessageComplete] = () => {
    requests[requests.length - 1]!.complete = true;
    // Trailer fields came as headers: they belong to no next request.
    pending = [];
    pendingUrl = '';
  };
  p[HTTPParser.kOnExecute] = () => undefined;
  let r: ReturnType<Parser['execute']> = 0;
  for (const piece of Buffer.isBuffer(bytes) ? [bytes] : bytes) {
    r = p.execute(piece);
    if (typeof r !== 'number') break;
  }
  p.close();
  return { requests, error: typeof r === 'number' ? undefined : r.code };
}

export interface LlhttpResponse {
  readonly status: number;
  readonly reason: string;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly rawHeaders: string[];
  readonly keepAlive: boolean;
  body: string;
  complete: boolean;
}

/**
 * What llhttp reads of answers to requests of `methods` (in order: a 1xx interim answer takes no
 * place), `bytes` then the connection's end when `eof` (a body delimited by the close ends there):
 * the messages it read, then its error code, if any, and how many bytes it took. For the client's
 * side (the gateway's answers) and for a model's answer (the response fuzzer).
 */
export function llhttpResponses(bytes: Buffer, methods: readonly string[], eof: boolean, maxHeaderSize = 80 * 1024): { responses: LlhttpResponse[]; error: string | undefined; parsed: number } {
  const p = new HTTPParser();
  p.initialize(HTTPParser.RESPONSE, {}, maxHeaderSize, HTTPParser.kLenientNone);
  const responses: LlhttpResponse[] = [];
  let finals = 0;
  let pending: string[] = [];
  p[HTTPParser.kOnHeaders] = (headers: string[]) => void pending.push(...headers);
  p[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, reason: string, _up: boolean, keepAlive: boolean) => {
    responses.push({ status, reason, versionMajor: major, versionMinor: minor, rawHeaders: headers ?? pending, keepAlive, body: '', complete: false });
    pending = [];
    if (status < 200) return 0;
    // No body after HEAD (what node:http's client tells llhttp).
    return methods[finals++] === 'HEAD' ? 1 : 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => void (responses[responses.length - 1]!.body += Buffer.from(b).toString('latin1'));
  p[HTTPParser.kOnMessageComplete] = () => void (responses[responses.length - 1]!.complete = true);
  p[HTTPParser.kOnExecute] = () => undefined;
  const r = p.execute(bytes);
  const end = typeof r !== 'number' || !eof ? undefined : p.finish();
  p.close();
  if (typeof r !== 'number') return { responses, error: r.code, parsed: r.bytesParsed ?? 0 };
  return { responses, error: end?.code, parsed: r };
}
