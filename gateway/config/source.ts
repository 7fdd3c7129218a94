/** Source: where SeldonDeployments come from, and which of them are served. */
import { serviceAccountNamespace } from '../../source/kubernetes/cluster-access.js';
import type { CompileOptions } from '../../routing/types.js';
import { parsePrefixGrants } from '../../routing/emissary/custom-prefixes.js';
import { BOTH, env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { UsageError } from './values.js';

export const SOURCE_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'manifests',
    section: 'source',
    value: 'path',
    short: 'f',
    env: env('manifests'),
    kind: 'string',
    commands: BOTH,
    help: 'File or directory of SeldonDeployment manifests (YAML/JSON) to serve: serve watches it for changes (and waits for a missing one to appear), routes reads it once.',
  },
  {
    flag: 'kubernetes',
    section: 'source',
    env: env('kubernetes'),
    kind: 'boolean',
    commands: SERVE,
    help: 'List and watch SeldonDeployments in the Kubernetes API. The default when no --manifests is given and a kubeconfig or an in-cluster service account is found.',
  },
  {
    flag: 'kubeconfig',
    section: 'source',
    value: 'path',
    env: 'KUBECONFIG',
    kind: 'string',
    commands: SERVE,
    help: 'kubeconfig file(s) for --kubernetes (a list separated by ":", as kubectl takes it). Default: ~/.kube/config, else the in-cluster service account.',
  },
  {
    flag: 'endpoint-routing',
    section: 'source',
    value: 'auto|off',
    env: env('endpoint-routing'),
    kind: 'string',
    default: 'auto',
    commands: SERVE,
    help: 'auto: with --kubernetes, watch the EndpointSlices of routed Services and balance each request across ready pods (Service DNS if RBAC forbids it); off: always dial Service DNS names.',
  },
  {
    flag: 'ambassador-id',
    section: 'source',
    value: 'id',
    env: 'AMBASSADOR_ID',
    kind: 'string',
    default: 'default',
    commands: BOTH,
    help: 'Serve only SeldonDeployments whose seldon.io/ambassador-id is this id (untagged ones are "default").',
  },
  {
    flag: 'single-namespace',
    section: 'source',
    env: 'AMBASSADOR_SINGLE_NAMESPACE',
    kind: 'boolean',
    commands: BOTH,
    help: 'Serve one namespace (--namespace) and also the un-namespaced /seldon/<name>/ prefixes.',
  },
  {
    flag: 'namespace',
    section: 'source',
    value: 'namespace',
    env: 'AMBASSADOR_NAMESPACE',
    kind: 'string',
    default: 'default',
    commands: BOTH,
    help: "The namespace served in single-namespace mode (in a cluster: the gateway's own). Given as a flag, it also limits the Kubernetes watch to that namespace.",
  },
  { flag: 'no-custom-config', section: 'source', env: env('no-custom-config'), kind: 'boolean', commands: BOTH, help: "Ignore seldon.io/ambassador-config (as Seldon's resource mode did)." },
  {
    flag: 'custom-config-scope',
    section: 'source',
    value: 'namespace|cluster',
    env: env('custom-config-scope'),
    kind: 'string',
    default: 'namespace',
    commands: BOTH,
    help: "What a SeldonDeployment's seldon.io/ambassador-config Mappings may claim. namespace: only prefixes under /seldon/<its namespace>/, gRPC for its own namespace and Services in its own namespace (tenants cannot reach each other), and a gRPC call without namespace metadata is routed only in single-namespace mode; cluster: anything, as Ambassador allowed, and a missing gRPC namespace means the one namespace serving that name.",
  },
  {
    flag: 'custom-config-prefixes',
    section: 'source',
    value: 'namespace=/prefix/',
    env: env('custom-config-prefixes'),
    kind: 'list',
    commands: BOTH,
    help: "With --custom-config-scope namespace: prefixes a namespace's seldon.io/ambassador-config Mappings may claim besides /seldon/<its namespace>/ (seldon=/mycompany/ serves Seldon's documented prefix: /mycompany/ml/); no other namespace may claim them. Not under /seldon/; never overlapping across namespaces. Repeatable; env: comma-separated.",
  },
  {
    flag: 'regex-max-size',
    section: 'source',
    env: env('regex-max-size'),
    kind: 'int',
    default: '200',
    commands: BOTH,
    help: "Largest RE2 program size of a regex in seldon.io/ambassador-regex-header or a custom Mapping (regex_headers, prefix_regex), as Ambassador's regex_max_size: matching a request costs in proportion to it, so a larger one rejects its SeldonDeployment (or drops its Mapping).",
  },
];

/** Where SeldonDeployments come from. */
export interface SourceConfig {
  readonly manifests: string | undefined;
  /** --kubernetes given: use the Kubernetes API even if no credentials are found up front. */
  readonly kubernetes: boolean;
  /** --kubeconfig / KUBECONFIG: one file or a path-delimiter-separated list. */
  readonly kubeconfig: string | undefined;
  /** The one namespace the Kubernetes watches cover; undefined: cluster-wide. */
  readonly watchNamespace: string | undefined;
  /** Balance across EndpointSlice endpoints when the source is Kubernetes (--endpoint-routing auto). */
  readonly endpointRouting: boolean;
}

/** Which deployments are served, and what their custom Mappings may claim: routing's CompileOptions from these rows. */
export type ServedSelection = Pick<CompileOptions, 'ambassadorId' | 'singleNamespace' | 'namespace' | 'honourCustomConfig' | 'customConfigScope' | 'customConfigPrefixes' | 'regexMaxSize'>;

export function buildSource(read: Reader): { source: SourceConfig; served: ServedSelection } {
  const manifests = read.optStr('manifests');
  const kubernetes = read.bool('kubernetes');
  if (manifests !== undefined && kubernetes) throw new UsageError('--manifests and --kubernetes are two different sources: pass one');
  const endpointRouting = read.str('endpoint-routing').trim().toLowerCase();
  if (!['auto', 'on', 'true', 'off', 'false'].includes(endpointRouting)) throw new UsageError(`--endpoint-routing: "${endpointRouting}" is not auto or off`);
  // AMBASSADOR_NAMESPACE defaults to the gateway's own namespace in a cluster (docs/routing.md#settings).
  // An empty --namespace / --ambassador-id falls back to the row's default too.
  const namespace = read.optStr('namespace') || defaultOf('namespace');
  const effectiveNamespace = read.given('namespace') ? namespace : (serviceAccountNamespace(read.environment) ?? namespace);
  const singleNamespace = read.bool('single-namespace');
  // Only the flag narrows the watch: Ambassador's AMBASSADOR_NAMESPACE is set in every install
  // (from the downward API) and means a watch scope only with AMBASSADOR_SINGLE_NAMESPACE.
  const watchNamespace = singleNamespace ? effectiveNamespace : read.onCommandLine('namespace') ? namespace : undefined;
  const regexMaxSize = read.int('regex-max-size');
  if (regexMaxSize < 1) throw new UsageError(`--regex-max-size: ${regexMaxSize} is not a positive whole number`);
  return {
    source: { manifests, kubernetes, kubeconfig: read.optStr('kubeconfig'), watchNamespace, endpointRouting: endpointRouting !== 'off' && endpointRouting !== 'false' },
    served: {
      ambassadorId: read.optStr('ambassador-id') || defaultOf('ambassador-id'),
      singleNamespace,
      namespace: effectiveNamespace,
      honourCustomConfig: !read.bool('no-custom-config'),
      customConfigScope: read.choice('custom-config-scope', ['namespace', 'cluster']),
      ...prefixGrants(read),
      regexMaxSize,
    },
  };
}

function defaultOf(flag: string): string {
  return SOURCE_OPTIONS.find((o) => o.flag === flag)!.default!;
}

/** --custom-config-prefixes, checked (routing/emissary/custom-prefixes.ts); nothing when none is given. */
function prefixGrants(read: Reader): Pick<CompileOptions, 'customConfigPrefixes'> {
  const entries = read.list('custom-config-prefixes').flatMap((x) =>
    x
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean),
  );
  if (entries.length === 0) return {};
  try {
    return { customConfigPrefixes: parsePrefixGrants(entries) };
  } catch (e) {
    throw new UsageError(`--custom-config-prefixes: ${(e as Error).message}`);
  }
}
