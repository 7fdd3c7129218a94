/**
 * Files the operator mounts and the gateway re-reads while it runs (the TLS pairs, the JWT
 * providers file): their directories are watched (`fs.watch` on a directory sees Kubernetes'
 * atomic `..data` symlink swap and editors' rename-into-place) and every file is stat'ed every few
 * seconds in case a watch misses something (network filesystems, some overlay setups). Events that
 * arrive together (a Secret update touches several entries) make one call of `changed`.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

/** How often the files are stat'ed besides being watched. */
const POLL_MS = 3000;
/** Events that arrive together make one call. */
const SETTLE_MS = 100;

/** What to watch now: files (stat'ed; their directories watched) and more directories (a directory of pairs). */
export interface Watched {
  readonly files: readonly string[];
  readonly dirs?: readonly string[];
}

export class WatchedFiles {
  private readonly watchers = new Map<string, FSWatcher>();
  private poller: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private last = '';
  private closed = false;

  /** `watched` may throw (a directory being swapped): the poll tries again. `changed` must not throw. */
  constructor(
    private readonly watched: () => Watched,
    private readonly changed: () => void,
  ) {}

  /** Watch the directories and poll the files; a change from now on calls `changed` within about a second (the poll: a few). */
  start(): void {
    this.last = this.signature();
    this.rewatch();
    this.poller = setInterval(() => {
      if (this.signature() !== this.last) this.fire();
    }, POLL_MS);
    this.poller.unref();
  }

  close(): void {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    if (this.settle) clearTimeout(this.settle);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private fire(): void {
    if (this.closed) return;
    this.last = this.signature();
    this.changed();
    this.rewatch();
  }

  /** What to watch now; nothing while `watched` throws (the next poll asks again). */
  private paths(): Watched {
    try {
      return this.watched();
    } catch {
      return { files: [] };
    }
  }

  /** Inode, size and mtime of every file (symlinks followed). */
  private signature(): string {
    const w = this.paths();
    const parts: string[] = [];
    for (const f of w.files) {
      const s = statSync(f, { throwIfNoEntry: false });
      parts.push(s ? `${f}:${s.ino}:${s.size}:${s.mtimeMs}` : `${f}:-`);
    }
    for (const d of w.dirs ?? []) parts.push(d);
    return parts.join('|');
  }

  /** Watch exactly the directories that hold a watched file, and the extra ones. */
  private rewatch(): void {
    if (this.closed) return;
    const w = this.paths();
    const dirs = new Set<string>([...w.files.map((f) => dirname(f)), ...(w.dirs ?? [])]);
    for (const [d, watcher] of this.watchers) {
      if (dirs.has(d)) continue;
      watcher.close();
      this.watchers.delete(d);
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const watcher = watch(d, { persistent: false }, () => this.soon());
        watcher.on('error', () => {
          watcher.close();
          this.watchers.delete(d);
        });
        this.watchers.set(d, watcher);
      } catch {
        // Not watchable (gone, no inotify): the poll covers it.
      }
    }
  }

  private soon(): void {
    if (this.settle || this.closed) return;
    this.settle = setTimeout(() => {
      this.settle = undefined;
      this.fire();
    }, SETTLE_MS);
    this.settle.unref();
  }
}
