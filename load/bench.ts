/**
 * The benchmark harness: one command, scenarios named by the question they answer.
 *
 *   npm run bench -- --list
 *   npm run bench -- <scenario> [--quick] [--vs <git ref>] [the scenario's own options]
 *
 * It builds this checkout (`npm run build`), runs the scenario (load/scenarios/) and says whether the
 * machine was quiet meanwhile. `--vs <ref>` extracts that ref into a scratch directory (`git archive`),
 * builds it there against this checkout's node_modules, and has the scenario compare the two builds
 * in interleaved rounds. Seeded simulations (load/*-sim.ts) are not benchmarks and are not here.
 */
import { execFileSync, execSync, spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib/children.js';
import { sourcesAt } from './lib/gateway.js';
import { MachineWatch } from './lib/quiet.js';

interface Scenario {
  readonly question: string;
  /** load/scenarios/<script>.ts */
  readonly script: string;
  readonly args?: readonly string[];
  /** What --quick adds: a run of a minute or two that still gives the table. */
  readonly quick: readonly string[];
  readonly quickEnv?: Record<string, string>;
  /** Whether it compares this build with another (`--vs-main <its main.js> --vs-label <ref>`), and with what of its own options. */
  readonly vs?: readonly string[];
}

const SCENARIOS: Record<string, Scenario> = {
  floor: { question: 'What does a small REST request cost beside the raw relay, nginx, haproxy and Caddy?', script: 'rest', args: ['--shape', 'floor'], quick: ['--quick'], vs: [] },
  large: { question: 'What do 256 KiB, 1 MiB and 8 MiB requests and answers cost beside the same peers?', script: 'rest', args: ['--shape', 'large'], quick: ['--quick'], vs: [] },
  grpc: { question: "What does a unary gRPC call cost beside the backend alone and nginx's grpc_pass?", script: 'grpc', quick: ['--duration', '3', '--warmup', '1', '--rounds', '1'], vs: [] },
  instructions: {
    question: 'How many instructions does one floor request take on the worker (callgrind: an A/B that other processes do not move)?',
    script: 'instructions',
    quick: ['--requests', '1000', '--warmup', '3000'],
    vs: [],
  },
  alloc: { question: 'How many bytes does one REST request and one gRPC call allocate on the worker?', script: 'alloc', args: ['--relay'], quick: ['--seconds', '3', '--rounds', '1'], vs: [] },
  syscalls: { question: 'How many syscalls does one request make, beside the relay and nginx?', script: 'syscalls', quick: ['--requests', '5000', '--conns', '16'], vs: [] },
  memory: { question: 'How much memory does each process of an idle gateway hold?', script: 'memory', quick: ['--rounds', '1', '--settle', '10', '--source', 'manifests'], vs: [] },
  tls: { question: 'What does TLS termination cost, beside nginx terminating the same certificate?', script: 'tls', quick: ['--rounds', '1', '--duration', '2'] },
  flow: { question: 'What do clients get from an overloaded model with flow control, without it, and behind haproxy?', script: 'flow', quick: ['--duration', '15', '--unloaded', '3'] },
  health: { question: 'What do clients get when one replica fails, hangs or slows, beside haproxy and nginx?', script: 'health', quick: ['--seconds-scale', '0.25', '--rounds', '1'], vs: [] },
  hedging: { question: "What do hedged requests do to a replica's slow tail, beside haproxy and nginx?", script: 'hedging', quick: ['--seconds', '8'], vs: [] },
  logging: {
    question: 'What does payload and decision logging cost per request?',
    script: 'cost',
    args: ['--cases', 'aa,flag,decisions,payload'],
    quick: ['--rounds', '2', '--warmup', '5', '--seconds', '4'],
    vs: ['--cases', 'aa,decisions'],
  },
  compression: {
    question: "What do gzip'd 100 KB and 1 MB tensor answers cost beside nginx gzip on, and another build?",
    script: 'compression',
    quick: ['--requests', '200', '--rounds', '2', '--warmup', '300'],
    vs: [],
  },
  jwt: {
    question: 'What does a JWT check cost per request, cached and not?',
    script: 'cost',
    args: ['--cases', 'token,cached,cached-forward,fresh-rs256,fresh-es256'],
    quick: ['--rounds', '2', '--warmup', '3', '--seconds', '3'],
    vs: ['--cases', 'cached'],
  },
  observability: {
    question: 'What do tracing and the access log cost per request?',
    script: 'cost',
    args: ['--cases', 'off,t0,t1,t100,json,text'],
    quick: ['--rounds', '2', '--warmup', '3', '--seconds', '3'],
    vs: ['--cases', 't1,json'],
  },
  translate: { question: 'What CPU does protocol translation (Seldon ⇄ v2) add per request, beside parsing and writing the body once?', script: 'translate', quick: ['--rounds', '1'] },
  'translate-route': {
    question: 'What CPU does a translated route (Seldon client, v2 model) cost per request through a gateway, beside the untranslated route?',
    script: 'translate-route',
    quick: ['--rounds', '2', '--requests-small', '1000', '--requests-medium', '100'],
  },
  routing: { question: 'How fast does the routing core compile, update and match at 10,000 deployments?', script: 'routing', quick: [], quickEnv: { PREDICTORS: '1000' } },
  reconfig: { question: 'How long does a worker stop routing while a large deployment is edited?', script: 'reconfig', quick: [], quickEnv: { BASE_S: '2', EDIT_S: '3' } },
  soak: { question: 'Does a gateway hold steady, in memory and in failed requests, while everything behind it churns?', script: 'soak', quick: ['--minutes', '1'] },
};

function usage(code: number): never {
  process.stdout.write(`usage: npm run bench -- <scenario> [--quick] [--vs <git ref>] [--no-build] [scenario options]\n       npm run bench -- --list\n`);
  process.exit(code);
}

function parse(argv: string[]): { name?: string; quick: boolean; vs?: string; build: boolean; list: boolean; rest: string[] } {
  const out: { name?: string; quick: boolean; vs?: string; build: boolean; list: boolean; rest: string[] } = { quick: false, build: true, list: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--list') out.list = true;
    else if (a === '--quick') out.quick = true;
    else if (a === '--no-build') out.build = false;
    else if (a === '--vs') out.vs = argv[++i] ?? usage(2);
    else if (a === '--help' || a === '-h') usage(0);
    else if (!a.startsWith('-') && !out.name) out.name = a;
    // The rest is the scenario's own (vite-node drops every `--` before this sees them).
    else if (out.name) out.rest.push(a);
    else {
      process.stderr.write(`bench: unknown option ${a}\n`);
      usage(2);
    }
  }
  return out;
}

const git = (...args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).trim();

/** `ref` extracted and built in a scratch directory (removed on exit); its dist/gateway/main.js. */
function buildRef(ref: string): string {
  const commit = git('rev-parse', '--short', `${ref}^{commit}`);
  const dir = mkdtempSync(join(tmpdir(), `bench-${commit}-`));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  process.stderr.write(`bench: building ${ref} (${commit}) in ${dir}\n`);
  execSync(`git -C '${ROOT}' archive --format=tar '${commit}' | tar -x -C '${dir}'`, { stdio: ['ignore', 'ignore', 'inherit'] });
  // A ref that tracked a node_modules link of its own gets this checkout's instead.
  rmSync(join(dir, 'node_modules'), { recursive: true, force: true });
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'));
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  return join(dir, 'dist', 'gateway', 'main.js');
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  if (o.list) {
    for (const [name, s] of Object.entries(SCENARIOS)) process.stdout.write(`${name.padEnd(14)} ${s.question}${s.vs ? '' : ' (no --vs)'}\n`);
    return;
  }
  if (!o.name) usage(2);
  const s = SCENARIOS[o.name];
  if (!s) {
    process.stderr.write(`bench: no scenario ${o.name}; npm run bench -- --list names them\n`);
    process.exit(2);
  }
  if (o.vs && !s.vs) {
    process.stderr.write(`bench: ${o.name} has no --vs; run it on each build\n`);
    process.exit(2);
  }
  const started = Date.now();
  if (o.build) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const args = [...(s.args ?? []), ...(o.quick ? s.quick : [])];
  if (o.vs && s.vs) args.push('--vs-main', buildRef(o.vs), '--vs-label', `${o.vs} (${git('rev-parse', '--short', `${o.vs}^{commit}`)})`, ...s.vs);
  args.push(...o.rest);

  const cpu = cpus()[0]?.model.trim() ?? '?';
  const log = (line: string): void => void process.stdout.write(line + '\n');
  log(`# ${o.name}: ${s.question}`);
  log(
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} × ${cpu}, node ${process.version}, commit ${sourcesAt(ROOT)}${o.vs ? ` against ${o.vs}` : ''}${o.quick ? ', --quick' : ''}`,
  );
  const watch = new MachineWatch();
  const child = spawn(process.execPath, [join(ROOT, 'node_modules', 'vite-node', 'vite-node.mjs'), join(ROOT, 'load', 'scenarios', `${s.script}.ts`), ...args], {
    cwd: ROOT,
    stdio: 'inherit',
    // --quick does not wait for a quiet machine: it says afterwards whether it had one.
    env: { ...process.env, ...(o.quick ? { BENCH_QUIET_BUDGET: '0', ...s.quickEnv } : {}) },
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => child.kill(sig));
  const code = await new Promise<number>((resolve) => child.once('exit', (c, sig) => resolve(c ?? (sig ? 130 : 1))));
  log(watch.stop());
  log(`(${Math.round((Date.now() - started) / 1000)} s in all)`);
  process.exit(code);
}

void main();
