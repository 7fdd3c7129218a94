/**
 * The --ambassador-module file while the gateway runs (process/operator-file.ts: watched, read again
 * when it changes, applied when it parses): the route defaults it sets (cluster_request_timeout_ms,
 * regex_max_size, merge_slashes, …) recompile every process's table, its ip_allow / ip_deny replaces every data plane's
 * (`DataPlanes.ambassadorModule`); the listener settings (max_request_headers_kb,
 * buffer.max_request_bytes, listener_idle_timeout_ms and the edge keys: xff_num_trusted_hops, use_remote_address,
 * strip_matching_host_port, reject_requests_with_escaped_slashes, headers_with_underscores_action, x_forwarded_proto_redirect,
 * preserve_external_request_id) are read when the listeners start, so a change to them is logged as
 * waiting for a restart. A Module with a key the gateway does not honour changes nothing: the one
 * in use stays, and the refusal is logged (naming the key) and counted.
 */
import type { Logger } from 'pino';
import { edgeChanged, MODULE_DEFAULTS, moduleCompile, moduleEdge, type ModuleBase, type ModuleDefault } from '../config/ambassador-module.js';
import type { CompileOptions } from '../../routing/types.js';
import { parseAmbassadorModule, type AmbassadorModule } from '../../routing/emissary/module.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { OperatorFile } from './operator-file.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
import type { RouteState } from './route-state.js';

/** One process takes the route defaults of `m` (over `base`): its table compiles again when they changed. */
export function applyAmbassadorModule(state: RouteState, base: ModuleBase, m: AmbassadorModule): void {
  const c = moduleCompile(base, m);
  const o = state.options;
  // A CORS policy is parsed anew each time (it holds a matcher): any Module with one, or a Module dropping one, recompiles.
  const changed = (k: 'compression' | Exclude<ModuleDefault, 'defaultCors'>): boolean => JSON.stringify(c[k]) !== JSON.stringify(o[k]);
  // Every route default the Module sets (MODULE_DEFAULTS), CORS aside: one list, so a new default is never missed on a reload.
  const defaultsChanged = MODULE_DEFAULTS.some((k) => k !== 'defaultCors' && changed(k));
  if (c.defaultTimeoutMs !== o.defaultTimeoutMs || c.regexMaxSize !== o.regexMaxSize || defaultsChanged || changed('compression') || c.defaultCors !== undefined || o.defaultCors !== undefined) {
    // The Module's settings replace the ones in use whole: one it no longer sets is gone.
    const rest: Mutable<CompileOptions> = { ...o };
    delete rest.compression;
    for (const k of MODULE_DEFAULTS) delete rest[k];
    state.reconfigure({ ...rest, ...c });
  }
}

/** What the control plane's data planes do with a Module read again (control-plane.ts `DataPlanes`). */
export interface ModulePlanes {
  /** Every data plane takes the Module's route defaults (a worker: `applyAmbassadorModule`). */
  ambassadorModule(m: AmbassadorModule): void;
}

export class AmbassadorModuleFile extends OperatorFile<AmbassadorModule> {
  constructor(path: string, current: AmbassadorModule, apply: (m: AmbassadorModule) => void, deps: { readonly log: Logger; readonly metrics: GatewayMetrics; readonly ambassadorId: string }) {
    super(path, current, {
      parse: (text) => parseAmbassadorModule(text, deps.ambassadorId),
      apply,
      log: deps.log,
      counted: (result) => deps.metrics.ambassadorModuleReloads.labels(result).inc(),
      what: 'ambassador Module',
      described: (m) => ({ settings: Object.keys(m).filter((k) => k !== 'warnings') }),
    });
  }
}

/**
 * --ambassador-module while serving: the file watched, each change applied to this process's table
 * and sent to every data plane. Undefined without the flag. The returned value owns the watcher; the
 * control plane closes it at shutdown.
 */
export function watchAmbassadorModule(
  config: { readonly module: { readonly file: string | undefined; readonly module: AmbassadorModule | undefined; readonly base: ModuleBase }; readonly compile: { readonly ambassadorId: string } },
  d: { readonly state: RouteState; readonly planes: ModulePlanes; readonly metrics: GatewayMetrics; readonly log: Logger },
): { close(): void } | undefined {
  const { file: path, module: started, base } = config.module;
  if (path === undefined || started === undefined) return undefined;
  const { state, planes, log } = d;
  for (const w of started.warnings ?? []) log.warn({ file: path }, w);
  const running = moduleEdge(base, started);
  const file = new AmbassadorModuleFile(
    path,
    started,
    (m) => {
      for (const w of m.warnings ?? []) log.warn({ file: path }, w);
      const edge = moduleEdge(base, m);
      if (edgeChanged(edge, running)) {
        log.warn(
          { file: path, running, module: edge },
          'ambassador Module: max_request_headers_kb, buffer.max_request_bytes, listener_idle_timeout_ms, xff_num_trusted_hops, use_remote_address, strip_matching_host_port, reject_requests_with_escaped_slashes, headers_with_underscores_action, x_forwarded_proto_redirect and preserve_external_request_id take effect when the gateway restarts',
        );
      }
      applyAmbassadorModule(state, base, m);
      planes.ambassadorModule(m);
    },
    { ...d, ambassadorId: config.compile.ambassadorId },
  );
  file.start();
  return { close: () => file.close() };
}
