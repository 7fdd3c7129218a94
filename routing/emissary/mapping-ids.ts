/**
 * Which gateway a custom Mapping belongs to (docs/routing.md#ambassador-id): its own `ambassador_id`, else
 * `default`, as Emissary's config.py `good_ambassador_id` gives every resource. The deployment's
 * `seldon.io/ambassador-id` does not reach it: Seldon Core 1's operator copies seldon.io/ambassador-config onto the
 * Service as written (operator/controllers/ambassador/v1.go, GetAmbassadorConfigs) and writes the id into the
 * Mappings it generates only.
 */

/** A Mapping's `ambassador_id`: null when absent, the ids as written (an empty list names no gateway), or why it is refused. */
export function readMappingIds(raw: unknown): readonly string[] | null | { readonly error: string } {
  if (raw === undefined) return null;
  const ids: unknown[] = Array.isArray(raw) ? raw : [raw];
  if (!ids.every((x) => typeof x === 'string')) return { error: `ambassador_id ${JSON.stringify(raw)} is not a string or a list of strings` };
  return ids as string[];
}

/** Whether the gateway whose AMBASSADOR_ID is `gatewayId` serves a Mapping with these ids (null: none written). */
export function servedHere(ids: readonly string[] | null, gatewayId: string): boolean {
  return (ids ?? ['default']).includes(gatewayId);
}

/** The reason a Mapping without ids is skipped by a gateway that is not `default`, though its deployment names that gateway. */
export function untaggedSkipped(mapping: string, gatewayId: string): string {
  return (
    `Mapping "${mapping}" skipped: it has no ambassador_id, so Emissary serves it on the "default" gateway only, not on "${gatewayId}" ` +
    `(the deployment's seldon.io/ambassador-id reaches generated Mappings only): add ambassador_id: ${gatewayId} to serve it here`
  );
}

/** The reason line `untaggedSkipped` writes, read back by migrate-check: the Mapping's name and why. */
export const SKIPPED_MAPPING = /^Mapping "(.*?)" skipped: (.*)$/;
