/**
 * The REST side of an external auth decision (ext-auth/policy.ts): a denial written as the auth
 * service gave it (an allowance's additions are rest/rest-request.ts's `allowed`).
 */
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import type { Deny } from '../auth/gate.js';
import { sendWhole } from '../edge/http-answer.js';

/** Headers of the auth service's answer never copied (the gateway frames the answer itself; an upgrade's too, rest/upgrade-exchange.ts). */
export const DENIAL_FRAMING: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', 'te']);

/**
 * The auth service's denial, as it came: its status, the headers it may return, its body. A body
 * still coming from the client is not read: the connection closes after the answer (lingering).
 */
export function sendRawDenial(req: RestRequest, res: RestResponse, v: Deny & { raw: NonNullable<Deny['raw']> }): void {
  const { headers, body } = v.raw;
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (DENIAL_FRAMING.has(name)) continue;
    const had = out[name];
    out[name] = had === undefined ? headers[i + 1]! : [...(Array.isArray(had) ? had : [had]), headers[i + 1]!];
  }
  out['content-length'] = String(body.length);
  if (!req.complete) out.connection = 'close';
  sendWhole(req, res, v.status, out, body);
}
