/**
 * Open-loop load at a fixed rate: runs lib/rate-generator.ts as a plain node child pinned to the
 * load core (request i due at t0 + i/rate, latency counted from then) and reads its one-line
 * JSON result. Bounded: the generator's own deadline, and a kill 30 s after the run's length.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeScript, pinned, runToEnd } from './children.js';
import type { RateConfig, RateResult } from './rate-generator.js';

export type { RateConfig, RateResult };

const HERE = dirname(fileURLToPath(import.meta.url));

export async function fixedRate(config: RateConfig, cpu: number): Promise<RateResult> {
  const r = await runToEnd(pinned([process.execPath, ...nodeScript(HERE, 'rate-generator')], cpu), config.durationMs + 30_000, {
    BENCH_RATE_CONFIG: JSON.stringify(config),
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`rate generator failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice(11)) as RateResult;
}
