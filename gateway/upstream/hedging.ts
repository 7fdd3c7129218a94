/**
 * What one upstream keeps for hedging, both codecs alike (REST's pool, gRPC's session pool): its delay,
 * estimate and budget (routing/hedge/delay.ts `HedgeTrack`) and its hedges' timers, a list per delay
 * (upstream/timeout-lists.ts). Made by the upstream's first hedged request (forward/forwarded.ts); the
 * upstream's registry entry owns it and retires it with the upstream.
 */
import { HedgeTrack } from '../../routing/hedge/delay.js';
import type { Clock } from './clock.js';
import { Timeouts } from './timeout-lists.js';

export class UpstreamHedging {
  readonly track: HedgeTrack;
  readonly timeouts: Timeouts;

  constructor(clock: Clock, onDelay: (ms: number | null) => void) {
    this.track = new HedgeTrack(clock.now());
    this.track.onDelay = onDelay;
    this.timeouts = new Timeouts(clock, true);
  }

  /** The upstream left every route: its delay is no longer told. */
  retired(): void {
    this.track.retired();
  }
}
