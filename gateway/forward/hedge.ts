/**
 * Hedging of one forwarded request (docs/routing.md#hedged-requests), for REST and gRPC alike,
 * beside its retries (forward/retry-state.ts): the forwarding core (forward/forwarded.ts) holds one
 * per request of a hedged predictor that may be hedged (not a feedback), from its first attempt.
 *
 * - `arm`: the timer for the next attempt, after the delay in force (routing/hedge/delay.ts, read
 *   from the upstream's `HedgeTrack`) from now: the first attempt's send, then each hedge's.
 * - When it runs out the core asks, in this order, whether a hedge may go (`HedgeHeld` when not):
 *   the body can be sent again (`body`), another ready endpoint is left (`no_endpoint`), flow
 *   control has a free slot, never a place in its queue (`flow`), the budget has a token
 *   (`budget`). Then the codec sends it, and the timer is armed again while attempts are left.
 * - `stop` (an answer is being relayed, the request failed over to the retry rule, or ended)
 *   disarms it. `end` gives back the flow slots hedges held, once the request is over.
 *
 * The latency estimate is fed by the core as attempts answer or lose (`HedgeTrack.estimate`; a
 * first attempt that lost, with `censoredMs`);
 * the counts (`won`, `lost`, and why one was held) are its metrics' (observe/hedge-metrics.ts).
 */
import type { FlowSlot } from '../flow/controller.js';
import type { HedgePolicy } from '../../routing/hedge/config.js';
import type { HedgeTrack } from '../../routing/hedge/delay.js';
import type { Clock } from '../upstream/clock.js';
import type { TimeoutEntry, TimeoutList, Timeouts } from '../upstream/timeout-lists.js';

/** Who sends the hedges: the forwarding core. */
export interface HedgeOwner {
  /** The delay ran out: send the next attempt if it may go. */
  hedgeDue(): void;
}

export class Hedge implements TimeoutEntry {
  /** Hedges sent. */
  sent = 0;
  /** The client got a hedge's answer. */
  won = false;
  /**
   * How long the first attempt had run when the first hedge went: what its losing says of it in
   * the estimate (at least that long). Not how long it ran until cut: that is the delay plus the
   * winner's answer, and where slow requests are more than the delay's quantile allows, the
   * delay read from such samples would climb by an answer at each reading.
   */
  censoredMs: number | undefined;
  private armedAt = 0;
  // ---- its place in its delay's list of the upstream's hedge timers (no timer object per request) ----
  timeoutNext: TimeoutEntry | null = null;
  timeoutPrev: TimeoutEntry | null = null;
  timeoutDue = -1;
  timeoutList: TimeoutList | null = null;
  /** Flow control's slots the hedges hold (undefined: none taken). */
  private slots: FlowSlot[] | undefined;

  constructor(
    private readonly owner: HedgeOwner,
    readonly policy: HedgePolicy,
    readonly track: HedgeTrack,
    private readonly timeouts: Timeouts,
    private readonly clock: Clock,
  ) {}

  /** Arm the timer for the next attempt (no delay yet: no hedge, the estimate is warming up). */
  arm(): void {
    const now = this.clock.now();
    if (this.sent === 0) this.armedAt = now;
    const delay = this.track.delayMs(this.policy, now);
    // Whole milliseconds (Node's timers have no finer grain): one list per delay in force.
    if (delay !== null) this.timeouts.start(this, Math.max(1, Math.round(delay)));
  }

  /** A hedge goes now. */
  sending(): void {
    if (this.sent++ === 0) this.censoredMs = this.clock.now() - this.armedAt;
  }

  /** Whether another hedge may follow this one (attempts in flight stay within `maxAttempts`). */
  get attemptsLeft(): boolean {
    return this.sent + 1 < this.policy.maxAttempts;
  }

  /** No more hedges for this request. */
  stop(): void {
    this.timeouts.stop(this);
  }

  /** A hedge holds `slot` under flow control until the request ends. */
  hold(slot: FlowSlot): void {
    (this.slots ??= []).push(slot);
  }

  /** The request is over: the timer stops and the hedges' slots are given back. */
  end(): void {
    this.stop();
    const slots = this.slots;
    if (slots === undefined) return;
    this.slots = undefined;
    for (const s of slots) s.release(false);
  }

  /** The delay ran out. */
  timedOut(): void {
    this.owner.hedgeDue();
  }
}
