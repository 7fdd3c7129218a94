/**
 * A SourceSink for source tests (manifest directory, Kubernetes): records every call and folds
 * events into a key → deployment map.
 */
import type { SourceEvent, SourceSink } from '../../source/source.js';
import type { SeldonDeployment } from '../../routing/seldon/deployment.js';

export class RecordingSink implements SourceSink {
  readonly batches: SourceEvent[][] = [];
  readonly calls: string[] = [];
  readonly problems: [string, string | null][] = [];
  readonly state = new Map<string, SeldonDeployment>();
  synced = false;
  resyncs = 0;
  connected: boolean | undefined;

  onEvents(events: readonly SourceEvent[]): void {
    this.calls.push('events');
    this.batches.push([...events]);
    for (const e of events) {
      if (e.type === 'upsert') this.state.set(e.key, e.deployment);
      else this.state.delete(e.key);
    }
  }
  onSynced(): void {
    this.calls.push('synced');
    this.synced = true;
  }
  onProblem(where: string, message: string | null): void {
    this.calls.push(message === null ? 'problem-cleared' : 'problem');
    this.problems.push([where, message]);
  }
  onConnected(connected: boolean): void {
    this.calls.push(`connected:${connected}`);
    this.connected = connected;
  }
  onResync(): void {
    this.calls.push('resync');
    this.resyncs++;
  }

  get problem(): string | null | undefined {
    return this.problems.at(-1)?.[1];
  }
  /** How many events (of any type) named `key` were delivered. */
  eventsFor(key: string): SourceEvent[] {
    return this.batches.flat().filter((e) => e.key === key);
  }
  traffic(key: string): unknown {
    return this.state.get(key)?.spec?.predictors?.[0]?.traffic;
  }
  /** The last message reported for `where`: undefined = never reported, null = cleared. */
  problemAt(where: string): string | null | undefined {
    return this.problems.findLast(([w]) => w === where)?.[1];
  }
  keys(): string[] {
    return [...this.state.keys()].sort();
  }
}
