/**
 * Compressors kept from one answer to the next (docs/edge.md#compression). A compressor made for
 * each answer costs more than its making: the JavaScript wrapper of its native handle outlives the
 * young generation's collections, so every answer's compressor and what it holds are promoted and
 * wait for a full collection. A worker compressing 100 KB answers ran one every second, about a
 * tenth of a millisecond of CPU per answer (load/README.md#compression). A kept one is reset (its
 * settings stay) and lent to the next answer with the same settings.
 *
 * Whole answers only (rest/answer-encoder.ts: one pass over a body held whole), gzip and zstd only:
 * node:zlib's brotli reset forgets the quality it was made with.
 *
 * The pool owns its idle compressors: at most MAX_IDLE per settings, each freed once unused for
 * IDLE_MS (a sweep runs while any is idle); `clear` frees them all.
 */
import type { Transform } from 'node:stream';

/** Idle compressors kept per settings: the answers a worker compresses at once, in practice. */
const MAX_IDLE = 4;
/** An idle compressor is freed after this long unused (a zstd one holds about 1.4 MB). */
const IDLE_MS = 30_000;

/** A compressor's settings: one is made by `make`, an answer ended by a flush of `finish`; kept between answers when `keep`. */
export interface CompressorKind {
  readonly key: string;
  readonly keep: boolean;
  readonly finish: number;
  make(): Transform;
}

/** One compressor and the answer it is lent to. */
class Kept {
  private out: ((piece: Buffer) => void) | undefined;
  private done: ((ok: boolean) => void) | undefined;
  private broken = false;
  idleSince = 0;

  constructor(
    readonly key: string,
    private readonly z: Transform,
    private readonly finish: number,
  ) {
    // Always flowing, never paused: its output goes to the answer it is lent to as it comes.
    z.on('data', (piece: Buffer) => this.out?.(piece));
    z.on('error', () => this.fail());
    z.on('close', () => this.fail());
  }

  get usable(): boolean {
    return !this.broken && !this.z.destroyed;
  }

  /** `pieces` compressed as one whole stream: each output piece to `out`, then `done` (false: it failed). */
  lend(pieces: readonly Buffer[], out: (piece: Buffer) => void, done: (ok: boolean) => void): void {
    this.out = out;
    this.done = done;
    for (const p of pieces) this.z.write(p);
    // The flush's callback follows its output: the stream never pauses, so nothing waits in it.
    (this.z as Transform & { flush(kind: number, cb: () => void): void }).flush(this.finish, () => this.settle(this.z.readableLength === 0));
  }

  free(): void {
    this.broken = true;
    this.z.destroy();
  }

  /** Ready for the next answer, as if new. */
  reset(): void {
    (this.z as Transform & { reset(): void }).reset();
  }

  private fail(): void {
    this.broken = true;
    this.settle(false);
  }

  private settle(ok: boolean): void {
    const done = this.done;
    this.out = undefined;
    this.done = undefined;
    done?.(ok && !this.broken);
  }
}

export class CompressorPool {
  private readonly idle = new Map<string, Kept[]>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxIdle = MAX_IDLE,
    private readonly idleMs = IDLE_MS,
  ) {}

  /** Compress `pieces` whole with a kept compressor of `kind`'s settings (or a new one): as `Kept.lend`. */
  compress(kind: CompressorKind, pieces: readonly Buffer[], out: (piece: Buffer) => void, done: (ok: boolean) => void): void {
    const kept = (kind.keep ? this.take(kind.key) : undefined) ?? new Kept(kind.key, kind.make(), kind.finish);
    kept.lend(pieces, out, (ok) => {
      if (ok && kind.keep) this.give(kept);
      else kept.free();
      done(ok);
    });
  }

  /** Idle compressors, all settings. */
  get size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Free every idle compressor. */
  clear(): void {
    for (const list of this.idle.values()) for (const k of list) k.free();
    this.idle.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Free those unused for the idle time; true when some are still kept. */
  sweep(): boolean {
    const before = this.now() - this.idleMs;
    for (const [key, list] of this.idle) {
      // The oldest first: a list is pushed to and popped from its end.
      let stale = 0;
      while (stale < list.length && list[stale]!.idleSince <= before) list[stale++]!.free();
      if (stale === list.length) this.idle.delete(key);
      else if (stale > 0) list.splice(0, stale);
    }
    return this.idle.size > 0;
  }

  /** The newest idle one of `key` still usable (one that failed while idle is freed). */
  private take(key: string): Kept | undefined {
    const list = this.idle.get(key);
    for (let k = list?.pop(); k !== undefined; k = list!.pop()) {
      if (k.usable) return k;
      k.free();
    }
    return undefined;
  }

  private give(kept: Kept): void {
    if (!kept.usable) return;
    let list = this.idle.get(kept.key);
    if (list === undefined) this.idle.set(kept.key, (list = []));
    if (list.length >= this.maxIdle) {
      kept.free();
      return;
    }
    kept.reset();
    kept.idleSince = this.now();
    list.push(kept);
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => {
        if (this.sweep()) return;
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }, this.idleMs).unref();
    }
  }
}
