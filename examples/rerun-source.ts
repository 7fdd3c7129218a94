/**
 * A DeploymentSource that passes another's events through and can start a rollout's run again:
 * `rerun(key)` sends the deployment once more with its canary predictor relabelled, which is a
 * change of the canary's spec and so a new run (docs/rollouts.md#phases-and-actions). The quick
 * start uses it so that its demo rollout, once promoted, starts over and the admin page keeps
 * showing one moving. The manifests themselves are never written.
 */
import type { DeploymentSource, SourceEvent, SourceSink } from '../source/source.js';
import type { SeldonDeployment } from '../routing/seldon/deployment.js';

const RUN_LABEL = 'seldon-gateway-demo-run';

export class RerunSource implements DeploymentSource {
  private sink: SourceSink | undefined;
  private readonly latest = new Map<string, SeldonDeployment>();
  private runs = 0;

  constructor(private readonly inner: DeploymentSource) {}

  start(sink: SourceSink): Promise<void> {
    this.sink = sink;
    // The sink may be a class instance: its methods are bound here, not spread.
    return this.inner.start({
      onEvents: (events: readonly SourceEvent[]) => {
        for (const e of events) {
          if (e.type === 'upsert') this.latest.set(e.key, e.deployment);
          else this.latest.delete(e.key);
        }
        sink.onEvents(events);
      },
      onSynced: () => sink.onSynced(),
      onProblem: (where, message) => sink.onProblem(where, message),
      onConnected: (connected) => sink.onConnected?.(connected),
      onResync: () => sink.onResync?.(),
    });
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  /** Start the rollout of `key` (`namespace/name`) again, on predictor `canary`; false when the deployment is gone. */
  rerun(key: string, canary: string): boolean {
    const d = this.latest.get(key);
    if (!d || !this.sink || !Array.isArray(d.spec?.predictors)) return false;
    const run = String(++this.runs);
    const predictors = d.spec.predictors.map((p) => (p.name === canary ? { ...p, labels: { ...(p.labels as Record<string, string> | undefined), [RUN_LABEL]: run } } : p));
    this.sink.onEvents([{ type: 'upsert', key, deployment: { ...d, spec: { ...d.spec, predictors } } }]);
    return true;
  }
}
