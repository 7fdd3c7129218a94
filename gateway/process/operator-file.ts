/**
 * A YAML file the operator mounts (a ConfigMap) and the gateway applies again while it runs: the
 * --jwt-providers file, the --log-sinks file. Watched (edge/watched-files.ts), read again when it
 * changes, parsed and checked whole, and applied when it parses and says something new. A file that
 * does not parse, or has an entry that is refused (the error names it), changes nothing: what is in
 * use stays, and the failure is logged and counted once per content. Half-written files (a mount
 * mid-swap) are read again at the next change.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { WatchedFiles } from '../edge/watched-files.js';

/** Whether two sets of names (what a table compiled against, what a file now names) are the same. */
export const sameNames = (a: ReadonlySet<string> | undefined, b: ReadonlySet<string>): boolean => a !== undefined && a.size === b.size && [...b].every((n) => a.has(n));

export interface OperatorFileDeps<T> {
  /** Parse and check the whole text: throws with the entry and field at fault. */
  readonly parse: (text: string) => T;
  /** Apply what the file now says (only when it differs from what is in use). */
  readonly apply: (value: T) => void;
  readonly log: Logger;
  /** Counts each change read: `success` (in use now) or `failure` (the old one stays). */
  readonly counted: (result: 'success' | 'failure') => void;
  /** What the file holds, for log lines: "JWT providers", "log sinks". */
  readonly what: string;
  /** The fields of an applied value logged (names, not secrets). */
  readonly described: (value: T) => Record<string, unknown>;
}

export class OperatorFile<T> {
  private readonly files: WatchedFiles;
  private applied: string;
  private failed = '';

  constructor(
    private readonly path: string,
    /** What the gateway started with (read and checked by config/). */
    current: T,
    private readonly d: OperatorFileDeps<T>,
  ) {
    this.applied = JSON.stringify(current);
    this.files = new WatchedFiles(
      () => ({ files: [path] }),
      () => this.reload(),
    );
  }

  start(): void {
    this.files.start();
    // A change between start-up's read and the watch.
    this.reload();
  }

  close(): void {
    this.files.close();
  }

  /** Read the file again; apply it when it parses and says something new. Never throws. */
  reload(): void {
    const { log, what } = this.d;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      // Mid-swap or removed: what is in use stays; the next change is read.
      log.debug({ file: this.path, problem: (err as NodeJS.ErrnoException).code ?? String(err) }, `${what} file unreadable now: the ones in use stay`);
      return;
    }
    const digest = createHash('sha256').update(text).digest('hex');
    if (digest === this.failed) return;
    let value: T;
    try {
      value = this.d.parse(text);
    } catch (err) {
      this.failed = digest;
      this.d.counted('failure');
      log.warn({ file: this.path, problem: (err as Error).message }, `${what} file not applied: the ones in use stay`);
      return;
    }
    this.failed = '';
    const json = JSON.stringify(value);
    if (json === this.applied) return;
    this.applied = json;
    this.d.counted('success');
    log.info({ file: this.path, ...this.d.described(value) }, `${what} file applied`);
    this.d.apply(value);
  }
}
