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
 * twice, and a duplicate carries the same `ce-id`.
 */
import type { RedisConnection } from '../auth/redis.js';
import { KEY_PREFIX } from '../auth/redis.js';
import { streamFields, type LogEvent } from './event.js';
import type { LogMetrics } from './metrics.js';
import { Pump, type PumpSettings, type Undelivered } from './pump.js';

/** The stream that holds a cloudevents sink's events until its sink took them. */
export const bufferKey = (sink: string): string => `${KEY_PREFIX}log:{${sink}}`;

/**
 * KEYS[1]: the stream; ARGV[1]: `bound` (stop at ARGV[2] entries) or `trim` (MAXLEN ~ ARGV[2]);
 * then each entry as its field count and fields. Returns the entries appended, in order.
 */
const APPEND_LUA = `local bound = ARGV[1] == 'bound'
local max = tonumber(ARGV[2])
local len = 0
if bound then len = redis.call('XLEN', KEYS[1]) end
local i = 3
local added = 0
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  if bound then
    if len >= max then break end
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
    len = len + 1
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', max, '*', unpack(ARGV, i + 1, i + n))
  end
  added = added + 1
  i = i + n + 1
end
return added
`;

type Append = (...args: (string | number | Buffer)[]) => Promise<unknown>;

export class StreamWriter extends Pump {
  private readonly append: Append;

  constructor(
    private readonly sink: string,
    private readonly redis: RedisConnection,
    /** The stream's key, and whether it is a cloudevents sink's buffer (bounded, shipped) or the operator's stream. */
    private readonly target: { readonly key: string; readonly buffer: boolean },
    settings: PumpSettings & { readonly maxLen: number },
    private readonly metrics: LogMetrics,
  ) {
    super(settings);
    this.maxLen = settings.maxLen;
    this.append = redis.durableScript('sgwLogAppend', { numberOfKeys: 1, lua: APPEND_LUA }) as Append;
    redis.onState((up) => {
      if (up) this.kick();
    });
  }

  private readonly maxLen: number;

  protected override ready(): boolean {
    return this.redis.up;
  }

  protected async deliver(batch: LogEvent[]): Promise<Undelivered> {
    const args: (string | number | Buffer)[] = [this.target.key, this.target.buffer ? 'bound' : 'trim', this.maxLen];
    for (const e of batch) {
      const f = streamFields(e);
      args.push(f.length, ...f);
    }
    let added: number;
    try {
      added = Number(await this.append(...args));
    } catch {
      for (const e of batch) this.metrics.count(this.sink, e.kind, 'retried');
      return batch;
    }
    const result = this.target.buffer ? 'buffered' : 'delivered';
    for (let i = 0; i < added; i++) this.metrics.count(this.sink, batch[i]!.kind, result);
    // The buffer is at its bound (the sink is behind): the rest waits here, then overflows.
    return batch.slice(added);
  }
}
