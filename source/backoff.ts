/**
 * Exponential backoff with jitter for reconnects to the Kubernetes API: many gateway replicas
 * that lost the API server at the same moment must not come back at the same moment.
 */
export interface BackoffOptions {
  /** First delay (before jitter). */
  initialMs: number;
  /** Ceiling of the delay (before jitter). */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /** Fraction of each delay that is random: 0 = none, 0.5 = between 50 % and 100 % of it. */
  jitter: number;
  random: () => number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { initialMs: 200, maxMs: 10_000, factor: 2, jitter: 0.5, random: Math.random };

export class Backoff {
  private readonly options: BackoffOptions;
  private attempt = 0;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt; each call grows the next one. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.options;
    const base = Math.min(maxMs, initialMs * factor ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(base * (1 - jitter * random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** A timer-based sleep that can be cut short (stop() must not wait out a long backoff). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
