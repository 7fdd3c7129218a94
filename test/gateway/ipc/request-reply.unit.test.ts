/**
 * gateway/ipc/request-reply.ts over a real cluster worker's IPC channel: replies matched to their
 * requests by id in either direction, errors carried back, a silent peer timed out, a gone one refused.
 */
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channel, fromWorkers, Requester, serve, worker } from '../../../gateway/ipc/request-reply.js';

interface Echo {
  readonly text?: string;
  readonly fail?: string;
  readonly silent?: boolean;
  readonly hold?: number;
}
const ECHO = channel<Echo, { echoed: string; pid: number }>('test-echo');
const ASK_PRIMARY = channel<{ n: number }, { answer?: number; error?: string }>('test-ask-primary');
const COUNT = channel<{ n: number }, number>('test-count');

describe('IPC request and reply with a cluster worker', () => {
  let w: Worker;
  let echo: Requester<Echo, { echoed: string; pid: number }>;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-ipc-'));

  beforeAll(async () => {
    // The worker runs the helper's own source, transpiled as the build does (any supported Node runs it).
    const source = fileURLToPath(new URL('../../../gateway/ipc/request-reply.ts', import.meta.url));
    const helper = join(dir, 'request-reply.mjs');
    writeFileSync(helper, ts.transpileModule(readFileSync(source, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: source }).outputText);
    cluster.setupPrimary({ exec: fileURLToPath(new URL('../../fixtures/ipc-peer.mjs', import.meta.url)), silent: true });
    w = cluster.fork({ SGW_IPC_HELPER: helper });
    await new Promise<void>((resolve) => w.on('message', (m: { type?: string }) => m?.type === 'test-ready' && resolve()));
    echo = new Requester(ECHO, fromWorkers, 5000);
  });
  afterAll(() => {
    echo.close();
    if (w.isConnected()) w.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a request with the value the worker computed', async () => {
    expect(await echo.request(worker(w), { text: 'hello' })).toEqual({ echoed: 'hello', pid: w.process.pid });
  });

  it('matches each reply to its own request when they come back in another order', async () => {
    const texts = ['a', 'b', 'c'];
    const replies = await Promise.all(texts.map((text) => echo.request(worker(w), { text, hold: texts.length })));
    expect(replies.map((r) => r.echoed)).toEqual(texts);
  });

  it('rejects with the error the worker threw', async () => {
    await expect(echo.request(worker(w), { fail: 'this one' })).rejects.toThrow('refused this one');
  });

  it('rejects a request the worker never answers after the timeout, and answers the next one', async () => {
    const quick = new Requester(ECHO, fromWorkers, 100);
    try {
      await expect(quick.request(worker(w), { silent: true })).rejects.toThrow('no answer within 100 ms');
      expect((await quick.request(worker(w), { text: 'after' })).echoed).toBe('after');
    } finally {
      quick.close();
    }
  });

  it('lets a worker ask the primary, and carries the primary’s error back to it', async () => {
    const asked: number[] = [];
    const stop = serve(COUNT, fromWorkers, ({ n }) => {
      asked.push(n);
      if (n < 0) throw new Error('negative');
      return n + 1;
    });
    const ask = new Requester(ASK_PRIMARY, fromWorkers, 5000);
    try {
      expect(await ask.request(worker(w), { n: 41 })).toEqual({ answer: 42 });
      expect(await ask.request(worker(w), { n: -1 })).toEqual({ error: 'negative' });
      expect(asked).toEqual([41, -1]);
    } finally {
      ask.close();
      stop();
    }
  });

  it('ignores the messages of other channels', async () => {
    const stray: unknown[] = [];
    const stop = fromWorkers.listen((m) => stray.push(m));
    try {
      // A request of a channel nobody serves: no reply, only the timeout.
      const unserved = new Requester(channel<Echo, unknown>('test-unserved'), fromWorkers, 100);
      await expect(unserved.request(worker(w), { text: 'x' })).rejects.toThrow('no answer within 100 ms');
      unserved.close();
      expect(await echo.request(worker(w), { text: 'still' })).toMatchObject({ echoed: 'still' });
      expect(stray).toEqual([expect.objectContaining({ type: 'test-echo:reply', value: { echoed: 'still', pid: w.process.pid } })]);
    } finally {
      stop();
    }
  });

  it('refuses at once a request to a worker that is gone', async () => {
    const peer = worker(w);
    w.kill();
    await once(w, 'exit');
    await expect(echo.request(peer, { text: 'late' })).rejects.toThrow('no IPC channel');
  });
});
