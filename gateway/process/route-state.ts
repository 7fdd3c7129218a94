/**
 * The live routing table of one process: source events in, a new immutable table swapped in
 * whole. Requests read `current` once, at match time, so a request in flight keeps the decision
 * (and table) it started with.
 */
import type { SourceEvent } from '../../source/source.js';
import { TableBuilder } from '../../routing/table/builder.js';
import type { CompileOptions, DeploymentReport, RouteTable } from '../../routing/types.js';
import type { LiveTable, TableChange } from '../../routing/table/live.js';

export type { TableChange };

export class RouteState implements LiveTable {
  private readonly builder: TableBuilder;
  private table: RouteTable;
  private appliedAt = new Date();
  private readonly listeners: ((table: RouteTable, change: TableChange) => void)[] = [];

  constructor(options: Readonly<CompileOptions>) {
    this.builder = new TableBuilder(options);
    this.table = this.builder.build();
  }

  get options(): Readonly<CompileOptions> {
    return this.builder.options;
  }

  get current(): RouteTable {
    return this.table;
  }

  get lastAppliedAt(): Date {
    return this.appliedAt;
  }

  onChange(listener: (table: RouteTable, change: TableChange) => void): void {
    this.listeners.push(listener);
  }

  /** Apply a batch of source events and swap in the new table. */
  apply(events: readonly SourceEvent[]): TableChange {
    const upserted: string[] = [];
    const deleted: string[] = [];
    for (const e of events) {
      if (e.type === 'upsert') {
        this.builder.upsert(e.deployment);
        upserted.push(e.key);
      } else {
        this.builder.remove(e.key);
        deleted.push(e.key);
      }
    }
    return this.swap(upserted, deleted);
  }

  /** Compile every deployment again under new options (the JWT providers file changed) and swap in the table. */
  reconfigure(options: Readonly<CompileOptions>): TableChange {
    return this.swap(this.builder.reconfigure(options), []);
  }

  private swap(upserted: string[], deleted: string[]): TableChange {
    const before = this.table.deployments;
    const table = this.builder.build();
    const reports = new Map<string, DeploymentReport | undefined>();
    for (const [k, r] of table.deployments) if (before.get(k) !== r) reports.set(k, r);
    for (const k of before.keys()) if (!table.deployments.has(k)) reports.set(k, undefined);
    this.table = table;
    this.appliedAt = new Date();
    const change: TableChange = { generation: table.generation, upserted, deleted, reports };
    for (const l of this.listeners) l(table, change);
    return change;
  }
}
