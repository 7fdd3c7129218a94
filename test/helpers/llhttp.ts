/**
 * llhttp, Node's own HTTP/1.1 parser (the one behind `node:http`'s server), called directly: the
 * oracle of what a request's head and body are, for the tests that compare the gateway's reading
 * with it (test/gateway/edge/http1-lane.test.ts, test/gateway/edge/request-smuggling.test.ts). `_http_common` is Node's
 * module that holds it; the running Node's llhttp is the one tested against.
 */
import { createRequire } from 'node:module';

interface ParserClass {
  new (): Parser;
  REQUEST: number;
  kLenientNone: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | (Error & { code: string });
  [callback: number]: unknown;
}

const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass; methods: string[] };
const { HTTPParser, methods } = common;

export interface LlhttpRequest {
  readonly method: string;
  readonly target: string;
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

/** What llhttp reads of `bytes` (strict, as `node:http` runs it): the requests it started, then its error code, if any. */
export function llhttp(bytes: Buffer, maxHeaderSize = 16 * 1024): { requests: LlhttpRequest[]; error: string | undefined } {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, maxHeaderSize, HTTPParser.kLenientNone);
  const requests: LlhttpRequest[] = [];
  let pending: string[] = [];
  p[HTTPParser.kOnHeaders] = (headers: string[]) => void pending.push(...headers);
  p[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[] | undefined, method: number, url: string, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) => {
    requests.push({ method: methods[method]!, target: url, rawHeaders: headers ?? pending, keepAlive, upgrade, body: '', complete: false });
    pending = [];
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => void (requests[requests.length - 1]!.body += Buffer.from(b).toString('latin1'));
  p[HTTPParser.kOnMessageComplete] = () => void (requests[requests.length - 1]!.complete = true);
  p[HTTPParser.kOnExecute] = () => undefined;
  const r = p.execute(bytes);
  return { requests, error: typeof r === 'number' ? undefined : r.code };
}
