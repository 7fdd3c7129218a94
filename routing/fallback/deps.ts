/**
 * Deployments that fall back to another deployment (`seldon.io/gateway-fallback: {to: {deployment: …}}`,
 * docs/routing.md#fallback-models): the table says, in the report of each, when the one it names
 * does not exist (or serves no route) yet, and settles it again when that one comes or goes.
 */
import type { Backend } from '../types.js';

/** The `ns/name` of every deployment the specs' backends fall back to. */
export function fallbackDeploymentsOf(specs: readonly { readonly backend: Backend }[]): string[] {
  const keys = new Set<string>();
  for (const s of specs) {
    const f = s.backend.fallback;
    if (f !== null && f.to.kind === 'deployment') keys.add(`${s.backend.origin.namespace}/${f.to.name}`);
  }
  return [...keys].sort();
}

/** Who waits on whom; its owner (routing/table/builder.ts `TableBuilder`) sets a deployment's list on upsert and clears it on remove, so an entry goes with its last dependent. */
export class FallbackDependents {
  /** Deployment key → the deployments whose fallback names it. */
  private readonly waiting = new Map<string, Set<string>>();
  /** Deployment key → the deployments it names. */
  private readonly named = new Map<string, readonly string[]>();

  /** `dk` falls back to `targets` (replacing what it named before). */
  set(dk: string, targets: readonly string[]): void {
    this.clear(dk);
    if (targets.length === 0) return;
    this.named.set(dk, targets);
    for (const t of targets) {
      let deps = this.waiting.get(t);
      if (!deps) this.waiting.set(t, (deps = new Set()));
      deps.add(dk);
    }
  }

  /** `dk` is gone, or names nothing now. */
  clear(dk: string): void {
    for (const t of this.named.get(dk) ?? []) {
      const deps = this.waiting.get(t);
      deps?.delete(dk);
      if (deps && deps.size === 0) this.waiting.delete(t);
    }
    this.named.delete(dk);
  }

  /** The deployments whose report changes when `key` comes, changes or goes. */
  dependents(key: string): Iterable<string> {
    return this.waiting.get(key) ?? NONE;
  }

  /** What `dk`'s report says of the deployments it names that `serves` says do not serve. */
  missing(dk: string, serves: (key: string) => boolean): string[] {
    const out: string[] = [];
    for (const t of this.named.get(dk) ?? []) {
      if (!serves(t)) out.push(`seldon.io/gateway-fallback: deployment ${t} does not exist or serves no route: no fallback until it does`);
    }
    return out;
  }
}

const NONE: ReadonlySet<string> = new Set();
