/**
 * How long a worker stops routing while a deployment is edited: the real CLI
 * (one worker) over SDEPS background deployments (default 10,000) and one deployment of
 * PREDICTORS predictors (default 1,000, the per-deployment limit), a client sending predictions
 * one after another on one keep-alive connection, first for BASE_S seconds with no change, then
 * for EDIT_S seconds while the big deployment is edited every EDIT_MS. Prints latency
 * percentiles and the worst request of each phase. Not a test: run it by hand.
 *
 *   npm run bench -- reconfig
 *   SDEPS=0 PREDICTORS=1000 npm run bench -- reconfig      # one big deployment alone
 *   SDEPS=10000 PREDICTORS=2 npm run bench -- reconfig     # edit one of 10k small ones
 *
 * Bounded: BASE_S + EDIT_S seconds of traffic (default 3 + 6), to 127.0.0.1 only.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { atCleanup, runMain, sleep } from '../lib/children.js';
import { counter, metricsText, startGateway } from '../lib/gateway.js';
import { startModel } from '../lib/http.js';

const SDEPS = Number(process.env.SDEPS ?? 10_000);
const PREDICTORS = Number(process.env.PREDICTORS ?? 1000);
const BASE_S = Number(process.env.BASE_S ?? 3);
const EDIT_S = Number(process.env.EDIT_S ?? 6);
const EDIT_MS = Number(process.env.EDIT_MS ?? 500);

const sdep = (name: string, namespace: string, predictors: number, revision: number): object => ({
  apiVersion: 'machinelearning.seldon.io/v1',
  kind: 'SeldonDeployment',
  metadata: { name, namespace },
  spec: {
    annotations: { 'seldon.io/rest-timeout': String(3000 + revision) },
    predictors: Array.from({ length: predictors }, (_, i) => ({ name: `p${i}`, traffic: i === 0 ? 100 : 0 })),
  },
});

const summary = (name: string, ms: number[]): string => {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number): string => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
  return `${name.padEnd(26)} ${String(s.length).padStart(6)} requests   p50 ${q(0.5)} ms   p99 ${q(0.99)} ms   max ${s[s.length - 1]!.toFixed(2)} ms`;
};

runMain('reconfig-stall', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-stall-'));
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const background = Array.from({ length: SDEPS }, (_, i) => sdep(`bg-${i}`, `team-${i % 50}`, 2, 0));
  writeFileSync(join(dir, 'background.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: background }));
  writeFileSync(join(dir, 'probe.json'), JSON.stringify(sdep('probe', 'bench', 1, 0)));
  const writeBig = (revision: number): void => writeFileSync(join(dir, 'big.json'), JSON.stringify(sdep('big', 'bench', PREDICTORS, revision)));
  writeBig(0);

  const backend = await startModel('{"data":{"ndarray":[[1]]}}');
  atCleanup(() => backend.close());

  const gw = await startGateway('gateway', {
    log: join(dir, 'gateway.log'),
    manifests: dir,
    upstreams: ['probe-p0.bench:8000'],
    backendPort: backend.port,
    readyTimeoutMs: 120_000,
  });
  const generation = async (): Promise<number> => counter(await metricsText(gw.admin), 'seldon_gateway_config_generation');

  const pool = new Pool(`http://127.0.0.1:${gw.port}`, { connections: 1 });
  const phase = async (seconds: number): Promise<number[]> => {
    const out: number[] = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const t0 = performance.now();
      const r = await pool.request({ method: 'POST', path: '/seldon/bench/probe/api/v1.0/predictions', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[1]]}}' });
      await r.body.text();
      if (r.statusCode !== 200) throw new Error(`probe answered ${r.statusCode}`);
      out.push(performance.now() - t0);
    }
    return out;
  };

  await phase(1); // warm-up
  const base = await phase(BASE_S);
  const before = await generation();
  let revision = 0;
  const editor = setInterval(() => writeBig(++revision), EDIT_MS);
  const during = await phase(EDIT_S);
  clearInterval(editor);
  // The last edits may still be on their way (the file watch debounces): count tables until a second passes without one.
  let applied = await generation();
  for (let quiet = 0; quiet < 10;) {
    await sleep(100);
    const now = await generation();
    quiet = now === applied ? quiet + 1 : 0;
    applied = now;
  }

  console.log(`${SDEPS} background deployments; edits of one deployment with ${PREDICTORS} predictors every ${EDIT_MS} ms (${revision} written, ${applied - before} tables applied)`);
  console.log(summary('no edits', base));
  console.log(summary('while editing', during));
  await pool.close();
});
