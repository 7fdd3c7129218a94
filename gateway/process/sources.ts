/**
 * Where SeldonDeployments and endpoints come from, as the configuration says: what both a cluster
 * primary and its workers ask, without loading either plane (nor the Kubernetes client: a
 * `LazyKubeSource` loads it when started).
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/parse.js';
import type { SourceConfig } from '../config/source.js';
import { findClusterAccess, type KubeLog } from '../../source/kubernetes/cluster-access.js';
import type { EndpointWatcher } from '../../source/kubernetes/endpoints.js';
import { LazyKubeSource, endpointWatcherFor } from '../../source/kubernetes/kubernetes.js';
import { ManifestSource } from '../../source/manifest-source.js';
import type { DeploymentSource } from '../../source/source.js';

/**
 * The source the config asks for: the manifests if given; else the Kubernetes API when --kubernetes
 * is set or credentials are found (a kubeconfig, or the in-cluster service account).
 */
export function sourceFor(config: SourceConfig, options: { environment?: NodeJS.ProcessEnv; log?: KubeLog } = {}): DeploymentSource {
  if (config.manifests) return new ManifestSource({ path: config.manifests });
  const access = findClusterAccess({ kubeconfig: config.kubeconfig, environment: options.environment ?? process.env });
  if (access) return new LazyKubeSource({ access, namespace: config.watchNamespace, ...(options.log ? { log: options.log } : {}) });
  if (config.kubernetes) throw new Error('--kubernetes: no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and no in-cluster service account found');
  throw new Error('no SeldonDeployment source: pass --manifests <file-or-dir>, or --kubernetes with a kubeconfig (--kubeconfig or KUBECONFIG), or run in a cluster');
}

/** The source's name in logs and metrics (the `source` label). */
export function sourceName(config: SourceConfig): 'manifests' | 'kubernetes' {
  return config.manifests ? 'manifests' : 'kubernetes';
}

/** Whether requests are balanced across the pods of EndpointSlices: endpoint routing on, with the Kubernetes source. */
export function routesToEndpoints(config: GatewayConfig, source: DeploymentSource): source is LazyKubeSource {
  return config.source.endpointRouting && source instanceof LazyKubeSource;
}

/**
 * With the Kubernetes source and endpoint routing on, an EndpointSlice watcher (started) on the
 * same connection and scope; otherwise none, and upstreams are dialled by Service name.
 */
export async function endpointsFor(config: GatewayConfig, source: DeploymentSource, log: Logger): Promise<EndpointWatcher | undefined> {
  if (!routesToEndpoints(config, source)) return undefined;
  const watcher = await endpointWatcherFor(await source.load(), { log });
  watcher.start();
  return watcher;
}
