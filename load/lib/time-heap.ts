/** A binary min-heap of timed items by `at` (ties: first pushed first), for the seeded simulators. */
export class TimeHeap<T extends { readonly at: number }> {
  private readonly items: { p: T; seq: number }[] = [];
  private seq = 0;
  get size(): number {
    return this.items.length;
  }
  peek(): T | undefined {
    return this.items[0]?.p;
  }
  push(p: T): void {
    const h = this.items;
    h.push({ p, seq: this.seq++ });
    let i = h.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.less(h[i]!, h[up]!)) break;
      [h[i], h[up]] = [h[up]!, h[i]!];
      i = up;
    }
  }
  pop(): T | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top?.p;
  }
  private less(a: { p: T; seq: number }, b: { p: T; seq: number }): boolean {
    return a.p.at < b.p.at || (a.p.at === b.p.at && a.seq < b.seq);
  }
}
