/**
 * Descriptor exhaustion on the accepting side: stop accepting, say so, come back by itself.
 *
 * What Node does by itself (measured on Node 20, Linux, `ulimit -n 64`): when accept() fails with
 * EMFILE or ENFILE, libuv closes a descriptor it holds in reserve, accepts every pending
 * connection and closes it at once, then reopens the reserve. The `net.Server` sees nothing: no
 * 'connection', no 'error'. Clients get an empty close, nothing is logged or counted, and an
 * exhausted worker that shares the listening socket keeps taking (and dropping) connections that
 * a sibling worker could have served. Only when the reserve cannot be reopened does the server
 * emit 'error' (EMFILE, syscall accept), which without a listener kills the process.
 *
 * So the guard checks itself: every CHECK_MS, and on accepted connections at most every POKE_MS
 * once the connections accepted since the last check could have used the descriptors it counted
 * free (on every connection where they cannot be counted). A check counts the free descriptors
 * (headroom()) and, when they are near LOW_WATER or cannot be counted, tries to open LOW_WATER
 * of them; when it cannot (or a listener reports EMFILE/ENFILE) the process is out. Then it counts
 * (`seldon_gateway_accept_errors_total{reason}`), logs (at most once per LOG_EVERY_MS), reports
 * not ready, and stops accepting: its listeners close, so the kernel hands new connections to
 * the other workers (or refuses them) instead of libuv taking and dropping them. It checks again
 * with backoff and resumes once HEADROOM descriptors can be opened.
 */
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { devNull } from 'node:os';
import type { Logger } from 'pino';
import { LogBudget } from '../observe/log-budget.js';
import type { GatewayMetrics } from '../observe/metrics.js';

export type AcceptFailure = 'EMFILE' | 'ENFILE' | 'other';

export interface AcceptGuardOptions {
  readonly metrics: GatewayMetrics;
  /** Where to log (read when logging: the process may set it after construction). */
  log(): Logger | undefined;
  /** Stop accepting (close the listeners). */
  pause(): void;
  /** Accept again; a rejection is retried after the next backoff. */
  resume(): Promise<void>;
  /** The accepting state changed: a failure, or undefined once accepting again. */
  changed(failing: AcceptFailure | undefined): void;
  /** False once the listeners are closed for good: the guard stops. */
  alive(): boolean;
  readonly checkMs?: number;
  readonly lowWater?: number;
  readonly headroom?: number;
}

const CHECK_MS = 500;
/** At most this often on accepted connections (a check reads two small /proc files; near the limit it also opens and closes LOW_WATER descriptors). */
const POKE_MS = 5;
/**
 * Out when fewer than this many descriptors could be opened. Sized for a burst: once the limit is
 * reached libuv drops connections without JavaScript seeing them, so the pause must come before
 * (and some descriptors stay for upstream connections).
 */
const LOW_WATER = 48;
/** A check opens LOW_WATER descriptors only when fewer than this many times LOW_WATER are counted free. */
const PROBE_BELOW = 4;
/** Back once this many can be opened, so a few freed descriptors do not flap the state. */
const HEADROOM = 96;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 2000;
const LOG_EVERY_MS = 10_000;

/**
 * Try to open `n` descriptors (then close them): EMFILE or ENFILE if one could not be opened for
 * want of descriptors. Any other failure says nothing about descriptors: undefined, as when all open.
 */
export function descriptorShortage(n: number): 'EMFILE' | 'ENFILE' | undefined {
  const fds: number[] = [];
  try {
    for (let i = 0; i < n; i++) fds.push(openSync(devNull, 'r'));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? code : undefined;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** The soft RLIMIT_NOFILE from /proc/self/limits (Linux), or undefined (unlimited, or unknown). */
function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors this process could still open (Linux: the limit less those open), or undefined. */
export function freeDescriptors(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  try {
    // The directory's own descriptor is among those listed.
    return limit - (readdirSync('/proc/self/fd').length - 1);
  } catch {
    return undefined;
  }
}

/**
 * At least this many descriptors are free to this process (Linux: the limit less the size of its
 * descriptor table, /proc/self/status FDSize, which no count of open ones exceeds), or undefined.
 * Unlike listing /proc/self/fd its cost does not grow with the connections held: 4,000 open
 * descriptors took 1.6 ms to list, a stall of the event loop on every check.
 */
export function freeDescriptorsAtLeast(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  try {
    const m = /^FDSize:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'latin1'));
    return m ? limit - Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** File handles the system could still allocate (Linux: /proc/sys/fs/file-nr, where ENFILE comes from), or undefined. */
export function systemFreeDescriptors(): number | undefined {
  try {
    const [allocated, , max] = readFileSync('/proc/sys/fs/file-nr', 'latin1').trim().split(/\s+/).map(Number);
    return allocated !== undefined && max !== undefined && Number.isFinite(allocated) && Number.isFinite(max) ? max - allocated : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Descriptors free to this process, as cheaply as they can be counted: the table-size bound when
 * it leaves `enough`, else the exact count; the fewer of that and the system's; undefined when
 * either cannot be known.
 */
export function headroom(limit: number | undefined, enough: number): number | undefined {
  const system = systemFreeDescriptors();
  if (system === undefined) return undefined;
  const bound = freeDescriptorsAtLeast(limit);
  const own = bound !== undefined && bound >= enough ? bound : freeDescriptors(limit);
  return own === undefined ? undefined : Math.min(own, system);
}

export class AcceptGuard {
  private failingReason: AcceptFailure | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  private since = 0;
  private failedChecks = 0;
  private lastLogAt = -Infinity;
  private suppressed = 0;
  private logged = false;
  private resuming = false;
  private stopped = false;
  private checkedAt = -Infinity;
  private readonly limit = openFilesLimit();
  /**
   * Connections that may still be accepted before a check is due, as the last check counted them
   * (each holds a descriptor and may open one towards a model); undefined where descriptors cannot
   * be counted, and then every accepted connection may check (at most every POKE_MS).
   */
  private acceptable: number | undefined;
  private readonly otherLog = new LogBudget(1, LOG_EVERY_MS);

  constructor(private readonly o: AcceptGuardOptions) {}

  /** Why accepting fails now, or undefined while it works. */
  get failing(): AcceptFailure | undefined {
    return this.failingReason;
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.check(), this.o.checkMs ?? CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** An 'error' event of a listener: EMFILE/ENFILE put the guard in the failing state at once. */
  noteError(err: NodeJS.ErrnoException): void {
    const code = err.code === 'EMFILE' || err.code === 'ENFILE' ? err.code : 'other';
    if (code === 'other') {
      this.o.metrics.acceptErrors.labels(code).inc();
      const skipped = this.otherLog.take();
      if (skipped !== undefined) this.o.log()?.warn({ problem: err.message, code: err.code, ...(skipped ? { notLogged: skipped } : {}) }, 'accepting a connection failed');
      return;
    }
    if (this.failingReason === undefined) this.enter(code);
    else this.o.metrics.acceptErrors.labels(code).inc();
  }

  /**
   * A connection was accepted: check now if it may be near the limit and the last check is older
   * than POKE_MS, so that a burst of connections is noticed before libuv starts dropping them (not
   * only every CHECK_MS). Far from the limit a poke costs a decrement: a check near it opens and
   * closes LOW_WATER descriptors, which on every connection was a tenth of a cleartext connection's cost.
   */
  poke(): void {
    if (this.failingReason !== undefined) return;
    if (this.acceptable !== undefined && --this.acceptable > 0) return;
    if (performance.now() - this.checkedAt >= POKE_MS) this.check();
  }

  /** Healthy state, every CHECK_MS (and on poke). */
  private check(): void {
    if (!this.o.alive()) return this.stop();
    if (this.failingReason !== undefined) return;
    this.checkedAt = performance.now();
    const lowWater = this.o.lowWater ?? LOW_WATER;
    const free = headroom(this.limit, PROBE_BELOW * lowWater);
    // Opening them is the proof (and what non-Linux has), but it costs tens of microseconds: only near the limit.
    if (free === undefined || free < PROBE_BELOW * lowWater) {
      const short = descriptorShortage(lowWater);
      if (short !== undefined) return this.enter(short);
    }
    this.acceptable = free === undefined ? undefined : Math.floor((free - lowWater) / 2);
  }

  private enter(reason: AcceptFailure): void {
    this.failingReason = reason;
    this.acceptable = undefined;
    this.since = Date.now();
    this.failedChecks = 1;
    this.backoffMs = BACKOFF_MIN_MS;
    this.o.metrics.acceptErrors.labels(reason).inc();
    this.o.metrics.acceptPaused.set(1);
    const now = Date.now();
    this.logged = now - this.lastLogAt >= LOG_EVERY_MS;
    if (this.logged) {
      this.lastLogAt = now;
      this.o
        .log()
        ?.warn(
          { reason, ...(this.suppressed ? { episodesNotLogged: this.suppressed } : {}) },
          reason === 'ENFILE'
            ? 'the system is out of file descriptors: not accepting connections (not ready) until some are free'
            : 'this process is out of file descriptors: not accepting connections (not ready) until some are free',
        );
      this.suppressed = 0;
    } else this.suppressed++;
    this.o.pause();
    this.o.changed(reason);
    this.later();
  }

  private later(): void {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = setTimeout(() => this.recheck(), this.backoffMs);
    this.timer.unref();
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
  }

  /** Failing state, with backoff: resume once there is headroom. */
  private recheck(): void {
    this.timer = undefined;
    if (!this.o.alive()) return this.stop();
    const short = descriptorShortage(this.o.headroom ?? HEADROOM);
    if (short !== undefined) {
      this.failedChecks++;
      this.o.metrics.acceptErrors.labels(short).inc();
      this.later();
      return;
    }
    if (this.resuming) return;
    this.resuming = true;
    this.o.resume().then(
      () => {
        this.resuming = false;
        if (!this.o.alive()) return this.stop();
        const reason = this.failingReason;
        this.failingReason = undefined;
        this.o.metrics.acceptPaused.set(0);
        if (this.logged) this.o.log()?.info({ reason, pausedMs: Date.now() - this.since, failedChecks: this.failedChecks }, 'file descriptors free again: accepting connections');
        this.o.changed(undefined);
        this.timer = undefined;
        this.start();
      },
      (err: Error) => {
        this.resuming = false;
        this.o.log()?.warn({ problem: err.message }, 'could not listen again after running out of file descriptors: retrying');
        this.later();
      },
    );
  }
}

/** The /readyz detail while a process cannot accept connections . */
export function notAccepting(reason: AcceptFailure, who = 'this process'): string {
  return `${who} cannot accept connections: ${reason === 'EMFILE' ? 'out of file descriptors (EMFILE)' : reason === 'ENFILE' ? 'the system is out of file descriptors (ENFILE)' : 'accept failed'}`;
}
