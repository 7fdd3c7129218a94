/**
 * Where the Kubernetes credentials are, decided without loading `@kubernetes/client-node` (the
 * config and the choice of source need this on every start; the client only when it is used).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The few logger methods the Kubernetes modules use (pino's Logger satisfies it). */
export interface KubeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export const SILENT_LOG: KubeLog = { info: () => undefined, warn: () => undefined, debug: () => undefined };

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type ClusterAccess = { readonly kind: 'kubeconfig'; readonly files: readonly string[] } | { readonly kind: 'in-cluster'; readonly serviceAccountDir: string };

export interface FindClusterOptions {
  /** `--kubeconfig` or `KUBECONFIG`: one file or a `:`-separated list, as kubectl takes it. */
  kubeconfig?: string | undefined;
  environment?: NodeJS.ProcessEnv;
  /** Where the service account is mounted (tests point it elsewhere). */
  serviceAccountDir?: string;
}

/**
 * Where the credentials are, in kubectl's order: the given kubeconfig list, `~/.kube/config`,
 * then the pod's service account. Undefined when there is none (not in a cluster, no config).
 */
export function findClusterAccess(options: FindClusterOptions = {}): ClusterAccess | undefined {
  const environment = options.environment ?? process.env;
  const files = (options.kubeconfig ?? '').split(delimiter).filter(Boolean);
  if (files.length > 0) return { kind: 'kubeconfig', files };
  const home = environment.HOME || homedir();
  const own = join(home, '.kube', 'config');
  if (home && existsSync(own)) return { kind: 'kubeconfig', files: [own] };
  const serviceAccountDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (environment.KUBERNETES_SERVICE_HOST && existsSync(join(serviceAccountDir, 'token'))) return { kind: 'in-cluster', serviceAccountDir };
  return undefined;
}

/** The namespace the gateway's own pod runs in, from its service account; undefined outside one. */
export function serviceAccountNamespace(environment: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): string | undefined {
  if (!environment.KUBERNETES_SERVICE_HOST) return undefined;
  try {
    return readFileSync(join(dir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
