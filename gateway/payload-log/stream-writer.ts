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
import { entryArgs, type LogEvent } from './event.js';
import type { LogMetrics } from './metrics.js';
import { Pump, countAll, type PumpSettings, type Undelivered } from './pump.js';

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
    for (const e of batch) args.push(...entryArgs(e));
    let added: number;
    try {
      added = Number(await this.append(...args));
    } catch {
      countAll(this.metrics, this.sink, batch, 'retried');
      return batch;
    }
    countAll(this.metrics, this.sink, added === batch.length ? batch : batch.slice(0, added), this.target.buffer ? 'buffered' : 'delivered');
    // The buffer is at its bound (the sink is behind): the rest waits here, then overflows.
    return batch.slice(added);
  }
}
