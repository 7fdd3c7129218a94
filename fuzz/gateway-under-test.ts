/**
 * The gateway the fuzzers send to: started in this process from a source tree (this one, or a
 * scratch copy with a defect planted in it, test/fuzz/planted-defects.test.ts), on OS-chosen ports,
 * over one SeldonDeployment `f/m` whose predictor is the fuzzers' model.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';

export interface GatewayUnderTest {
  readonly port: number;
  close(): Promise<void>;
}

/** The source tree's root (the directory holding gateway/). */
export const THIS_TREE = resolve(import.meta.dirname, '..');

/**
 * Settings the fuzzers run with: timeouts short enough that a case cut off mid-request ends soon, and the
 * head limit of the oracle (llhttp at Node's default, NODE_MAX_HEADER_SIZE), so the boundary is the same on both sides.
 */
export const FUZZ_ARGS = ['--client-header-timeout', '2s', '--client-request-timeout', '3s', '--max-body', '1MiB', '--max-header-size', '16KiB'];

export async function startGatewayUnderTest(modelPort: number, options: { tree?: string; args?: string[] } = {}): Promise<GatewayUnderTest> {
  const tree = options.tree ?? THIS_TREE;
  const { parseConfig } = (await import(pathToFileURL(join(tree, 'gateway/config/parse.ts')).href)) as typeof import('../gateway/config/parse.js');
  const { startGateway } = (await import(pathToFileURL(join(tree, 'gateway/process/serve.ts')).href)) as typeof import('../gateway/process/serve.js');
  const dir = mkdtempSync(join(tmpdir(), 'sgw-fuzz-'));
  const manifest = {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    // A model answer that stops short (a body under its length, a chunk never ended) is cut after 3 s.
    metadata: { name: 'm', namespace: 'f', annotations: { 'seldon.io/rest-timeout': '3000' } },
    spec: { predictors: [{ name: 'main' }] },
  };
  writeFileSync(join(dir, 'm.yaml'), JSON.stringify(manifest));
  const argv = ['--manifests', dir, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off'];
  const config = parseConfig('serve', [...argv, '--resolve', `m-main.f:8000=127.0.0.1:${modelPort}`, ...FUZZ_ARGS, ...(options.args ?? [])], {});
  const gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
  for (let i = 0; !gw.ready(); i++) {
    if (i > 3000) throw new Error('the gateway under test did not get ready in 30 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    port: gw.port,
    async close() {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
