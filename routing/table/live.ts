/**
 * The live routing table as the request path reads it, and what each swap of it changed: the seam
 * between the routing core's immutable tables and the process that swaps them
 * (gateway/process/route-state.ts).
 */
import type { DeploymentReport, RouteTable } from '../types.js';

/** What one swap of the live table changed (gateway/process/route-state.ts makes it). */
export interface TableChange {
  readonly generation: number;
  readonly upserted: readonly string[];
  readonly deleted: readonly string[];
  /** Deployments whose report (state or reasons) changed, with the new report (undefined: gone). */
  readonly reports: ReadonlyMap<string, DeploymentReport | undefined>;
}

/**
 * The live table as the request path reads it: `current` once per request, at match time, so a
 * request keeps the table it matched on (gateway/process/route-state.ts keeps it; the proxies, the
 * gate and the OAuth front end read it through this).
 */
export interface LiveTable {
  readonly current: RouteTable;
  onChange(listener: (table: RouteTable, change: TableChange) => void): void;
}
