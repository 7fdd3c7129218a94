/**
 * Optional per-request observation on the REST hot path: the `x-seldon-predictor` answer header
 * (`--predictor-header`), the sampled access log (`--access-log-sample`) and the capture of the
 * primary's answer for shadow comparison (`--shadow-compare`, requests that mirror).
 *
 * The proxy holds one `RestObserve` only when one of these is on; without it an exchange does no
 * extra work. `begin` returns a tap only when the request needs one: a shared per-backend tap for
 * the header alone, a per-request one when this request is logged or its answer captured.
 */
import type { IncomingMessage } from 'node:http';
import type { AccessLog } from './access-log.js';
import type { PrimaryCapture, ShadowComparer } from './shadow-compare.js';
import type { Backend, Routed } from '../../routing/types.js';

/** The answer header naming the predictor that served a request. */
export const PREDICTOR_HEADER = 'x-seldon-predictor';

/** What an exchange tells its tap. */
export interface ResponseTap {
  /** The primary's answer, captured for comparison with this request's mirrors. */
  readonly capture: PrimaryCapture | undefined;
  /** The upstream answer's head is about to be sent; `headers` (client-bound) may be added to. */
  head(status: number, headers: string[], raw: Buffer[]): void;
  /** A chunk of the answer sent to the client. */
  body(chunk: Buffer): void;
  /** The exchange ended: the status counted in metrics; `complete`, a whole upstream answer was sent. */
  end(status: number, upstreamSeconds: number | null, complete: boolean): void;
}

/** Replace any `x-seldon-predictor` the upstream sent with the gateway's own. */
export function setPredictorHeader(headers: string[], predictor: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.length === PREDICTOR_HEADER.length && headers[i]!.toLowerCase() === PREDICTOR_HEADER) headers.splice(i, 2);
  }
  headers.push(PREDICTOR_HEADER, predictor);
}

function requestId(headers: readonly string[]): string | undefined {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.length === 12 && headers[i]!.toLowerCase() === 'x-request-id') return headers[i + 1];
  }
  return undefined;
}

/** The header alone: no per-request state. */
class HeaderTap implements ResponseTap {
  readonly capture = undefined;
  constructor(private readonly predictor: string) {}
  head(_status: number, headers: string[]): void {
    setPredictorHeader(headers, this.predictor);
  }
  body(): void {}
  end(): void {}
}

class RequestTap implements ResponseTap {
  private readonly startedAt = performance.now();

  constructor(
    private readonly backend: Backend,
    private readonly predictorHeader: boolean,
    readonly capture: PrimaryCapture | undefined,
    private readonly log: { readonly accessLog: AccessLog; readonly req: IncomingMessage; readonly upstreamHeaders: readonly string[]; readonly upstream: string; readonly mirrors: number } | undefined,
  ) {}

  head(status: number, headers: string[], raw: Buffer[]): void {
    if (this.predictorHeader) setPredictorHeader(headers, this.backend.origin.predictor);
    this.capture?.head(status, raw);
  }

  body(chunk: Buffer): void {
    this.capture?.data(chunk);
  }

  end(status: number, upstreamSeconds: number | null, complete: boolean): void {
    this.capture?.end(complete);
    const l = this.log;
    if (!l) return;
    const url = l.req.url ?? '/';
    const q = url.indexOf('?');
    const o = this.backend.origin;
    l.accessLog.write({
      reqId: requestId(l.upstreamHeaders),
      protocol: 'rest',
      method: l.req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q),
      namespace: o.namespace,
      deployment: o.deployment,
      predictor: o.predictor,
      upstream: l.upstream,
      status,
      durationMs: Math.round((performance.now() - this.startedAt) * 1000) / 1000,
      upstreamMs: upstreamSeconds === null ? null : Math.round(upstreamSeconds * 1e6) / 1000,
      mirrors: l.mirrors,
    });
  }
}

export interface RestObserveOptions {
  readonly predictorHeader: boolean;
  readonly accessLog: AccessLog | undefined;
  readonly comparer: ShadowComparer | undefined;
}

export class RestObserve {
  private readonly headerTaps = new WeakMap<Backend, HeaderTap>();

  constructor(readonly options: RestObserveOptions) {}

  /** Whether any option needs a `RestObserve` at all. */
  static needed(o: RestObserveOptions): boolean {
    return o.predictorHeader || o.accessLog !== undefined || o.comparer !== undefined;
  }

  /** The tap for one routed request, or undefined when this request needs none. */
  begin(req: IncomingMessage, decision: Routed, upstreamHeaders: readonly string[], upstream: string): ResponseTap | undefined {
    const { predictorHeader, accessLog, comparer } = this.options;
    const capture = comparer !== undefined && decision.mirrors.length > 0 ? comparer.capture(decision.backend) : undefined;
    const logged = accessLog !== undefined && accessLog.sampled();
    if (capture === undefined && !logged) {
      if (!predictorHeader) return undefined;
      let tap = this.headerTaps.get(decision.backend);
      if (!tap) this.headerTaps.set(decision.backend, (tap = new HeaderTap(decision.backend.origin.predictor)));
      return tap;
    }
    return new RequestTap(decision.backend, predictorHeader, capture, logged ? { accessLog: accessLog!, req, upstreamHeaders, upstream, mirrors: decision.mirrors.length } : undefined);
  }
}
