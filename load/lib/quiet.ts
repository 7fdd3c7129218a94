/**
 * Waiting for a quiet machine: before a run, if processes this one did not start keep the machine
 * busy (other people's work on 2 shared cores), wait for them to calm down, within one budget for
 * the whole benchmark so the wait is bounded.
 */
import { cpus } from 'node:os';
import { sleep } from './children.js';
import { foreignPct, machineTicks } from './proc.js';

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

/**
 * What other processes did to the machine while a run went on: their CPU, sampled every second, in
 * percent of one core. A run is quiet when the others used at most 5% of a core on average and 30%
 * in their worst second; otherwise its timings are the neighbours' as much as its own.
 */
export class MachineWatch {
  private seconds = 0;
  private total = 0;
  private worst = 0;
  private last = machineTicks();
  private readonly timer = setInterval(() => {
    const now = machineTicks();
    const pct = foreignPct(this.last, now, 1) * cpus().length;
    this.last = now;
    this.seconds++;
    this.total += pct;
    this.worst = Math.max(this.worst, pct);
  }, 1000);

  /** Stops sampling; the verdict line. */
  stop(): string {
    clearInterval(this.timer);
    const mean = this.seconds ? this.total / this.seconds : 0;
    const quiet = mean <= 5 && this.worst <= 30;
    return `machine: ${quiet ? 'quiet' : 'BUSY'} (over ${this.seconds} s other processes used ${mean.toFixed(1)}% of a core on average, ${this.worst.toFixed(0)}% in the worst second${quiet ? '' : ': timings are theirs as much as ours'})`;
  }
}
