/**
 * A file sink: events as JSON lines (the CloudEvents JSON format, event.ts `jsonLine`) appended to
 * the operator's file, for a Fluent Bit or Vector sidecar that tails it. Every process appends to
 * the one file with O_APPEND, a batch in one write, so lines of two workers never interleave.
 *
 * Rotation: before each batch the path is checked (at most once a second); when it names another
 * file than the one open (logrotate renamed it and made a new one) or none (renamed, not yet
 * replaced), the open file is closed and the path opened again (created). `copytruncate` needs
 * nothing: appends follow the truncation. A write that fails is retried after the backoff.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { jsonLine, type LogEvent } from './event.js';
import type { LogMetrics } from './metrics.js';
import { Pump, countAll, type PumpSettings, type Undelivered } from './pump.js';

/** How often the path is checked for a rotation. */
const ROTATION_CHECK_MS = 1000;

export class FileSink extends Pump {
  private file: FileHandle | undefined;
  private inode = -1;
  private checkedAt = 0;

  constructor(
    private readonly sink: string,
    private readonly path: string,
    settings: PumpSettings,
    private readonly metrics: LogMetrics,
    private readonly now: () => number = Date.now,
  ) {
    super(settings);
  }

  /** The open file, reopened when the path names another file (or none) now. */
  private async handle(): Promise<FileHandle> {
    const t = this.now();
    if (this.file !== undefined && t - this.checkedAt < ROTATION_CHECK_MS) return this.file;
    this.checkedAt = t;
    const now = await stat(this.path).catch(() => undefined);
    if (this.file !== undefined && now !== undefined && now.ino === this.inode) return this.file;
    await this.file?.close().catch(() => undefined);
    this.file = undefined;
    const f = await open(this.path, 'a', 0o640);
    this.inode = (await f.stat()).ino;
    this.file = f;
    return f;
  }

  protected async deliver(batch: LogEvent[]): Promise<Undelivered> {
    try {
      const f = await this.handle();
      await f.write(batch.map(jsonLine).join(''));
    } catch {
      // Unwritable now (a directory being swapped, a full disk): again later; the file is reopened.
      await this.release();
      countAll(this.metrics, this.sink, batch, 'retried');
      return batch;
    }
    // Closed while writing (the sink left the file): the handle this write opened goes with it.
    if (this.closed) await this.release();
    countAll(this.metrics, this.sink, batch, 'delivered');
    return [];
  }

  private async release(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    await f?.close().catch(() => undefined);
  }

  override close(orphans?: (events: readonly LogEvent[]) => void): LogEvent[] {
    const left = super.close(orphans);
    void this.release();
    return left;
  }
}
