/**
 * Events into a Redis stream, from the process that logged them (docs/payload-logging.md#delivery):
 *
 * - a cloudevents sink's buffer, `seldon-gateway:log:{<sink>}` (one key, so one slot on a
 *   Cluster): an event counts as logged (`buffered`) once the stream has it, and a replica too on
 *   Sentinel and Cluster (`WAIT 1` on the durable connection, auth/redis.ts `durableScript`: a
 *   failover then loses nothing written). The shippers (shipper.ts) deliver it and trim what the
 *   sink acknowledged, so the stream holds only what is owed; it is bounded by `maxLen` exactly:
 *   the append script stops at the bound, and what it did not take waits here, in memory, bounded
 *   by `queueBytes`, then overflows (counted). Nothing undelivered is ever trimmed.
 * - a redis-stream sink, the operator's key: `XADD … MAXLEN ~ maxLen`, delivered once written;
 *   its consumers are the operator's, and so is its bound.
 *
 * A batch is one script call (one round trip, atomic). While Redis is away, or the append fails,
 * the batch waits and is sent again after a backoff: a batch whose reply was lost may be written
 * twice, and a duplicate carries the same `ce-id`. Buffer events that no replica acknowledged in
 * time are on the primary only: they wait in memory until another `WAIT` on the same connection
 * confirms them (not written again; newer events go on being appended behind them), or are
 * written again if that connection was made anew meanwhile.
 */
import type { Logger } from 'pino';
import { KEY_PREFIX, Unacknowledged, type RedisConnection } from '../auth/redis.js';
import { entryArgs, eventBytes, type LogEvent } from './event.js';
import type { LogMetrics } from './metrics.js';
import { Pump, backoffMs, countAll, type PumpSettings, type Undelivered } from './pump.js';

/** The stream that holds a cloudevents sink's events until its sink took them. */
export const bufferKey = (sink: string): string => `${KEY_PREFIX}log:{${sink}}`;

/**
 * KEYS[1]: the stream; ARGV[1]: `bound` (a buffer: stop at ARGV[2] entries, each kept as `ce` and
 * `data`) or `trim` (an operator's stream: `MAXLEN ~ ARGV[2]`, the attributes spread into fields as
 * event.ts `streamFields` lists them); then each event as its attributes' JSON and its payload.
 * Returns the events appended, in order.
 */
const APPEND_LUA = `local bound = ARGV[1] == 'bound'
local max = tonumber(ARGV[2])
local names = {'specversion', 'id', 'type', 'source', 'time', 'requestid', 'modelid', 'inferenceservicename', 'namespace', 'endpoint', 'protocol', 'truncated', 'bodylength', 'datacontenttype'}
local len = 0
if bound then len = redis.call('XLEN', KEYS[1]) end
local added = 0
for i = 3, #ARGV - 1, 2 do
  if bound then
    if len >= max then break end
    redis.call('XADD', KEYS[1], '*', 'ce', ARGV[i], 'data', ARGV[i + 1])
    len = len + 1
  else
    local a = cjson.decode(ARGV[i])
    local f = {}
    for _, k in ipairs(names) do
      if a[k] ~= nil then
        f[#f + 1] = k
        f[#f + 1] = a[k]
      end
    end
    f[#f + 1] = 'data'
    f[#f + 1] = ARGV[i + 1]
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', max, '*', unpack(f))
  end
  added = added + 1
end
return added
`;

type Append = (...args: (string | number | Buffer)[]) => Promise<unknown>;

export class StreamWriter extends Pump {
  private readonly append: Append;
  private readonly maxLen: number;
  /**
   * Buffer events the primary has and no replica acknowledged yet (their append's WAIT timed out),
   * with the durable connection they were written on. They wait here, off the queue (newer events
   * are appended behind them meanwhile), until a WAIT on that connection confirms them all; on a
   * new connection (a failover, a reconnect) they are written again.
   */
  private unconfirmed: LogEvent[] = [];
  private unconfirmedBytes = 0;
  private unconfirmedOn = -1;
  private confirmTimer: NodeJS.Timeout | undefined;
  private confirming: Promise<void> | undefined;
  private confirmFailures = 0;
  private readonly stopListening: () => void;

  constructor(
    private readonly sink: string,
    private readonly redis: RedisConnection,
    /** The stream's key, and whether it is a cloudevents sink's buffer (bounded, shipped) or the operator's stream. */
    private readonly target: { readonly key: string; readonly buffer: boolean },
    settings: PumpSettings & { readonly maxLen: number },
    private readonly metrics: LogMetrics,
    private readonly log?: Logger,
  ) {
    super(settings);
    this.maxLen = settings.maxLen;
    // A buffer's append must reach a replica before it counts (`requireAck`); an operator's stream is delivered once written.
    this.append = redis.durableScript(target.buffer ? 'sgwLogBuffer' : 'sgwLogAppend', { numberOfKeys: 1, lua: APPEND_LUA }, { requireAck: target.buffer }) as Append;
    // The connection outlives this writer (a sink changed or removed): `close` removes the listener.
    this.stopListening = redis.onState((up) => {
      if (up) this.kick();
    });
  }

  protected override ready(): boolean {
    return this.redis.up;
  }

  protected override extraBytes(): number {
    return this.unconfirmedBytes;
  }

  protected async deliver(batch: LogEvent[]): Promise<Undelivered> {
    if (this.unconfirmed.length > 0 && this.unconfirmedOn !== this.redis.durableConnection) {
      // Written on a connection that is gone: whether a replica has them cannot be asked; again, first.
      batch = [...this.takeUnconfirmed(), ...batch];
    }
    const args: (string | number | Buffer)[] = [this.target.key, this.target.buffer ? 'bound' : 'trim', this.maxLen];
    for (const e of batch) args.push(...entryArgs(e));
    let added: number;
    const connection = this.redis.durableConnection;
    try {
      added = Number(await this.append(...args));
    } catch (err) {
      if (!(err instanceof Unacknowledged)) {
        countAll(this.metrics, this.sink, batch, 'retried');
        return batch;
      }
      // Appended, but no replica has them yet: confirmed later, not written again while this connection lasts.
      added = Number(err.value);
      this.holdUnconfirmed(batch.slice(0, added), connection);
      return batch.slice(added);
    }
    countAll(this.metrics, this.sink, added === batch.length ? batch : batch.slice(0, added), this.target.buffer ? 'buffered' : 'delivered');
    // The buffer is at its bound (the sink is behind): the rest waits here, then overflows.
    return batch.slice(added);
  }

  private takeUnconfirmed(): LogEvent[] {
    const events = this.unconfirmed;
    this.unconfirmed = [];
    this.unconfirmedBytes = 0;
    return events;
  }

  private holdUnconfirmed(events: readonly LogEvent[], connection: number): void {
    if (events.length === 0) return;
    if (this.unconfirmedOn !== connection) this.unconfirmed.push(...this.takeUnconfirmed());
    this.unconfirmedOn = connection;
    for (const e of events) {
      this.unconfirmed.push(e);
      this.unconfirmedBytes += eventBytes(e);
    }
    this.confirmSoon();
  }

  private confirmSoon(): void {
    if (this.confirmTimer !== undefined || this.closed) return;
    this.confirmTimer = setTimeout(
      () => {
        this.confirmTimer = undefined;
        this.confirming ??= this.confirm().finally(() => (this.confirming = undefined));
      },
      backoffMs(this.confirmFailures, this.settings.retryMinMs, this.settings.retryMaxMs),
    );
    this.confirmTimer.unref();
  }

  /** Ask the primary whether a replica has them now (`WAIT 1`); a connection made anew since: write them again. */
  private async confirm(): Promise<void> {
    if (this.unconfirmed.length === 0 || this.closed) return;
    if (this.unconfirmedOn !== this.redis.durableConnection) {
      for (const e of this.takeUnconfirmed()) if (!this.offer(e)) this.metrics.dropped(this.sink, e.kind, 'overflow');
      return;
    }
    let replicated = false;
    try {
      replicated = await this.redis.replicated(this.target.key);
    } catch {
      // Asked again later.
    }
    if (replicated) {
      this.confirmFailures = 0;
      countAll(this.metrics, this.sink, this.takeUnconfirmed(), 'buffered');
      return;
    }
    this.confirmFailures++;
    if (this.unconfirmedBytes > this.settings.queueBytes / 2) {
      // No replica for this long: they stay on the primary alone, counted as logged (the gateway's stance on
      // durable writes, docs/redis.md), rather than refuse newer events.
      const events = this.takeUnconfirmed();
      this.log?.warn({ sink: this.sink, events: events.length }, 'log events on the Redis primary only: no replica acknowledged them; a failover now could lose them');
      countAll(this.metrics, this.sink, events, 'buffered');
      return;
    }
    this.confirmSoon();
  }

  override close(orphans?: (events: readonly LogEvent[]) => void): LogEvent[] {
    this.stopListening();
    if (this.confirmTimer !== undefined) clearTimeout(this.confirmTimer);
    this.confirmTimer = undefined;
    return [...super.close(orphans), ...this.takeUnconfirmed()];
  }
}
