/**
 * Waiting for a quiet machine: before a run, if processes this one did not start keep the machine
 * busy (other people's work on 2 shared cores), wait for them to calm down, within one budget for
 * the whole benchmark so the wait is bounded.
 */
import { foreignPct, machineTicks } from './proc.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class QuietGate {
  private waitedMs = 0;

  /** `thresholdPct`: foreign load (percent of the machine) under which a run counts as undisturbed. */
  constructor(
    readonly budgetMs: number,
    readonly thresholdPct: number,
  ) {}

  /** Resolves once foreign load is under the threshold, or at once when the budget is spent. */
  async wait(): Promise<void> {
    let warned = false;
    while (this.waitedMs < this.budgetMs) {
      const a = machineTicks();
      await sleep(500);
      const pct = foreignPct(a, machineTicks(), 0.5);
      if (pct < this.thresholdPct) return;
      if (!warned) process.stdout.write(`  (other processes use ${pct.toFixed(0)}% of the machine: waiting for quiet, budget left ${((this.budgetMs - this.waitedMs) / 1000).toFixed(0)} s)\n`);
      warned = true;
      this.waitedMs += 500;
      await sleep(500);
      this.waitedMs += 500;
    }
  }
}
