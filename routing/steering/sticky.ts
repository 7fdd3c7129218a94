/**
 * Sticky assignment's spec (docs/routing.md#sticky-assignment): `header:<name>` or `cookie`, read
 * the same way from `seldon.io/gateway-sticky` and from a rollout's `sticky` field.
 */
import { checkHeaderName } from '../values/syntax.js';

/** The key that keeps a client on one predictor (docs/rollouts.md#sticky). */
export type StickySpec = { readonly kind: 'header'; readonly name: string } | { readonly kind: 'cookie' };

export const STICKY_ANNOTATION = 'seldon.io/gateway-sticky';

/** `header:<name>` or `cookie` (spaces around the value and the name ignored): the spec, or an error sentence quoting the value. */
export function parseSticky(raw: string): StickySpec | string {
  const v = raw.trim();
  if (v === 'cookie') return { kind: 'cookie' };
  if (v.startsWith('header:')) {
    const name = v.slice('header:'.length).trim().toLowerCase();
    const bad = checkHeaderName(name);
    return bad ? `${JSON.stringify(raw)}: ${bad}` : { kind: 'header', name };
  }
  return `${JSON.stringify(raw)} is not header:<name> or cookie`;
}
