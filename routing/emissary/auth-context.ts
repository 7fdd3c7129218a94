/**
 * A Mapping's `auth_context_extensions`: names and values the external auth service is told about the
 * route, as Emissary sets them on its route's ext_authz `check_settings.context_extensions` (Envoy puts
 * them in the gRPC CheckRequest's `attributes.context_extensions`; an HTTP auth service's check request
 * has no place for them, and Envoy sends none). A map of strings, as Emissary's CRD types it: any other
 * value drops the Mapping with the reason, never sent changed.
 */

/** The extensions as written, in order; null when the Mapping sets none. */
export type AuthContextExtensions = readonly (readonly [string, string])[];

export function authContextExtensionsOf(raw: unknown): AuthContextExtensions | null | { readonly error: string } {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) return { error: 'auth_context_extensions must map names to strings' };
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') return { error: `auth_context_extensions.${k} must be a string, not ${v === null ? 'null' : typeof v}` };
    out.push([k, v]);
  }
  return out.length === 0 ? null : out;
}
