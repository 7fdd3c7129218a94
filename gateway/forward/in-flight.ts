/**
 * One request's attempts in flight, one rule for both codecs (REST's exchange, gRPC's call): `current`, the
 * attempt sent last, which the client's further bytes go to and which answers unless a hedge does; and on a
 * hedged request its rivals, racing beside it. Who is in flight, who leaves the race (failed, or answered
 * what the policy retries), who wins and who is cut then. A request that is never hedged holds no list.
 */
const NONE: readonly never[] = [];

export class InFlight<A> {
  /** The attempt in flight (hedged: the one sent last, then the one that won). */
  current: A | undefined = undefined;
  /** Hedged: the other attempts still in flight. */
  private rivals: A[] | undefined = undefined;

  /** `a` is sent; `beside` (a hedge): the attempt in flight stays in the race beside it. */
  sent(a: A, beside: boolean): void {
    if (beside && this.current !== undefined) (this.rivals ??= []).push(this.current);
    this.current = a;
  }

  /** Another attempt than `a` is still in flight. */
  racing(a: A): boolean {
    const r = this.rivals;
    if (r === undefined) return false;
    return this.current === a ? r.length > 0 : r.includes(a);
  }

  /** `a` is out of the race (failed, dropped): another attempt in flight, if any, is `current` from now on. */
  leave(a: A): void {
    const r = this.rivals;
    if (r === undefined) {
      if (this.current === a) this.current = undefined;
      return;
    }
    if (this.current === a) this.current = r.pop();
    else {
      const i = r.indexOf(a);
      if (i >= 0) r.splice(i, 1);
    }
    if (r.length === 0) this.rivals = undefined;
  }

  /** `a`'s answer wins: it is `current`; every other attempt in flight is returned, to be cut. */
  win(a: A): readonly A[] {
    const r = this.rivals;
    this.rivals = undefined;
    const current = this.current;
    this.current = a;
    if (r === undefined) return current === undefined || current === a ? NONE : [current];
    const i = r.indexOf(a);
    if (i >= 0) r.splice(i, 1);
    if (current !== undefined && current !== a) r.push(current);
    return r;
  }

  /** The request is over: `current` and the rivals, each once, then none is in flight. */
  clear(): { readonly current: A | undefined; readonly rivals: readonly A[] } {
    const out = { current: this.current, rivals: this.rivals ?? NONE };
    this.current = undefined;
    this.rivals = undefined;
    return out;
  }
}
