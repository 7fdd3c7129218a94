/**
 * Each process loads what its role and flags need, and nothing more (process/cluster.ts: "each role loads its
 * own plane"): the real CLI with two workers, every module each process loads recorded by a load hook
 * (test/fixtures/module-trace.mjs). Without --log-sinks no process loads payload logging; without --redis-url
 * none loads ioredis; with --log-sinks the workers load the writers and the primary its side of them. No process
 * loads Node's own undici (the gateway never uses it), and a worker loads fastify only when a request for its own
 * routes (the OAuth front end's token endpoint, /ping, /ready) comes: every full collection marks what a worker holds.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';

const HOOK = fileURLToPath(new URL('../../fixtures/module-trace.mjs', import.meta.url));

interface Loaded {
  primary: string[];
  workers: string[][];
}

/** What the gateway of primary `pid` has loaded so far, by role, from the trace folder (the modules each process loads are appended as it loads them). */
function traced(trace: string, pid: number): Loaded {
  // startCli starts again when a port it picked was taken meanwhile: only the started gateway's processes count.
  const files = readdirSync(trace);
  const read = (f: string): string[] => readFileSync(join(trace, f), 'utf8').split('\n').filter(Boolean);
  expect(files).toContain(`primary-${pid}`);
  return { primary: read(`primary-${pid}`), workers: files.filter((f) => f.startsWith(`worker-${pid}-`)).map(read) };
}

/** Run the CLI with `args` until ready (then `meanwhile`, which may read what was loaded so far), stop it; what each process loaded, by role. */
async function loaded(dir: string, args: string[], meanwhile?: (gw: CliGateway, sofar: () => Loaded) => Promise<void>): Promise<Loaded> {
  const trace = mkdtempSync(join(dir, 'trace-'));
  const gw = await startCli(['--manifests', join(dir, 'manifests'), '--workers', '2', ...args], { env: { NODE_OPTIONS: `--import=${HOOK}`, SGW_MODULE_TRACE: trace } });
  const pid = gw.child.pid!;
  await meanwhile?.(gw, () => traced(trace, pid));
  expect(await gw.stop()).toBe(0);
  return traced(trace, pid);
}

const payloadLog = (urls: string[]): string[] => urls.filter((u) => u.includes('/gateway/payload-log/'));
const ioredis = (urls: string[]): string[] => urls.filter((u) => u.includes('/node_modules/ioredis/'));
const fastify = (urls: string[]): string[] => urls.filter((u) => u.includes('/node_modules/fastify/'));
/** Node's own undici, which `import ... from 'node:http'` loads (nodejs/node#59686; gateway/wire/node-http.ts). */
const undici = (urls: string[]): string[] => urls.filter((u) => u.startsWith('node:internal/deps/undici'));

describe('what each process loads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-role-modules-'));
  mkdirSync(join(dir, 'manifests'));
  writeFileSync(join(dir, 'manifests', 'iris.yaml'), sdep('iris', 'ns', { predictors: [{ name: 'main', graph: { name: 'clf' } }] }));
  writeFileSync(join(dir, 'sinks.yaml'), `- name: disk\n  type: file\n  path: ${join(dir, 'events.jsonl')}\n`);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('without --log-sinks no process loads payload logging, and without --redis-url none loads ioredis', async () => {
    const { primary, workers } = await loaded(dir, []);
    expect(workers).toHaveLength(2);
    for (const urls of [primary, ...workers]) {
      expect(urls.length).toBeGreaterThan(50);
      // Node's own modules are listed too (the trace's exit line): what undici is checked against.
      expect(urls).toContain('node:internal/http2/core');
      expect(payloadLog(urls)).toEqual([]);
      expect(ioredis(urls)).toEqual([]);
      expect(undici(urls)).toEqual([]);
    }
    // The primary's admin server is fastify's; no worker has its own routes without the OAuth front end.
    expect(fastify(primary)).not.toEqual([]);
    for (const urls of workers) expect(fastify(urls)).toEqual([]);
  }, 120_000);

  it('with the OAuth front end on, a worker loads fastify at the first request for its own routes; requests that come while it loads are all served', async () => {
    const oauthDir = mkdtempSync(join(dir, 'oauth-'));
    mkdirSync(join(oauthDir, 'manifests'));
    writeFileSync(join(oauthDir, 'manifests', 'secure.yaml'), sdep('secure', 'ns', { oauth_key: 'key', oauth_secret: 'secret', predictors: [{ name: 'main', graph: { name: 'clf' } }] }));
    const answers: string[] = [];
    let before: string[][] = [];
    const { workers } = await loaded(oauthDir, [], async (gw, sofar) => {
      // Ready, and nothing asked of the own routes yet: no worker has loaded fastify.
      before = sofar().workers;
      // Six at once on fresh connections: the first starts the load, the others wait for it.
      const asked = Array.from({ length: 6 }, async () => {
        const r = await request(`http://127.0.0.1:${gw.port}/ping`, { reset: true });
        answers.push(`${r.statusCode} ${await r.body.text()}`);
      });
      await Promise.all(asked);
    });
    expect(before.length).toBeGreaterThan(0);
    for (const urls of before) expect(fastify(urls)).toEqual([]);
    expect(answers).toEqual(Array(6).fill('200 pong'));
    expect(workers.some((urls) => fastify(urls).some((u) => u.endsWith('/fastify/fastify.js')))).toBe(true);
  }, 120_000);

  it('with --log-sinks the workers load the writers, the primary the sinks it watches; still no ioredis without --redis-url', async () => {
    const { primary, workers } = await loaded(dir, ['--log-sinks', join(dir, 'sinks.yaml')]);
    expect(workers).toHaveLength(2);
    for (const urls of workers) {
      expect(payloadLog(urls).some((u) => u.endsWith('/payload-log/plane.js'))).toBe(true);
      expect(payloadLog(urls).some((u) => u.endsWith('/payload-log/file-sink.js'))).toBe(true);
      expect(ioredis(urls)).toEqual([]);
    }
    expect(payloadLog(primary).some((u) => u.endsWith('/payload-log/sinks.js'))).toBe(true);
    expect(ioredis(primary)).toEqual([]);
  }, 120_000);
});
