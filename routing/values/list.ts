/**
 * Every list a key, annotation or flag takes: a YAML list of strings, or one string of comma-separated entries
 * (as Ambassador and Envoy's headers take both). Each string, in either form, is split at its commas, each entry
 * trimmed, and an empty entry (`a,,b`, a trailing comma) dropped, as Envoy's token splitting drops it: the same text
 * is the same list wherever it is written. What a list's entries may be is its caller's to judge.
 */
import type { Parsed } from './syntax.js';

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** `raw`'s entries, in order, repeats kept; an error when it is not a string or a list of strings. */
export function readList(raw: unknown): Parsed<string[]> {
  const items: readonly unknown[] | null = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : null;
  if (items === null) return { ok: false, error: `${show(raw)} is not a list or a comma-separated string` };
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') return { ok: false, error: `${show(item)} is not a string` };
    for (const part of item.split(',')) {
      const t = part.trim();
      if (t !== '') out.push(t);
    }
  }
  return { ok: true, value: out };
}
