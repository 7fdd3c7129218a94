/**
 * The attempts of a hedged request racing beside the one its codec holds (REST's exchange, gRPC's
 * call: `current`, the attempt sent last), one rule for both: who is still in flight, who leaves
 * the race (failed, or answered what the policy retries), and who is cut when one wins. Made at a
 * request's first hedge: a request that is not hedged has none.
 */
export class Rivals<A> {
  /** The attempts in flight besides `current`. */
  private readonly others: A[] = [];

  /** `a`, in flight, is joined by a hedge (which becomes `current`). */
  add(a: A): void {
    this.others.push(a);
  }

  /** None is left besides `current`. */
  get empty(): boolean {
    return this.others.length === 0;
  }

  /** Whether another attempt than `a` is still in flight. */
  against(a: A, current: A | undefined): boolean {
    return current === a ? this.others.length > 0 : this.others.includes(a);
  }

  /** `a` is out of the race: the attempt the codec holds from now on. */
  leave(a: A, current: A | undefined): A | undefined {
    if (current === a) return this.others.pop();
    const i = this.others.indexOf(a);
    if (i >= 0) this.others.splice(i, 1);
    return current;
  }

  /** `a`'s answer wins: every other attempt in flight, to be cut. */
  losers(a: A, current: A | undefined): A[] {
    const l = this.others;
    if (current !== a && current !== undefined) l[l.indexOf(a)] = current;
    return l;
  }
}
