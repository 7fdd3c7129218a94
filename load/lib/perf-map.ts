/**
 * Node's `/tmp/perf-<pid>.map` (`--perf-basic-prof`): JIT code's address ranges and names, for naming the
 * addresses of a callgrind dump. Entries are in the order written; the newest covering an address names it,
 * as V8 puts new code where collected code was (the oldest would name hot request code after a function
 * that ran once at start and was collected).
 */
import { readFileSync } from 'node:fs';

export interface PerfMapEntry {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

/** The map's entries, oldest first; none when the file is missing (no --perf-basic-prof). */
export function readPerfMap(file: string): PerfMapEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: PerfMapEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[1]!, 16) + parseInt(m[2]!, 16), name: m[3]! });
  }
  return out;
}

/** The name of the newest entry covering `address`, or undefined. */
export function nameAt(entries: readonly PerfMapEntry[], address: number): string | undefined {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.start <= address && address < entries[i]!.end) return entries[i]!.name;
  return undefined;
}
