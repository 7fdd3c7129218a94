/**
 * Two callgrind dumps compared function by function (load/README.md, instructions): each function's
 * own instructions (self cost, not what it calls) per request, the first dump's against the second's,
 * largest difference first. JIT code, which callgrind names by address only, is named from the
 * process's `/tmp/perf-<pid>.map` (node `--perf-basic-prof`): the newest entry covering the address,
 * as V8 puts new code where collected code was. Names lose their checkout path and line numbers, so
 * the same function of two builds is one row.
 *
 *   npx vite-node load/lib/callgrind-functions.ts -- <dump> <perf map> <dump> <perf map> <requests> [rows]
 *
 * A dump is the busy window's of thread 1 (`cg.<pid>.1-01` in the directory `scenarios/instructions.ts`
 * prints). `--only <regex>`: rows whose name matches (e.g. `file://dist/` for the gateway's own code).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runMain } from './children.js';
import { nameAt, readPerfMap } from './perf-map.js';

/** Each function's self cost in a dump (callgrind's format: `fn=`/`cfn=` names compressed to ids; the line after `calls=` is the callee's inclusive cost). */
function selfCosts(file: string): Map<string, number> {
  const names = new Map<string, string>();
  const cost = new Map<string, number>();
  let fn: string | undefined;
  let callCost = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const named = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
    if (named) {
      if (named[2] !== undefined) names.set(named[1]!, named[2]);
      if (line.startsWith('fn=')) fn = names.get(named[1]!);
      continue;
    }
    if (line.startsWith('calls=')) {
      callCost = true;
      continue;
    }
    if (!/^[0-9+\-*]/.test(line)) continue;
    if (callCost) {
      callCost = false;
      continue;
    }
    const ir = Number(line.split(' ')[1]);
    if (fn !== undefined && Number.isFinite(ir)) cost.set(fn, (cost.get(fn) ?? 0) + ir);
  }
  return cost;
}

/** A function's name across builds: no checkout path, no line and column, no tier mark (~ ^ + *). */
const normalise = (name: string): string =>
  name
    .replace(/\/work\/wt\/[^/ ]+\//g, '')
    .replace(/:\d+:\d+$/, '')
    .replace(/^JS:[*~^+]?/, 'JS:');

/** Self cost per request by normalised name. */
function functionCosts(dump: string, map: string, requests: number): Map<string, number> {
  const entries = readPerfMap(map);
  const named = (address: number): string => nameAt(entries, address) ?? '(JIT code not in the map)';
  const out = new Map<string, number>();
  for (const [fn, ir] of selfCosts(dump)) {
    const name = normalise(fn.startsWith('0x') ? named(parseInt(fn.split("'")[0]!, 16)) : fn);
    out.set(name, (out.get(name) ?? 0) + ir / requests);
  }
  return out;
}

runMain('callgrind-functions', async () => {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { only: { type: 'string' } } });
  const [dumpA, mapA, dumpB, mapB, requests, rows] = positionals;
  if (!dumpA || !mapA || !dumpB || !mapB || !requests) throw new Error('usage: <dump> <perf map> <dump> <perf map> <requests> [rows] [--only <regex>]');
  const a = functionCosts(dumpA, mapA, Number(requests));
  const b = functionCosts(dumpB, mapB, Number(requests));
  const only = values.only === undefined ? undefined : new RegExp(values.only);
  const names = [...new Set([...a.keys(), ...b.keys()])].filter((n) => only === undefined || only.test(n));
  const sum = (m: Map<string, number>): number => names.reduce((s, n) => s + (m.get(n) ?? 0), 0);
  process.stdout.write(`total: ${sum(a).toFixed(0)} against ${sum(b).toFixed(0)} instructions per request (${names.length} functions)\n`);
  names.sort((x, y) => Math.abs((a.get(y) ?? 0) - (b.get(y) ?? 0)) - Math.abs((a.get(x) ?? 0) - (b.get(x) ?? 0)));
  for (const n of names.slice(0, Number(rows ?? 40))) {
    const x = a.get(n) ?? 0;
    const y = b.get(n) ?? 0;
    process.stdout.write(`${x.toFixed(1).padStart(9)} ${y.toFixed(1).padStart(9)} ${`${x >= y ? '+' : ''}${(x - y).toFixed(1)}`.padStart(9)}  ${n.slice(0, 160)}\n`);
  }
});
