/**
 * The shipper of a cloudevents sink with Redis (docs/payload-logging.md#delivery): one per replica,
 * in its cluster primary, a consumer of the consumer group `shippers` on the sink's buffer stream
 * (stream-writer.ts). Every replica's workers append to the one stream and every replica's shipper
 * reads it, so a replica that dies leaves nothing behind but entries pending in its name.
 *
 * A round: the entries this consumer read and has not delivered yet (a retry), else new ones
 * (`XREADGROUP … BLOCK … >` on a connection of its own: an idle shipper waits in Redis, it does not
 * poll); each is POSTed (http-sink.ts), `concurrency` at a time; those the sink took with a 2xx are
 * acknowledged (`XACK`), and only those. A failed round waits a backoff; an idle one claims entries
 * another consumer left pending longer than `claimIdle` (`XAUTOCLAIM`: a shipper that died, or
 * hung). Every few seconds a script (atomic) trims the acknowledged entries, forgets consumers long
 * gone with nothing pending, and measures the backlog, for the metrics and the admin page.
 *
 * At least once: an entry is acknowledged after its 2xx, so a crash between the two sends it
 * again (the same `ce-id`); an acknowledgement lost in a Redis failover does too. Nothing is
 * acknowledged unsent but an event the sink refused with a 4xx three times (counted, `rejected`).
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { RedisConnection } from '../auth/redis.js';
import { fromStreamFields, type LogEvent } from './event.js';
import { CloudEventsPoster, REJECTIONS_KEPT, SinkHealth, type PostResult } from './http-sink.js';
import type { LogMetrics } from './metrics.js';
import { LINGER_MS, backoffMs, withLimit } from './pump.js';
import { bufferKey } from './stream-writer.js';

export const SHIPPER_GROUP = 'shippers';
/** How long the stream of a sink that left --log-sinks is kept (its undelivered events, should it come back). */
const RETIRED_STREAM_S = 7 * 86_400;
/**
 * How long one read waits in Redis for new entries. Measured (load/README.md, payload logging): a
 * shipper polling every 100 ms cost a gateway serving 500 requests/s a few percent of its CPU with
 * nothing to ship; a blocked read costs nothing while it waits.
 */
const BLOCK_MS = 2000;
/** How often the stream is trimmed and measured. */
const MEASURE_MS = 5000;

/**
 * KEYS[1]: the stream; ARGV[1]: the group; ARGV[2]: idle ms after which a consumer with nothing
 * pending is forgotten. Trims what every consumer acknowledged (entries before the oldest pending
 * one, or up to the last delivered when none is pending), then returns {entries, pending, age ms
 * of the oldest}. Atomic, so no entry read meanwhile is trimmed unacknowledged.
 */
const TRIM_LUA = `local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return {0, 0, 0} end
local last = nil
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then last = f['last-delivered-id'] end
end
if last == nil then return {redis.call('XLEN', KEYS[1]), 0, 0} end
local p = redis.call('XPENDING', KEYS[1], ARGV[1])
local minid
if p[1] > 0 then
  minid = p[2]
else
  local dash = string.find(last, '-')
  minid = string.sub(last, 1, dash - 1) .. '-' .. (tonumber(string.sub(last, dash + 1)) + 1)
end
redis.call('XTRIM', KEYS[1], 'MINID', minid)
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name']) end
end
local len = redis.call('XLEN', KEYS[1])
local age = 0
if len > 0 then
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1]
  local t = redis.call('TIME')
  age = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(string.sub(first, 1, string.find(first, '-') - 1))
end
return {len, p[1], age}
`;

export interface ShipperSettings {
  readonly url: string;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly batch: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly claimIdleMs: number;
}

type Entry = readonly [id: string, event: LogEvent | undefined];

/** A stream reply (`XREADGROUP`'s one stream, or `XAUTOCLAIM`'s entries) as ids and events. */
function entriesOf(raw: unknown): Entry[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((e: [Buffer, Buffer[] | null]) => [e[0].toString(), e[1] ? fromStreamFields(e[1]) : undefined] as const);
}

export class Shipper {
  private readonly key: string;
  private readonly consumer = `${hostname()}-${process.pid}`;
  private readonly poster: CloudEventsPoster;
  private readonly trim: (...args: (string | number)[]) => Promise<unknown>;
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private measurer: NodeJS.Timeout | undefined;
  /** This consumer has entries read and not delivered (a failed round, a claim, a restart). */
  private ownPending = true;
  private failures = 0;
  private claimCursor = '0-0';
  private claimedAt = 0;
  private groupReady = false;
  /** The connection a read blocks on (made again when it ended: a failover can end it). */
  private blocking: ReturnType<RedisConnection['blockingClient']> | undefined;
  /** 4xx answers per entry id, for the entries of the current round only (replaced each round: nothing outlives its entry). */
  private rejections = new Map<string, number>();
  /** How its last POSTs went (the admin page). */
  readonly health = new SinkHealth();

  constructor(
    private readonly sink: string,
    private readonly redis: RedisConnection,
    private readonly settings: ShipperSettings,
    private readonly metrics: LogMetrics,
    private readonly log: Logger | undefined,
  ) {
    this.key = bufferKey(sink);
    this.poster = new CloudEventsPoster(settings.url, settings.timeoutMs, settings.concurrency);
    this.trim = redis.script('sgwLogTrim', { numberOfKeys: 1, lua: TRIM_LUA });
  }

  start(): void {
    this.measurer = setInterval(() => void this.measure(), MEASURE_MS);
    this.measurer.unref();
    this.next(0);
  }

  /**
   * The sink left --log-sinks: the shipper stops, and its stream (what was not delivered) is kept a
   * week more, then expires (the lifetime rule: a key of a sink that is gone does not stay for ever).
   */
  retire(): void {
    this.stop();
    this.client.call('EXPIRE', this.key, RETIRED_STREAM_S).catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.measurer !== undefined) clearInterval(this.measurer);
    this.blocking?.disconnect();
    this.blocking = undefined;
    this.poster.close();
  }

  private next(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.round();
    }, ms);
    this.timer.unref();
  }

  private get client(): RedisConnection['client'] {
    return this.redis.client;
  }

  private async ensureGroup(): Promise<void> {
    if (this.groupReady) return;
    // A sink back in the file: its stream (retired with an expiry, `retire`) is kept again.
    await this.client.call('PERSIST', this.key);
    try {
      // From the stream's start: entries appended before the first shipper came are delivered too.
      await this.client.call('XGROUP', 'CREATE', this.key, SHIPPER_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
    this.groupReady = true;
  }

  /** This consumer's own pending entries (`0`), or new ones (`>`), waiting in Redis up to BLOCK_MS for them. */
  private async read(from: '0' | '>'): Promise<Entry[]> {
    let r: [Buffer, unknown][] | null;
    if (from === '0') r = (await this.client.callBuffer('XREADGROUP', 'GROUP', SHIPPER_GROUP, this.consumer, 'COUNT', this.settings.batch, 'STREAMS', this.key, '0')) as [Buffer, unknown][] | null;
    else {
      // Stopped meanwhile: no connection made that nothing would close.
      if (this.stopped) return [];
      if (this.blocking === undefined || this.blocking.status === 'end') this.blocking = this.redis.blockingClient();
      const b = this.blocking;
      // Still connecting (no offline queue: a command now would fail): wait for it, within a read's time.
      if (b.status !== 'ready') {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, BLOCK_MS);
          b.once('ready', () => {
            clearTimeout(t);
            resolve();
          });
        });
        if ((b.status as string) !== 'ready') return [];
      }
      r = (await this.blocking.callBuffer('XREADGROUP', 'GROUP', SHIPPER_GROUP, this.consumer, 'COUNT', this.settings.batch, 'BLOCK', BLOCK_MS, 'STREAMS', this.key, '>')) as
        [Buffer, unknown][] | null;
    }
    return r === null || r.length === 0 ? [] : entriesOf(r[0]![1]);
  }

  /** Entries idle past `claimIdle` in another consumer's name (one that died) become this one's. */
  private async claim(): Promise<void> {
    const now = Date.now();
    if (now - this.claimedAt < this.settings.claimIdleMs / 4) return;
    const r = (await this.client.callBuffer('XAUTOCLAIM', this.key, SHIPPER_GROUP, this.consumer, this.settings.claimIdleMs, this.claimCursor, 'COUNT', this.settings.batch)) as [
      Buffer,
      unknown,
      unknown,
    ];
    this.claimCursor = r[0].toString();
    if (this.claimCursor === '0-0') this.claimedAt = now;
    const claimed = entriesOf(r[1]).length;
    if (claimed === 0) return;
    this.ownPending = true;
    this.metrics.claimed.inc({ sink: this.sink }, claimed);
  }

  private async round(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    let wait = 0;
    try {
      if (!this.redis.up) {
        wait = this.backoffMs();
        return;
      }
      await this.ensureGroup();
      // Entries a dead shipper left pending, checked every claimIdle/4 busy or not (`claim` says when).
      await this.claim();
      let entries: Entry[] = [];
      if (this.ownPending) {
        entries = await this.read('0');
        if (entries.length === 0) this.ownPending = false;
      }
      if (entries.length === 0) entries = await this.read('>');
      if (entries.length === 0) return;
      const failed = await this.ship(entries);
      this.failures = failed ? this.failures + 1 : 0;
      this.ownPending ||= failed;
      // A short round: let the next gather (as the writers do), rather than a read and an XACK per event or two.
      wait = failed ? this.backoffMs() : entries.length < this.settings.batch ? LINGER_MS : 0;
    } catch (err) {
      const message = (err as Error).message;
      if (message.startsWith('NOGROUP')) this.groupReady = false;
      this.log?.debug({ sink: this.sink, problem: message }, 'log shipper: redis call failed');
      this.failures++;
      wait = this.backoffMs();
    } finally {
      this.running = false;
      this.next(wait);
    }
  }

  private backoffMs(): number {
    return backoffMs(this.failures, this.settings.retryMinMs, this.settings.retryMaxMs);
  }

  /** POST every entry; acknowledge those delivered (or refused for good). True when any is to be sent again. */
  private async ship(entries: Entry[]): Promise<boolean> {
    const results = await withLimit(entries, this.settings.concurrency, ([, e]) => (e === undefined ? Promise.resolve<PostResult>('rejected') : this.poster.post(e)));
    const done: string[] = [];
    const rejections = new Map<string, number>();
    let again = false;
    for (let i = 0; i < entries.length; i++) {
      const [id, e] = entries[i]!;
      const r = results[i]!;
      this.health.seen(r);
      if (e === undefined) {
        // Not an event of ours (written by someone else): nothing to send.
        done.push(id);
      } else if (r === 'delivered') {
        this.metrics.count(this.sink, e.kind, 'delivered');
        done.push(id);
      } else if (r === 'rejected' && (this.rejections.get(id) ?? 0) + 1 >= REJECTIONS_KEPT) {
        this.metrics.dropped(this.sink, e.kind, 'rejected');
        done.push(id);
      } else {
        if (r === 'rejected') rejections.set(id, (this.rejections.get(id) ?? 0) + 1);
        this.metrics.count(this.sink, e.kind, 'retried');
        again = true;
      }
    }
    this.rejections = rejections;
    if (done.length > 0) await this.client.call('XACK', this.key, SHIPPER_GROUP, ...done);
    return again;
  }

  private async measure(): Promise<void> {
    if (!this.redis.up || !this.groupReady) return;
    try {
      const [entries, pending, ageMs] = (await this.trim(this.key, SHIPPER_GROUP, Math.max(60_000, this.settings.claimIdleMs * 10))) as [number, number, number];
      // Stopped meanwhile (the sink left the file): its series are gone and stay gone.
      if (this.stopped) return;
      this.metrics.backlog(this.sink, { entries, pending, oldestSeconds: Math.max(0, ageMs) / 1000 });
    } catch {
      // Redis away: measured again in a second.
    }
  }
}
