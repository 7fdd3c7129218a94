/** A clock for the code under test that runs with real time and that a test moves ahead: expiry without sleeping. */
export class TestClock {
  private ahead = 0;

  /** Real time plus every `advance` so far; pass it where the code takes `now: () => number`. */
  readonly now = (): number => Date.now() + this.ahead;

  advance(ms: number): void {
    this.ahead += ms;
  }
}
