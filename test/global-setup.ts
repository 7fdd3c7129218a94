/**
 * Build `dist/` once before the suite: the CLI tests run the real entry point (`node
 * dist/gateway/main.js`) as users do. Type errors do not stop the build here (`npm test` runs
 * `tsc --noEmit` first and fails on them); the emitted JavaScript is what the CLI tests run.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  // The .proto files the gateway loads at run time, beside the emitted modules (as `npm run build` does).
  const assets = spawnSync(process.execPath, ['scripts/copy-assets.mjs'], { cwd: root, stdio: 'inherit' });
  if (assets.error) throw assets.error;
}
