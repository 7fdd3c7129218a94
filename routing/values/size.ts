/**
 * The one reader of sizes in configuration: the size flags (--max-body, --retry-buffer, …), the
 * `--log-sinks` file's `queueBytes` and `seldon.io/gateway-log`'s `maxBodyBytes`. A size is a whole
 * number of bytes (a YAML integer, or digits), or digits and a unit, any case: `B`; `KB`, `MB`, `GB`
 * (powers of 1000); `KiB`, `MiB`, `GiB` and Kubernetes' `Ki`, `Mi`, `Gi` (powers of 1024). A lone `k`,
 * `K`, `M` or `G` is refused: Kubernetes reads `k` and `M` as powers of 1000, where one reader here took
 * them as 1024, and a size must not depend on who reads it. A fraction (`1.5MiB`) is refused too.
 */

/** A size in bytes, or why not (the value quoted as written). */
export type ReadSize = { ok: true; value: number } | { ok: false; error: string };

const UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3 };
const SIZE = /^([0-9]+)\s*([a-z]*)$/i;
const AMBIGUOUS = new Set(['k', 'm', 'g']);

/** `v` as bytes, or why not. */
export function readSize(v: unknown): ReadSize {
  const shown = JSON.stringify(v) ?? String(v);
  const not = (why = ''): ReadSize => ({ ok: false, error: `${shown} is not a size like 1048576, 512KiB or 4MiB${why}` });
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? { ok: true, value: v } : not();
  if (typeof v !== 'string') return not();
  const m = SIZE.exec(v.trim());
  if (m === null) return not();
  const unit = m[2]!.toLowerCase();
  if (AMBIGUOUS.has(unit)) return not(` (a lone "${m[2]}" is ambiguous: write ${m[2]!.toUpperCase()}iB for powers of 1024 or ${m[2]!.toUpperCase()}B for powers of 1000)`);
  const scale = UNITS[unit];
  if (scale === undefined) return not();
  const n = Number(m[1]) * scale;
  return Number.isSafeInteger(n) ? { ok: true, value: n } : not(' (too large)');
}
