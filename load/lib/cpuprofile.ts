/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`): self time by function (name + file:line)
 * and by origin (gateway code, a package under node_modules, node internals, GC, idle).
 * Used by load/rest-bench.ts --profile (lib/profile.ts); also runnable on its own:
 *
 *   npx vite-node load/lib/cpuprofile.ts <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly hitCount?: number;
  readonly children?: readonly number[];
}
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly key: string;
  readonly origin: string;
  readonly ms: number;
}

export interface ProfileSummary {
  readonly wallMs: number;
  readonly idleMs: number;
  readonly busyMs: number;
  readonly functions: readonly SelfTime[];
  readonly origins: readonly { origin: string; ms: number }[];
}

/** Where a function comes from: the package, project folder, node internals or a V8 pseudo-frame. */
export function originOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(root)') return functionName;
    return '(native)';
  }
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  // The gateway by its folders (edge, rest, forward, upstream…): where in the request path the time goes.
  const g = /\/(?:dist\/)?gateway\/([^/]+)\//.exec(url);
  if (g) return `project:gateway/${g[1]}`;
  const m = /\/dist\/([^/]+)\//.exec(url) ?? /\/work\/[^/]+\/([^/]+)\//.exec(url);
  return m ? `project:${m[1]}` : url;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/**
 * Self time by function and origin. `window` (microseconds, relative to the profile's end)
 * keeps only the samples taken in [end - fromEndUs, end - toEndUs]: the load, not start-up.
 */
export function summarise(profile: CpuProfile, window?: { fromEndUs: number; toEndUs: number }): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  // timeDeltas[i] is the time from sample i-1 to sample i: charge it to the sample it ends on
  // (what Chrome DevTools does, up to one sample).
  const selfUs = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  const from = window ? profile.endTime - window.fromEndUs : -Infinity;
  const to = window ? profile.endTime - window.toEndUs : Infinity;
  let at = profile.startTime;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    first = Math.min(first, at);
    last = Math.max(last, at);
    const d = timeDeltas[i + 1] ?? timeDeltas[i] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, d));
  }
  const fn = new Map<string, { origin: string; us: number }>();
  const origins = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    total += us;
    const origin = originOf(url, functionName);
    if (origin === '(idle)') {
      idle += us;
      continue;
    }
    const key = url ? `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}` : functionName;
    const f = fn.get(key) ?? { origin, us: 0 };
    f.us += us;
    fn.set(key, f);
    origins.set(origin, (origins.get(origin) ?? 0) + us);
  }
  const functions = [...fn].map(([key, v]) => ({ key, origin: v.origin, ms: v.us / 1000 })).sort((a, b) => b.ms - a.ms);
  return {
    wallMs: Number.isFinite(last - first) ? (last - first) / 1000 : 0,
    idleMs: idle / 1000,
    busyMs: (total - idle) / 1000,
    functions,
    origins: [...origins].map(([origin, us]) => ({ origin, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
  };
}

export function formatSummary(s: ProfileSummary, top = 25, requests?: number): string {
  const pct = (ms: number): string => `${((100 * ms) / Math.max(1e-9, s.busyMs)).toFixed(1).padStart(5)}%`;
  const perReq = (ms: number): string => (requests ? `${((ms * 1000) / requests).toFixed(2).padStart(7)} µs/req` : '');
  const lines = [
    `profile: ${s.wallMs.toFixed(0)} ms of samples, ${s.busyMs.toFixed(0)} ms busy (main thread), ${s.idleMs.toFixed(0)} ms idle` +
      (requests ? `, ${requests} requests → ${((s.busyMs * 1000) / requests).toFixed(1)} µs main-thread CPU per request` : ''),
    '',
    'self time by origin:',
    ...s.origins.slice(0, 15).map((o) => `  ${pct(o.ms)} ${o.ms.toFixed(0).padStart(7)} ms ${perReq(o.ms)}  ${o.origin}`),
    '',
    `top ${top} functions by self time:`,
    ...s.functions.slice(0, top).map((f) => `  ${pct(f.ms)} ${f.ms.toFixed(0).padStart(7)} ms ${perReq(f.ms)}  ${f.key}`),
  ];
  return lines.join('\n');
}

// Run as a script: `node .../cpuprofile.js <file>` (argv[1] is this file) or `npx vite-node
// load/lib/cpuprofile.ts <file>` (vite-node leaves the script out of argv, hence the .cpuprofile test).
const cliArgs = /(cpuprofile\.[jt]s|vite-node(\.mjs)?)$/.test(process.argv[1] ?? '') ? process.argv.slice(2) : [];
if (cliArgs[0]?.endsWith('.cpuprofile')) {
  const profile = JSON.parse(readFileSync(cliArgs[0], 'utf8')) as CpuProfile;
  process.stdout.write(formatSummary(summarise(profile), Number(cliArgs[1] ?? 25)) + '\n');
}
