/**
 * The Dockerfile's runtime install, without Docker: package.json + package-lock.json + the built
 * dist/ (from the global setup) in a temporary directory, the same `npm ci` line as the
 * Dockerfile's deps stage (production dependencies only), then the entry point the image runs.
 * This catches a runtime import of a devDependency, and a Dockerfile that drifts from it.
 * It installs from the npm registry once (generous timeout).
 *
 * The install runs with the npm of the image's Node line (node:24 ships npm 11), not this
 * machine's, whichever Node runs the suite. The Dockerfile's Node line is also the one CI tests
 * (.ci/run installs that Node): checked below, so the two cannot drift apart.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../gateway/config/parse.js';
import { seldonDeployment, startFakeKubeApi, until, writeKubeconfig, type FakeKubeApi } from '../fixtures/fake-kube-api.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
/** The npm release bundled with the Dockerfile's base image (Node 24 → npm 11). */
const IMAGE_NPM = 'npm@11';
/** The Node major of the base image, and the exact version CI runs the suite on. */
const IMAGE_NODE_MAJOR = 24;
const ciNodeVersion = /^NODE_VERSION=(\d+)\.(\d+)\.(\d+)$/m.exec(readFileSync(join(root, '.ci', 'run'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

/** The Dockerfile's stages: name (or index) → its lines. */
function stages(): { name: string; lines: string[] }[] {
  const out: { name: string; lines: string[] }[] = [];
  for (const line of dockerfile.split('\n').map((l) => l.trim())) {
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ name: from[1] ?? `#${out.length}`, lines: [] });
    else if (line && !line.startsWith('#')) out.at(-1)?.lines.push(line);
  }
  return out;
}

describe('Dockerfile', () => {
  it('is multi-stage, runs as a numeric non-root user, and enters at node dist/gateway/main.js', () => {
    const all = stages();
    expect(all.length).toBeGreaterThanOrEqual(2);
    const runtime = all.at(-1)!;
    const user = runtime.lines
      .find((l) => l.startsWith('USER '))
      ?.slice(5)
      .trim();
    expect(user).toMatch(/^[1-9][0-9]*(:[0-9]+)?$/);
    expect(runtime.lines).toContain('ENTRYPOINT ["node", "dist/gateway/main.js"]');
    // The runtime stage gets node_modules from a production-only install, never from the build stage.
    const copies = runtime.lines.filter((l) => l.startsWith('COPY --from='));
    const modulesFrom = copies.find((l) => l.includes('node_modules'))?.match(/--from=(\S+)/)?.[1];
    const depsStage = all.find((s) => s.name === modulesFrom)!;
    expect(depsStage.lines.some((l) => /npm ci .*--omit=dev/.test(l))).toBe(true);
    expect(copies.some((l) => l.includes('dist'))).toBe(true);
    // The install below uses the npm of this Node line; a new base image needs IMAGE_NPM updated.
    expect(dockerfile).toMatch(new RegExp(`^ARG NODE_IMAGE=node:${IMAGE_NODE_MAJOR}[-.]`, 'm'));
  });

  it('ships the Node line CI tests: the base image and .ci/run name the same major', () => {
    expect(ciNodeVersion, '.ci/run sets NODE_VERSION=<major>.<minor>.<patch>').not.toBeNull();
    expect(Number(ciNodeVersion![1])).toBe(IMAGE_NODE_MAJOR);
  });

  it('the `docker run` example reaches the admin port it publishes: the gateway binds it to 0.0.0.0 in the container, and the host only on loopback', () => {
    const line = /^#\s+(docker run .*)$/m.exec(dockerfile)?.[1];
    expect(line, 'a docker run example in the header').toBeDefined();
    const words = line!.split(/\s+/);
    const published = words.flatMap((w, i) => (w === '-p' ? [words[i + 1]!] : []));
    const environment = Object.fromEntries(words.flatMap((w, i) => (w === '-e' ? [words[i + 1]!.split('=') as [string, string]] : [])));
    const image = words.findIndex((w) => /^seldon-gateway:/.test(w));
    const [command, ...args] = words.slice(image + 1);
    expect(command).toBe('serve');
    // As the container sees it: the image's process, not in a cluster (no KUBERNETES_SERVICE_HOST).
    const config = parseConfig('serve', args, environment);
    const admin = published.find((p) => p.endsWith(`:${config.listen.adminPort}`));
    expect(admin, 'the admin port is published').toBeDefined();
    expect(config.listen.adminHost, 'reachable through a published port').toBe('0.0.0.0');
    expect(admin!.startsWith('127.0.0.1:'), 'the admin port answers the host only, unless a token guards it').toBe(true);
    expect(published.some((p) => p.endsWith(`:${config.listen.port}`))).toBe(true);
    expect(dockerfile).toContain('--admin-token-file');
  });

  it('the build stage copies every source folder the build compiles', () => {
    const build = stages().find((s) => s.lines.some((l) => l === 'RUN npm run build'))!;
    const copied = build.lines.filter((l) => l.startsWith('COPY ') && !l.startsWith('COPY --from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    const { include } = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(include.length).toBeGreaterThan(0);
    for (const dir of include) expect(copied, `COPY ${dir} ${dir}`).toContain(dir);
  });
});

describe('the image install, without Docker', () => {
  let dir: string;
  let install: { status: number | null; stderr: string };
  let api: FakeKubeApi;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sgw-image-'));
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(root, f), join(dir, f));
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
    // Exactly the deps stage's command (the part before any `&& npm cache clean`).
    const modulesFrom = stages()
      .at(-1)!
      .lines.find((l) => l.startsWith('COPY --from=') && l.includes('node_modules'))!
      .match(/--from=(\S+)/)![1];
    const run = stages()
      .find((s) => s.name === modulesFrom)!
      .lines.find((l) => l.startsWith('RUN npm ci'))!;
    const args = run.slice('RUN npm '.length).split('&&')[0]!.trim().split(/\s+/);
    const r = spawnSync('npx', ['--yes', '--package', IMAGE_NPM, 'npm', ...args], { cwd: dir, encoding: 'utf8', timeout: 110_000, env: { ...process.env, NODE_ENV: 'production' } });
    install = { status: r.status, stderr: r.stderr };
    api = await startFakeKubeApi();
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('npm ci installs the production dependencies only', () => {
    expect(install.status, install.stderr).toBe(0);
    expect(existsSync(join(dir, 'node_modules/@kubernetes/client-node/package.json'))).toBe(true);
    // Nothing the lock marks dev-only (typescript, vitest, …) is on disk.
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages)
      .filter(([path, p]) => path && p.dev)
      .map(([path]) => path);
    expect(devOnly).toContain('node_modules/typescript');
    expect(devOnly.filter((path) => existsSync(join(dir, path)))).toEqual([]);
  });

  it('`node dist/gateway/main.js --help` exits 0 and `--version` prints the version', () => {
    const node = (args: string[]) => spawnSync(process.execPath, ['dist/gateway/main.js', ...args], { cwd: dir, encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH } });
    const help = node(['--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('--kubernetes');
    const version = node(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
  });

  it('the installed gateway serves from the Kubernetes API (client-node loads on production dependencies)', async () => {
    api.upsert('seldondeployments', seldonDeployment('iris', 'models'));
    const kubeconfig = writeKubeconfig(dir, api);
    const child = spawn(process.execPath, ['dist/gateway/main.js', 'serve', '--kubernetes', '--kubeconfig', kubeconfig, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1'], {
      cwd: dir,
      env: { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // Ready = first sync done and every worker listening (the log says both).
      await until(() => (/initial sync complete/.test(out) && /seldon-gateway listening/.test(out)) || child.exitCode !== null, 45_000, 'initial sync');
      expect(out).toMatch(/initial sync complete/);
      const adminPort = Number(/"adminPort":(\d+)/.exec(out)?.[1]);
      const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      expect(ready.status).toBe(200);
      const routes = (await (await fetch(`http://127.0.0.1:${adminPort}/routes`)).json()) as { deployments: { name: string }[] };
      expect(routes.deployments.map((d) => d.name)).toEqual(['iris']);
    } finally {
      child.kill('SIGTERM');
      await until(() => child.exitCode !== null || child.signalCode !== null, 15_000, 'exit');
    }
  }, 90_000);
});
