/**
 * The Kubernetes side of the gateway, loaded on first use: `@kubernetes/client-node` costs about
 * 0.3 s and tens of MB to import, which a gateway serving manifests (and every `routes` command)
 * should not pay. `sourceFor` hands out a LazyKubeSource; the modules behind it are imported when
 * it is loaded or started.
 */
import type { ClusterAccess, KubeLog } from './cluster-access.js';
import type { EndpointWatcher, EndpointWatcherOptions } from './endpoints.js';
import type { DeploymentEvents } from './events.js';
import type { KubeSource, KubeSourceOptions } from './kube-source.js';
import type { DeploymentSource, SourceSink } from '../source.js';

export interface LazyKubeSourceOptions {
  access: ClusterAccess;
  /** Watch one namespace; undefined: cluster-wide. */
  namespace: string | undefined;
  log?: KubeLog;
  /** Anything else KubeSource takes (timings, for tests). */
  tuning?: Omit<KubeSourceOptions, 'client' | 'namespace' | 'log'>;
}

export class LazyKubeSource implements DeploymentSource {
  private loading: Promise<KubeSource> | undefined;
  private stopped = false;

  constructor(private readonly options: LazyKubeSourceOptions) {}

  get namespace(): string | undefined {
    return this.options.namespace;
  }

  /** The KubeSource, created on first call (the kubeconfig is read here: a bad file rejects). */
  load(): Promise<KubeSource> {
    return (this.loading ??= (async () => {
      const [{ KubeSource }, { KubeClient, loadKubeConfig }] = await Promise.all([import('./kube-source.js'), import('./kube-client.js')]);
      const { access, namespace, log, tuning } = this.options;
      return new KubeSource({ ...tuning, client: new KubeClient(loadKubeConfig(access)), namespace, ...(log ? { log } : {}) });
    })());
  }

  async start(sink: SourceSink): Promise<void> {
    const kube = await this.load();
    if (!this.stopped) await kube.start(sink);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const kube = await this.loading?.catch(() => undefined);
    await kube?.stop();
  }
}

/** Warning Events on the SeldonDeployments `kube` watches. */
export async function deploymentEventsFor(kube: KubeSource, log?: KubeLog): Promise<DeploymentEvents> {
  const { DeploymentEvents } = await import('./events.js');
  return new DeploymentEvents({ client: kube.client, objectRef: (ns, name) => kube.objectRef(ns, name), ...(log ? { log } : {}) });
}

/** An EndpointSlice watcher with the same connection and scope as `kube` (not started). */
export async function endpointWatcherFor(kube: KubeSource, options: Omit<EndpointWatcherOptions, 'client' | 'namespace'> = {}): Promise<EndpointWatcher> {
  const { EndpointWatcher } = await import('./endpoints.js');
  return new EndpointWatcher({ ...options, client: kube.client, namespace: kube.namespace });
}
