/**
 * Weighted choice of a group member, and whether a mirror fires (docs/routing.md#picking-a-member, docs/routing.md#shadows).
 *
 * `randomPicker`: one uniform draw in [0, 100) per request against the group's cumulative
 * percents, members in canonical order. A member with 0 % has an empty interval and is never
 * drawn. When some members are not eligible (no ready endpoint), the draw is taken over the
 * eligible members' percents only, so their shares scale up proportionally; if every eligible
 * member has 0 %, they split equally (0 means 0 only while another member can take the request).
 *
 * `roundRobinPicker`: smooth weighted round-robin (nginx's algorithm): every pick adds each
 * eligible member's percent to its running score, takes the highest score and subtracts the
 * eligible total from it. Exact over every window of 100 picks for integer percents; state is
 * kept per group and dropped with the group.
 *
 * The random source is injectable so tests can seed it.
 */
import type { Backend, Picker, RouteGroup } from '../types.js';

export type Random = () => number;

/** A small seedable PRNG (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mirrorWith(random: Random) {
  return (percent: number): boolean => percent >= 100 || (percent > 0 && random() * 100 < percent);
}

/** The table's own group: a picker that knows no live shares. */
const unsteered = (group: RouteGroup): RouteGroup => group;

export function randomPicker(random: Random = Math.random): Picker {
  return {
    pick(group: RouteGroup, eligible?: (b: Backend) => boolean, point?: number): Backend | undefined {
      const members = group.members;
      if (members.length === 1) {
        const only = members[0]!.backend;
        return !eligible || eligible(only) ? only : undefined;
      }
      if (!eligible) {
        const r = (point ?? random()) * 100;
        const cumulative = group.cumulative;
        for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]!) return members[i]!.backend;
        // Float sums can end a hair under 100: the draw falls to the last member with a share.
        for (let i = members.length - 1; i >= 0; i--) if (members[i]!.percent > 0) return members[i]!.backend;
        return members[0]?.backend;
      }
      let total = 0;
      let count = 0;
      for (const m of members) {
        if (eligible(m.backend)) {
          total += m.percent;
          count++;
        }
      }
      if (count === 0) return undefined;
      let r = (point ?? random()) * (total > 0 ? total : count);
      let last: Backend | undefined;
      for (const m of members) {
        if (!eligible(m.backend)) continue;
        const share = total > 0 ? m.percent : 1;
        if (share <= 0) continue;
        last = m.backend;
        if (r < share) return m.backend;
        r -= share;
      }
      return last;
    },
    mirror: mirrorWith(random),
    steer: unsteered,
    draw: random,
  };
}

export function roundRobinPicker(random: Random = Math.random): Picker {
  const scores = new WeakMap<RouteGroup, number[]>();
  const sticky = randomPicker(random);
  return {
    pick(group: RouteGroup, eligible?: (b: Backend) => boolean, point?: number): Backend | undefined {
      // A sticky request goes where its point falls, as with the random picker.
      if (point !== undefined) return sticky.pick(group, eligible, point);
      const members = group.members;
      let state = scores.get(group);
      if (!state) {
        state = members.map(() => 0);
        scores.set(group, state);
      }
      let total = 0;
      let count = 0;
      for (const m of members) {
        if (!eligible || eligible(m.backend)) {
          total += m.percent;
          count++;
        }
      }
      if (count === 0) return undefined;
      let best = -1;
      for (let i = 0; i < members.length; i++) {
        const m = members[i]!;
        if (eligible && !eligible(m.backend)) continue;
        const w = total > 0 ? m.percent : 1;
        if (w <= 0) continue;
        state[i]! += w;
        if (best < 0 || state[i]! > state[best]!) best = i;
      }
      if (best < 0) return undefined;
      state[best]! -= total > 0 ? total : count;
      return members[best]!.backend;
    },
    mirror: mirrorWith(random),
    steer: unsteered,
    draw: random,
  };
}

/**
 * The probability the weighted pick gave `backend` in `group` (the group a request was picked from,
 * live shares applied): its percent of the members' total, as `randomPicker` draws (members all at
 * 0 % split evenly). Round-robin and sticky picks give each member the same share over many
 * requests. For the decision record (docs/payload-logging.md#the-decision-record); members that
 * left the pick for want of a ready endpoint are not excluded here.
 */
export function pickShare(group: RouteGroup, backend: Backend): number {
  const members = group.members;
  let total = 0;
  let own = 0;
  for (const m of members) {
    total += m.percent;
    if (m.backend === backend) own += m.percent;
  }
  if (total > 0) return own / total;
  return members.some((m) => m.backend === backend) ? 1 / members.length : 0;
}
