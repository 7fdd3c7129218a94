/**
 * Prefixes the operator grants a namespace's custom Mappings beyond its own /seldon/<namespace>/
 * (--custom-config-prefixes NAMESPACE=/prefix/,…), under the default custom-config scope: that
 * namespace's Mappings may claim paths under them, and no other namespace's may (the others stay
 * under their own /seldon/<namespace>/, and no grant is under /seldon/; grants never overlap
 * across namespaces). Seldon's documented custom config (`prefix: /mycompany/ml/` in namespace seldon)
 * serves with `seldon=/mycompany/`, without lifting every tenant's bounds (`--custom-config-scope cluster`).
 */
/** Namespace → the prefixes granted to it (each starts and ends with `/`). */
export type PrefixGrants = ReadonlyMap<string, readonly string[]>;

/** The granted prefixes of `namespace` (empty without a grant). */
export const grantsOf = (grants: PrefixGrants | undefined, namespace: string): readonly string[] => grants?.get(namespace) ?? NONE;
const NONE: readonly string[] = [];

/** Parse `NAMESPACE=/prefix/` entries; throws an Error naming the entry at fault (the caller adds the flag). */
export function parsePrefixGrants(entries: readonly string[]): PrefixGrants {
  const out = new Map<string, string[]>();
  const owner = new Map<string, string>();
  for (const entry of entries) {
    const m = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)=(\/\S*)$/.exec(entry.trim());
    if (!m) throw new Error(`"${entry}" is not NAMESPACE=/prefix/`);
    const [, ns, , prefix] = m as unknown as [string, string, string, string];
    if (!prefix.endsWith('/') || prefix === '/') throw new Error(`"${entry}": the prefix must end with "/" and be more than "/" (a grant covers whole path segments)`);
    // /seldon/<ns>/ is each namespace's own: a grant there would take one tenant's paths for another.
    if (prefix.startsWith('/seldon/')) throw new Error(`"${entry}": paths under /seldon/ are their namespaces' own and cannot be granted`);
    for (const [p, o] of owner) {
      if (o !== ns && (p.startsWith(prefix) || prefix.startsWith(p))) throw new Error(`"${entry}": ${prefix} overlaps ${p}, granted to namespace "${o}"`);
    }
    owner.set(prefix, ns);
    const list = out.get(ns) ?? [];
    if (!list.includes(prefix)) list.push(prefix);
    out.set(ns, list);
  }
  return out;
}
