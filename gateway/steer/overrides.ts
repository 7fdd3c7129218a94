/**
 * A data plane's live shares of steered deployments (routing/steering/shares.ts), as the control plane
 * last sent them, and the picker that applies them. A request to a steered group costs one
 * WeakMap lookup: the steered form of each group is built once per change of the shares, not per
 * request; other groups cost nothing (`group.steered` is false).
 */
import { steerGroup, type SteerOverride } from '../../routing/steering/shares.js';
import type { Backend, Picker, RouteGroup } from '../../routing/types.js';

/** The shares as sent between processes: deployment → override, in plain JSON. */
export type SteerOverridesWire = Record<string, { percents: Record<string, number>; mirrors: Record<string, number>; lead: string | null }>;

export function toWire(overrides: ReadonlyMap<string, SteerOverride>): SteerOverridesWire {
  const out: SteerOverridesWire = {};
  for (const [dep, o] of overrides) out[dep] = { percents: Object.fromEntries(o.percents), mirrors: Object.fromEntries(o.mirrors), lead: o.lead };
  return out;
}

export function fromWire(wire: SteerOverridesWire): Map<string, SteerOverride> {
  const out = new Map<string, SteerOverride>();
  for (const [dep, o] of Object.entries(wire)) out.set(dep, { percents: new Map(Object.entries(o.percents)), mirrors: new Map(Object.entries(o.mirrors)), lead: o.lead });
  return out;
}

export class SteerOverrides {
  private current: ReadonlyMap<string, SteerOverride> = new Map();
  private cache = new WeakMap<RouteGroup, RouteGroup>();

  /** Replace every deployment's shares at once. */
  set(overrides: ReadonlyMap<string, SteerOverride>): void {
    this.current = overrides;
    this.cache = new WeakMap();
  }

  get(): ReadonlyMap<string, SteerOverride> {
    return this.current;
  }

  /** The group with its live shares (the table's own while the deployment has none). */
  readonly steer = (group: RouteGroup): RouteGroup => {
    let g = this.cache.get(group);
    if (!g) this.cache.set(group, (g = this.current.size === 0 ? group : steerGroup(group, this.current)));
    return g;
  };
}

/** `base` with live shares: steered groups are picked from as `overrides` says. */
export function steeredPicker(base: Picker, overrides: SteerOverrides): Picker {
  return {
    pick: (group: RouteGroup, eligible?: (b: Backend) => boolean, point?: number) => base.pick(group, eligible, point),
    mirror: (percent: number) => base.mirror(percent),
    steer: overrides.steer,
    ...(base.draw ? { draw: base.draw } : {}),
  };
}
