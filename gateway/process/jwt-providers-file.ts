/**
 * The --jwt-providers file while the gateway runs: watched (edge/watched-files.ts), read again when
 * it changes, and applied when it parses: each process compiles its table again under the new
 * provider names (a deployment naming a provider that is gone degrades, with the reason in
 * /routes, the log and an Event) and replaces its key sets (auth/jwt-keys.ts `ProviderKeySets`:
 * unchanged providers keep their keys). A file that does not parse changes nothing, and is logged
 * and counted once per content; the control plane reads it, the workers get the result over IPC.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { parseJwtProviders, providerNames, type JwtProviderConfig } from '../config/jwt.js';
import type { ProviderKeySets } from '../auth/jwt-keys.js';
import { WatchedFiles } from '../edge/watched-files.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { RouteState } from './route-state.js';

const sameNames = (a: ReadonlySet<string> | undefined, b: ReadonlySet<string>): boolean => a !== undefined && a.size === b.size && [...b].every((n) => a.has(n));

/** One process takes the providers as the file now says: its table (when the names changed) and its key sets. */
export function applyJwtProviders(state: RouteState, keys: ProviderKeySets | undefined, providers: readonly JwtProviderConfig[]): void {
  keys?.replace(providers);
  const names = providerNames(providers);
  if (!sameNames(state.options.jwtProviders, names)) state.reconfigure({ ...state.options, jwtProviders: names });
}

export class JwtProvidersFile {
  private readonly files: WatchedFiles;
  private applied: string;
  private failed = '';

  constructor(
    private readonly path: string,
    /** What the gateway started with (read by config/jwt.ts). */
    current: readonly JwtProviderConfig[],
    private readonly apply: (providers: readonly JwtProviderConfig[]) => void,
    private readonly deps: { readonly log: Logger; readonly metrics: GatewayMetrics },
  ) {
    this.applied = JSON.stringify(current);
    this.files = new WatchedFiles(
      () => ({ files: [path] }),
      () => this.reload(),
    );
  }

  start(): void {
    this.files.start();
    // A change between start-up's read and the watch.
    this.reload();
  }

  close(): void {
    this.files.close();
  }

  /** Read the file again; apply it when it parses and says something new. Never throws. */
  reload(): void {
    const { log, metrics } = this.deps;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      // Mid-swap or removed: the providers in use stay; the next change is read.
      log.debug({ file: this.path, problem: (err as NodeJS.ErrnoException).code ?? String(err) }, 'JWT providers file unreadable now: the providers in use stay');
      return;
    }
    const digest = createHash('sha256').update(text).digest('hex');
    if (digest === this.failed) return;
    let providers: JwtProviderConfig[];
    try {
      providers = parseJwtProviders(text);
    } catch (err) {
      this.failed = digest;
      metrics.jwtProviderReloads.labels('failure').inc();
      log.warn({ file: this.path, problem: (err as Error).message }, 'JWT providers file not applied: the providers in use stay');
      return;
    }
    this.failed = '';
    const json = JSON.stringify(providers);
    if (json === this.applied) return;
    this.applied = json;
    metrics.jwtProviderReloads.labels('success').inc();
    log.info({ file: this.path, providers: providers.map((p) => p.name) }, 'JWT providers file applied');
    this.apply(providers);
  }
}
