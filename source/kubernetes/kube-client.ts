/**
 * Access to the Kubernetes API server: loading the credentials `cluster-access.ts` found, the
 * typed API clients of `@kubernetes/client-node`, and the small error helpers the watchers share.
 * (Importing this loads client-node, ≈0.3 s and tens of MB: only the Kubernetes source does.)
 */
import { delimiter } from 'node:path';
import { ApiException, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubeConfig, Observable, type ConfigurationOptions, type ObservableMiddleware } from '@kubernetes/client-node';
import { SERVICE_ACCOUNT_DIR, type ClusterAccess } from './cluster-access.js';

export { SILENT_LOG, type KubeLog } from './cluster-access.js';

/** A loaded KubeConfig for `access`. Throws (a file that does not parse) with the file named. */
export function loadKubeConfig(access: ClusterAccess): KubeConfig {
  const kc = new KubeConfig();
  if (access.kind === 'in-cluster') {
    // loadFromCluster() takes a prefix of the standard path; only the standard path has none.
    const prefix = access.serviceAccountDir.endsWith(SERVICE_ACCOUNT_DIR) ? access.serviceAccountDir.slice(0, -SERVICE_ACCOUNT_DIR.length) : '';
    kc.loadFromCluster(prefix);
    return kc;
  }
  const [first, ...rest] = access.files;
  if (first === undefined) throw new Error('no kubeconfig file given');
  const load = (into: KubeConfig, file: string): void => {
    try {
      into.loadFromFile(file);
    } catch (err) {
      throw new Error(`kubeconfig ${file}: ${describeError(err)}`, { cause: err });
    }
  };
  load(kc, first);
  for (const file of rest) {
    const more = new KubeConfig();
    load(more, file);
    kc.mergeConfig(more);
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${access.files.join(delimiter)}: no current context with a cluster`);
  return kc;
}

export interface KubeClientOptions {
  /** Upper bound of one list, discovery or Event request (watches have their own timeouts). */
  requestTimeoutMs?: number;
}

/** The typed API clients, all on one KubeConfig. */
export class KubeClient {
  readonly customObjects: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly discovery: DiscoveryV1Api;
  readonly requestTimeoutMs: number;

  constructor(
    readonly config: KubeConfig,
    options: KubeClientOptions = {},
  ) {
    this.customObjects = config.makeApiClient(CustomObjectsApi);
    this.core = config.makeApiClient(CoreV1Api);
    this.discovery = config.makeApiClient(DiscoveryV1Api);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  /** The API server's URL (for logs). */
  get server(): string {
    return this.config.getCurrentCluster()?.server ?? '(none)';
  }

  /**
   * Per-request options with a deadline: the generated clients have none, so an API server that
   * accepts a list and never answers would hold the source forever.
   */
  requestOptions(): ConfigurationOptions<ObservableMiddleware> {
    const timeoutMs = this.requestTimeoutMs;
    return {
      middleware: [
        {
          pre: (context) => {
            context.setSignal(AbortSignal.timeout(timeoutMs));
            return new Observable(Promise.resolve(context));
          },
          post: (response) => new Observable(Promise.resolve(response)),
        },
      ],
      middlewareMergeStrategy: 'append',
    };
  }
}

/** The HTTP status an API call or a watch failed with, if it got that far. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (typeof err === 'object' && err !== null) {
    const { statusCode, code } = err as { statusCode?: unknown; code?: unknown };
    if (typeof statusCode === 'number') return statusCode;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** One line for logs and /routes: ApiException's own message carries every response header. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: unknown } | string | undefined;
    const text = typeof body === 'object' && body && typeof body.message === 'string' ? body.message : typeof body === 'string' ? body.slice(0, 200) : '';
    return `HTTP ${err.code}${text ? `: ${text}` : ''}`;
  }
  if (err instanceof Error) {
    const status = statusOf(err);
    const code = (err as { code?: unknown }).code;
    const message = err.message.split('\n')[0] ?? '';
    if (status !== undefined && !message.includes(String(status))) return `HTTP ${status}: ${message}`;
    return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
  }
  return String(err);
}
