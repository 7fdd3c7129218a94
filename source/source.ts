/**
 * The contract every source of SeldonDeployments implements (manifest directory, Kubernetes watch).
 *
 * A source turns the outside world into add/update/delete events keyed by `namespace/name`, and
 * says `synced` once its initial state has been delivered. It knows nothing of routes. It never
 * throws at its caller: trouble is reported through `onProblem` and the source keeps going.
 */
import type { SeldonDeployment } from '../routing/seldon/deployment.js';

export type SourceEvent = { readonly type: 'upsert'; readonly key: string; readonly deployment: SeldonDeployment } | { readonly type: 'delete'; readonly key: string };

export interface SourceSink {
  /** A batch of changes, applied together (sources coalesce bursts). */
  onEvents(events: readonly SourceEvent[]): void;
  /** The initial state has been delivered in full; called once. */
  onSynced(): void;
  /**
   * Something at `where` (a file path, or `kubernetes`) could not be read; the rest keeps flowing.
   * A later call with `message: null` says the problem at `where` is gone.
   */
  onProblem(where: string, message: string | null): void;
  /** Connection to the backing store changed (always true for files). */
  onConnected?(connected: boolean): void;
  /**
   * The source re-read everything (a Kubernetes relist after 410 Gone or a reconnect) and has
   * delivered the differences as ordinary events; for metrics and logs only.
   */
  onResync?(): void;
}

export interface DeploymentSource {
  start(sink: SourceSink): Promise<void>;
  stop(): Promise<void>;
}

/** `namespace/name`, with an empty namespace read as `default` (docs/routing.md#terms). */
export function deploymentKey(d: SeldonDeployment): string {
  const ns = d.metadata?.namespace || 'default';
  return `${ns}/${d.metadata?.name ?? ''}`;
}
