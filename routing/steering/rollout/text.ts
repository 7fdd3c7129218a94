/** How the rollout's sentences write numbers, durations and steps. */
import type { RolloutConfig } from './config.js';

export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;
export const signedPct = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}%`;
export const ms = (x: number | null): string => (x === null ? 'n/a' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);
export const secs = (x: number): string => `${Math.ceil(x / 1000)}s`;
/** Thousands separated by commas (toLocaleString costs a tenth of a simulated run). */
export const int = (x: number): string => String(Math.round(x)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

export function stepName(config: RolloutConfig, step: number): string {
  if (step < 0) return 'the mirror phase';
  return `step ${step + 1} of ${config.steps.length} (${config.steps[step]}%)`;
}
