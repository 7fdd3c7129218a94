/**
 * The scenarios' numeric flags: each its value, else its default; anything but a finite number ≥ 0 stops the run
 * naming the flag.
 */
export function numbers<K extends string>(values: Readonly<Record<string, unknown>>, defaults: Record<K, number>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of Object.keys(defaults) as K[]) {
    const v = values[k] === undefined ? defaults[k] : Number(values[k]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k}: ${String(values[k])} is not a number ≥ 0`);
    out[k] = v;
  }
  return out;
}
