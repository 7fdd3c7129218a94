/**
 * The counters a gate refusal moves (edge/errors.ts `Deny.tally`), counted by metrics.ts `denied`.
 * Defined here, by what counts them, as edge/ imports observe/ and not the other way.
 */
import type { Backend } from '../../routing/types.js';

/** None of them is a model's outcome. */
export interface DenialTally {
  /** The routed request refused: counted on its backend's requests with the refusal's code. */
  readonly backend?: Backend | undefined;
  /** A front-end request whose token's deployment has no route for it: counted as unrouted, with this reason. */
  readonly unrouted?: string | undefined;
  /** The OAuth check's failure (seldon_gateway_auth_failures_total). */
  readonly authFailure?: string | undefined;
  /** The rate-limit bucket that refused it (seldon_gateway_rate_limited_total). */
  readonly bucket?: string | undefined;
  /** Which check refused it (jwt, oauth, ext-auth, rate-limit), for the decision record of a logged request. */
  readonly check?: string | undefined;
}
