/**
 * Start a real gateway in-process on OS-chosen ports over manifests written to a temp dir, with
 * `--resolve` entries pointing Service addresses at local backends.
 */
import { mkdtempSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { AccessSink } from '../../gateway/observe/access-log.js';
import { parseConfig } from '../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../gateway/process/serve.js';
import type { Clock } from '../../gateway/upstream/clock.js';

export interface TestGateway extends Gateway {
  readonly dir: string;
  readonly url: string;
  readonly adminUrl: string;
  /** Replace a manifest file and wait until the table has changed. */
  write(file: string, yaml: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestGateway(opts: {
  manifests: Record<string, string>;
  resolve?: Record<string, number>;
  args?: string[];
  /** Default: silent. */
  logger?: Logger;
  /** Where access log lines go; without one the access log is off (unless `args` turn it on: then stdout). */
  accessSink?: AccessSink;
  /** The clock OAuth token expiry is read from (test/helpers/clock.ts): tests move it instead of sleeping. */
  now?: () => number;
  /** The request path's time and timers (flow-control waits, route timeouts; test/helpers/fake-clock.ts AheadClock). */
  clock?: Clock;
}): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-'));
  for (const [file, yaml] of Object.entries(opts.manifests)) writeFileSync(join(dir, file), yaml);
  const resolve = Object.entries(opts.resolve ?? {}).flatMap(([addr, port]) => ['--resolve', `${addr}=127.0.0.1:${port}`]);
  const config = parseConfig(
    'serve',
    ['--manifests', dir, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', ...(opts.accessSink ? [] : ['--access-log', 'off']), ...resolve, ...(opts.args ?? [])],
    {},
  );
  const gw = await startGateway(config, { logger: opts.logger ?? pino({ level: 'silent' }), ...(opts.accessSink ? { accessSink: opts.accessSink } : {}), now: opts.now, clock: opts.clock });
  await waitFor(() => gw.ready());
  return {
    ...gw,
    dir,
    url: `http://127.0.0.1:${gw.port}`,
    adminUrl: `http://127.0.0.1:${gw.adminPort}`,
    async write(file, yaml) {
      const before = gw.state.current.generation;
      writeFileSync(join(dir, file), yaml);
      await waitFor(() => gw.state.current.generation > before);
    },
    async stop() {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Poll a condition every 10 ms, up to `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A SeldonDeployment manifest in YAML (JSON is YAML). */
export function sdep(name: string, namespace: string, spec: Record<string, unknown>, annotations?: Record<string, string>): string {
  return JSON.stringify({
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec,
  });
}

/** Replace `path` with `text` in one step, as a ConfigMap mount swaps a file (a watcher never reads it half-written). */
export function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}
