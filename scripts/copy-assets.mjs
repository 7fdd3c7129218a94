// Files the built gateway reads at run time that tsc does not emit: every .proto under gateway/
// (KEDA's vendored externalscaler.proto), copied beside the compiled modules in dist/ so that
// `new URL('./x.proto', import.meta.url)` finds it from the sources and from dist alike.
import { cpSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function protos(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? protos(join(dir, e.name)) : e.name.endsWith('.proto') ? [join(dir, e.name)] : []));
}

for (const file of protos(join(root, 'gateway'))) cpSync(file, join(root, 'dist', relative(root, file)));
