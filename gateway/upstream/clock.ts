/**
 * The clock of the request path: what time it is (performance.now() ms) and the timers of a
 * request and its attempts (route timeout, per-try timeout, retry backoff, gRPC deadlines). The
 * proxies take it from their dependencies, so that a test can drive timeouts without sleeping;
 * the process uses the real one. A timer takes its argument (the request or attempt it is for):
 * no closure per timer.
 */
export type Timer = ReturnType<typeof setTimeout>;

export interface Clock {
  now(): number;
  setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A): Timer;
  clearTimeout(timer: Timer): void;
  /** Run `timer` again, its own duration from now (Node's `refresh`: no new timer); also once it has fired. */
  refresh(timer: Timer): void;
}

export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms, arg) => setTimeout(fn, ms, arg),
  clearTimeout: (timer) => clearTimeout(timer),
  refresh: (timer) => void timer.refresh(),
};
