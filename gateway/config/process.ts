/** Process: workers, their heap, shutdown, the log level (which `--help` lists under Observe). */
import { availableParallelism } from 'node:os';
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';

export const PROCESS_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'workers',
    section: 'process',
    env: env('workers'),
    kind: 'int',
    commands: SERVE,
    help: 'Worker processes serving traffic, beside a primary that watches the source and serves the admin port. Default: one per core.',
  },
  {
    flag: 'max-semi-space-size',
    section: 'process',
    value: 'MB',
    env: env('max-semi-space-size'),
    kind: 'int',
    default: '16',
    commands: SERVE,
    help: "V8 young-generation semi-space of each worker, in MB (node --max-semi-space-size). Larger means fewer scavenges, and a young generation of three times its size kept under load (16: a worker about 150 MB resident under load, 64: about 245 MB, for the same CPU per request, load/README.md); a set size also turns off the V8 memory reducer in workers, which would shrink it back after a lull, and has V8 start marking the old generation by how far it grew rather than as soon as its room is smaller than the young generation (a full collection every few seconds otherwise); 0 keeps Node's defaults.",
  },
  {
    flag: 'grace-period',
    section: 'process',
    env: env('grace-period'),
    kind: 'duration',
    default: '10s',
    commands: SERVE,
    help: 'On SIGTERM/SIGINT, how long in-flight requests may take to finish before exit.',
  },
  { flag: 'log-level', section: 'observe', value: 'level', env: env('log-level'), kind: 'string', default: 'info', commands: SERVE, help: 'fatal, error, warn, info, debug or trace.' },
];

/** pino's levels, from the fewest lines to the most. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** The processes: workers, their heap, shutdown, logging. */
export interface ProcessConfig {
  readonly workers: number;
  readonly maxSemiSpaceMb: number;
  readonly gracePeriodMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

export function buildProcess(read: Reader): ProcessConfig {
  return {
    // No row default: one per core.
    workers: Math.max(1, read.optInt('workers') ?? availableParallelism()),
    maxSemiSpaceMb: read.int('max-semi-space-size'),
    gracePeriodMs: read.duration('grace-period'),
    logLevel: read.choice('log-level', LOG_LEVELS),
  };
}
