/**
 * The `gzip` block of an Emissary (Ambassador) Module as the gateway's compression settings
 * (routing/compression/policy.ts), with Envoy's gzip filter's meanings: a block turns gzip on unless
 * `enabled: false`; `min_content_length` (bytes), `content_type` (replaces the list),
 * `compression_level` (BEST, SPEED, DEFAULT or Envoy's later names, or 1 to 9), `memory_level`
 * (1 to 9, Envoy's default 5), `window_bits` (9 to 15, Envoy's default 12), `disable_on_etag_header`. `remove_accept_encoding_header`
 * is accepted and has nothing to do: the gateway compresses itself, so a model is told what the
 * client accepts only if it wishes to compress. Pure; unknown keys are refused by name.
 */
import { readWholeNumber } from '../values/whole-number.js';
import type { CompressionSettings } from '../compression/policy.js';
import { parseTypes } from '../compression/config.js';
import { isObj, type Parsed } from '../values/syntax.js';

const KEYS = ['enabled', 'min_content_length', 'content_type', 'compression_level', 'compression_strategy', 'memory_level', 'window_bits', 'disable_on_etag_header', 'remove_accept_encoding_header'];

/** Envoy's level names (v2 and v3) and their zlib levels. */
const LEVEL_NAMES: Readonly<Record<string, number>> = {
  BEST: 9,
  BEST_COMPRESSION: 9,
  SPEED: 1,
  BEST_SPEED: 1,
  DEFAULT: 6,
  DEFAULT_COMPRESSION: 6,
};

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

function whole(v: unknown, lo: number, hi: number): number | undefined {
  const n = readWholeNumber(v, { min: lo, max: hi });
  return n.ok ? n.value : undefined;
}

/** A Module's `gzip` block → settings (gzip alone offered, or nothing when `enabled: false`); an error names the key. */
export function settingsFromModuleGzip(gzip: unknown): Parsed<CompressionSettings> {
  const fail = (error: string): Parsed<CompressionSettings> => ({ ok: false, error: `Module gzip: ${error}` });
  if (gzip === null || gzip === undefined) return { ok: true, value: { algorithms: ['gzip'], gzipMemLevel: 5, gzipWindowBits: 12 } };
  if (!isObj(gzip)) return fail(`${show(gzip)} is not a mapping`);
  const unknown = Object.keys(gzip).find((k) => !KEYS.includes(k));
  if (unknown !== undefined) return fail(`unknown key "${unknown}" (keys: ${KEYS.join(', ')})`);
  // Envoy's defaults where the block is silent (zlib's own are 8 and 15).
  const out: CompressionSettings = { gzipMemLevel: 5, gzipWindowBits: 12 };
  const enabled = gzip.enabled;
  if (enabled !== undefined && typeof enabled !== 'boolean') return fail(`enabled must be true or false, not ${show(enabled)}`);
  out.algorithms = enabled === false ? [] : ['gzip'];
  if (gzip.min_content_length !== undefined) {
    const n = whole(gzip.min_content_length, 0, 2 ** 32 - 1);
    if (n === undefined) return fail(`min_content_length must be a whole number of bytes, not ${show(gzip.min_content_length)}`);
    out.minLength = n;
  }
  if (gzip.content_type !== undefined) {
    const t = Array.isArray(gzip.content_type) ? parseTypes(gzip.content_type) : { ok: false as const, error: `${show(gzip.content_type)} is not a list` };
    if (!t.ok) return fail(`content_type: ${t.error}`);
    out.types = t.value;
  }
  const level = gzip.compression_level;
  if (level !== undefined) {
    const name = typeof level === 'string' ? level.trim().toUpperCase() : '';
    const byName = LEVEL_NAMES[name] ?? (/^COMPRESSION_LEVEL_[1-9]$/.test(name) ? Number(name.slice(-1)) : undefined);
    const n = byName ?? whole(level, 1, 9);
    if (n === undefined) return fail(`compression_level must be BEST, SPEED, DEFAULT or 1 to 9, not ${show(level)}`);
    out.levels = { gzip: n } as CompressionSettings['levels'];
  }
  if (gzip.compression_strategy !== undefined && !['DEFAULT', 'DEFAULT_STRATEGY'].includes(String(gzip.compression_strategy).toUpperCase())) {
    return fail(`compression_strategy ${show(gzip.compression_strategy)} is not served: only DEFAULT`);
  }
  if (gzip.memory_level !== undefined) {
    const n = whole(gzip.memory_level, 1, 9);
    if (n === undefined) return fail(`memory_level must be a whole number from 1 to 9, not ${show(gzip.memory_level)}`);
    out.gzipMemLevel = n;
  }
  if (gzip.window_bits !== undefined) {
    const n = whole(gzip.window_bits, 9, 15);
    if (n === undefined) return fail(`window_bits must be a whole number from 9 to 15, not ${show(gzip.window_bits)}`);
    out.gzipWindowBits = n;
  }
  for (const key of ['disable_on_etag_header', 'remove_accept_encoding_header'] as const) {
    const v = gzip[key];
    if (v !== undefined && typeof v !== 'boolean') return fail(`${key} must be true or false, not ${show(v)}`);
  }
  if (gzip.disable_on_etag_header === true) out.skipEtag = true;
  return { ok: true, value: out };
}
