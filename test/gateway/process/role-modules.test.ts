/**
 * Each process loads what its role and flags need, and nothing more (process/cluster.ts: "each role loads its
 * own plane"): the real CLI with two workers, every module each process loads recorded by a load hook
 * (test/fixtures/module-trace.mjs). Without --log-sinks no process loads payload logging; without --redis-url
 * none loads ioredis; with --log-sinks the workers load the writers and the primary its side of them.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';

const HOOK = fileURLToPath(new URL('../../fixtures/module-trace.mjs', import.meta.url));

/** Run the CLI with `args` until ready, stop it; what each process loaded, by role. */
async function loaded(dir: string, args: string[]): Promise<{ primary: string[]; workers: string[][] }> {
  const trace = mkdtempSync(join(dir, 'trace-'));
  const gw = await startCli(['--manifests', join(dir, 'manifests'), '--workers', '2', ...args], { env: { NODE_OPTIONS: `--import=${HOOK}`, SGW_MODULE_TRACE: trace } });
  const pid = gw.child.pid!;
  expect(await gw.stop()).toBe(0);
  // startCli starts again when a port it picked was taken meanwhile: only the started gateway's processes count.
  const files = readdirSync(trace);
  const read = (f: string): string[] => readFileSync(join(trace, f), 'utf8').split('\n').filter(Boolean);
  expect(files).toContain(`primary-${pid}`);
  return { primary: read(`primary-${pid}`), workers: files.filter((f) => f.startsWith(`worker-${pid}-`)).map(read) };
}

const payloadLog = (urls: string[]): string[] => urls.filter((u) => u.includes('/gateway/payload-log/'));
const ioredis = (urls: string[]): string[] => urls.filter((u) => u.includes('/node_modules/ioredis/'));

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
      expect(payloadLog(urls)).toEqual([]);
      expect(ioredis(urls)).toEqual([]);
    }
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
