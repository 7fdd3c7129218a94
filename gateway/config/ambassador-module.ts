/**
 * --ambassador-module: Emissary's `ambassador` Module from the operator's file (routing/emissary/module.ts
 * reads it), over the settings its keys share with flags. A flag (or its environment variable) given
 * explicitly wins over the Module; the Module wins over the flag's default. A Module with a key the
 * gateway does not honour is a usage error at start (exit 2, the key named); while serving, the file
 * is watched and a change applied (process/ambassador-module-file.ts).
 */
import type { CompileOptions } from '../../routing/types.js';
import { moduleCompression, moduleCors, parseAmbassadorModule, type AmbassadorModule } from '../../routing/emissary/module.js';
import type { EdgeConfig } from './edge.js';
import type { EdgeRules } from '../../routing/emissary/edge-rules.js';
import { BOTH, env, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { readOperatorFile } from './yaml-list.js';

export const MODULE_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'ambassador-module',
    section: 'source',
    value: 'path',
    env: env('ambassador-module'),
    kind: 'string',
    commands: BOTH,
    help: "Emissary's ambassador Module (getambassador.io/v2 name: ambassador with config:, or v3alpha1 metadata.name: ambassador with spec.config), from a file (a mounted ConfigMap). Its keys set what their flags set (max_request_headers_kb, cluster_request_timeout_ms, regex_max_size, buffer.max_request_bytes; a flag given explicitly wins) and more (cors, retry_policy, error_response_overrides, load_balancer, circuit_breakers: the defaults of every route that sets none; defaults: the header edits of every Mapping that sets none; ip_allow/ip_deny, listener_idle_timeout_ms, server_name, merge_slashes; with Envoy's meaning xff_num_trusted_hops and use_remote_address: whose X-Forwarded-For is trusted, --trusted-proxies naming the peers when given; strip_matching_host_port, reject_requests_with_escaped_slashes, headers_with_underscores_action, x_forwarded_proto_redirect, preserve_external_request_id). A key the gateway does not honour, or a bad value, refuses the Module (exit 2). Applied again when the file changes (listener keys: at the next start). docs/migrating-from-ambassador.md#the-ambassador-module.",
  },
];

/** The settings a Module may set, each with the flag that wins over it. */
const MODULE_FLAGS = {
  maxRequestHeaderBytes: 'max-header-size',
  maxRequestBodyBytes: 'max-body',
  defaultTimeoutMs: 'default-timeout',
  regexMaxSize: 'regex-max-size',
  gzip: 'compress',
} as const satisfies Partial<Record<keyof AmbassadorModule, string>>;

/** What the Module's settings are without a Module (flags and defaults), and which were given as flags (they win). */
export interface ModuleBase {
  readonly edge: Pick<EdgeConfig, 'maxHeaderBytes' | 'maxBodyBytes' | 'connectionIdleMs' | 'trustForwardedHeaders' | 'trustedProxies' | 'rules'>;
  readonly compile: Pick<CompileOptions, 'defaultTimeoutMs' | 'regexMaxSize' | 'compression'>;
  /** Settings of MODULE_FLAGS whose flag was given. */
  readonly given: readonly (keyof typeof MODULE_FLAGS)[];
}

export interface ModuleConfig {
  /** undefined: no --ambassador-module. */
  readonly file: string | undefined;
  readonly module: AmbassadorModule | undefined;
  readonly base: ModuleBase;
}

/** --ambassador-module read and checked at start; `base` from the sections built without it. */
export function buildModule(read: Reader, edge: EdgeConfig, compile: CompileOptions): ModuleConfig {
  const got = readOperatorFile(read, 'ambassador-module', (text) => parseAmbassadorModule(text, compile.ambassadorId));
  const given = (Object.keys(MODULE_FLAGS) as (keyof typeof MODULE_FLAGS)[]).filter((k) => read.given(MODULE_FLAGS[k]));
  return {
    file: got?.file,
    module: got?.value,
    base: {
      edge: { maxHeaderBytes: edge.maxHeaderBytes, maxBodyBytes: edge.maxBodyBytes, trustForwardedHeaders: edge.trustForwardedHeaders, trustedProxies: edge.trustedProxies },
      compile: { defaultTimeoutMs: compile.defaultTimeoutMs, regexMaxSize: compile.regexMaxSize, ...(compile.compression ? { compression: compile.compression } : {}) },
      given,
    },
  };
}

/** One Module setting over its base: the flag's when given, else the Module's when set, else the base's. */
function pick<T>(base: ModuleBase, key: keyof typeof MODULE_FLAGS, fromModule: T | undefined, fromBase: T): T {
  return base.given.includes(key) || fromModule === undefined ? fromBase : fromModule;
}

/** The listener settings a Module gives (read when the listeners start). */
export function moduleEdge(base: ModuleBase, m: AmbassadorModule | undefined): ModuleBase['edge'] {
  const rules = m === undefined ? undefined : edgeRules(m);
  // Envoy counts hops from every peer: with hops to count and no peer named by a flag, every peer's X-Forwarded-For is kept.
  const counting = m !== undefined && ((m.xffNumTrustedHops ?? 0) > 0 || m.useRemoteAddress === false);
  return {
    maxHeaderBytes: pick(base, 'maxRequestHeaderBytes', m?.maxRequestHeaderBytes, base.edge.maxHeaderBytes),
    maxBodyBytes: pick(base, 'maxRequestBodyBytes', m?.maxRequestBodyBytes, base.edge.maxBodyBytes),
    trustForwardedHeaders: base.edge.trustForwardedHeaders || (counting && base.edge.trustedProxies.length === 0),
    trustedProxies: base.edge.trustedProxies,
    // No flag sets it: the Module's, or the built-in idle times.
    ...(m?.listenerIdleTimeoutMs !== undefined ? { connectionIdleMs: m.listenerIdleTimeoutMs } : {}),
    ...(rules !== undefined ? { rules } : {}),
  };
}

/**
 * The Module's edge keys as the listeners apply them; undefined when it sets none to other than the
 * gateway's own behaviour (then none of their code runs). Envoy's client address: with
 * use_remote_address (the default) the client is the xff_num_trusted_hops-th X-Forwarded-For entry
 * from the right (0: the peer), and the peer is appended; without it, the entry one further left,
 * and nothing is appended.
 */
function edgeRules(m: AmbassadorModule): EdgeRules | undefined {
  const hops = m.xffNumTrustedHops ?? 0;
  const appendPeer = m.useRemoteAddress !== false;
  const rules: EdgeRules = {
    clientHops: appendPeer ? Math.max(1, hops) : hops + 1,
    appendPeer,
    replaceRequestId: m.preserveExternalRequestId === false,
    stripMatchingHostPort: m.stripMatchingHostPort === true,
    rejectEscapedSlashes: m.rejectEscapedSlashes === true,
    httpsRedirect: m.xForwardedProtoRedirect === true,
    ...(m.suppressEnvoyHeaders === true ? { suppressEnvoyHeaders: true } : {}),
    ...(m.rejectUnderscoreHeaders === true ? { rejectUnderscoreHeaders: true } : {}),
  };
  const own =
    hops === 0 &&
    appendPeer &&
    !rules.replaceRequestId &&
    !rules.stripMatchingHostPort &&
    !rules.rejectEscapedSlashes &&
    !rules.httpsRedirect &&
    rules.suppressEnvoyHeaders !== true &&
    rules.rejectUnderscoreHeaders !== true;
  return own ? undefined : rules;
}

/** Whether two listener settings differ (a reload that changes them waits for a restart). */
export function edgeChanged(a: ModuleBase['edge'], b: ModuleBase['edge']): boolean {
  return (
    a.maxHeaderBytes !== b.maxHeaderBytes ||
    a.maxBodyBytes !== b.maxBodyBytes ||
    a.connectionIdleMs !== b.connectionIdleMs ||
    a.trustForwardedHeaders !== b.trustForwardedHeaders ||
    JSON.stringify(a.rules) !== JSON.stringify(b.rules)
  );
}

/** The compile options only a Module sets (no flag does): absent without one. */
export const MODULE_DEFAULTS = [
  'defaultCors',
  'defaultRetry',
  'defaultErrorOverrides',
  'defaultLoadBalancer',
  'defaultBreaker',
  'mergeSlashes',
  'addLinkerdHeaders',
  'serviceInGatewayNamespace',
  'mappingDefaults',
] as const;
export type ModuleDefault = (typeof MODULE_DEFAULTS)[number];

/** The compile options a Module gives (applied again on a reload). */
export function moduleCompile(base: ModuleBase, m: AmbassadorModule | undefined): ModuleBase['compile'] & Pick<CompileOptions, ModuleDefault> {
  const cors = moduleCors(m);
  return {
    defaultTimeoutMs: pick(base, 'defaultTimeoutMs', m?.defaultTimeoutMs, base.compile.defaultTimeoutMs),
    regexMaxSize: pick(base, 'regexMaxSize', m?.regexMaxSize, base.compile.regexMaxSize),
    // No flag sets it: the Module's, or none.
    ...(cors !== undefined ? { defaultCors: cors } : {}),
    ...optional('compression', pick(base, 'gzip', moduleCompression(m), base.compile.compression)),
    ...optional('defaultRetry', m?.retryPolicy),
    ...optional('defaultErrorOverrides', m?.errorResponseOverrides),
    ...optional('defaultLoadBalancer', m?.loadBalancer),
    ...optional('defaultBreaker', m?.circuitBreakers),
    ...(m?.addLinkerdHeaders === true ? { addLinkerdHeaders: true } : {}),
    ...(m?.serviceInGatewayNamespace === true ? { serviceInGatewayNamespace: true } : {}),
    ...optional('mappingDefaults', m?.mappingDefaults),
    // Envoy's default keeps runs of `/`: only the Module's `merge_slashes: true` merges them.
    ...(m?.mergeSlashes === true ? { mergeSlashes: true } : {}),
  };
}

/** `{ [key]: value }`, or nothing when the value is undefined (exact optional properties). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
