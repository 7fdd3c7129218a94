/** Shadows: mirrored requests, and the comparison of their answers with the primary's. */
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { UsageError } from './values.js';

export const SHADOW_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'shadow-max-in-flight',
    section: 'shadows',
    env: env('shadow-max-in-flight'),
    kind: 'int',
    commands: SERVE,
    help: "Optional cap on mirrored requests outstanding (waiting or sent) per shadow upstream; more are dropped and counted. Unset or 0: none; as in Envoy, copies are bounded by the shadow's circuit breaker (max_requests, max_pending_requests) and its route timeout alone. The request bytes copies hold are at most that bound x --shadow-max-body.",
  },
  {
    flag: 'shadow-max-body',
    section: 'shadows',
    env: env('shadow-max-body'),
    kind: 'bytes',
    default: '4MiB',
    commands: SERVE,
    help: 'Largest request body that is mirrored; larger ones are not mirrored (counted).',
  },
  {
    flag: 'shadow-compare',
    section: 'shadows',
    env: env('shadow-compare'),
    kind: 'boolean',
    commands: SERVE,
    help: "Compare each REST shadow answer with the primary's for the same request (status, JSON body): counted, and the last disagreements shown on the admin page.",
  },
  {
    flag: 'shadow-compare-tolerance',
    section: 'shadows',
    env: env('shadow-compare-tolerance'),
    kind: 'number',
    default: '0.000001',
    commands: SERVE,
    help: 'Numbers in compared JSON answers agree when they differ by at most tolerance x max(1, abs(a), abs(b)).',
  },
  {
    flag: 'shadow-compare-ignore',
    section: 'shadows',
    value: 'field',
    env: env('shadow-compare-ignore'),
    kind: 'list',
    default: 'meta',
    commands: SERVE,
    help: 'Top-level JSON fields left out of the comparison. Repeatable; env: comma-separated.',
  },
  {
    flag: 'shadow-compare-max-body',
    section: 'shadows',
    env: env('shadow-compare-max-body'),
    kind: 'bytes',
    default: '256KiB',
    commands: SERVE,
    help: 'Largest answer (primary or shadow) kept for comparison; larger pairs are counted as skipped.',
  },
];

/** Mirroring to shadow predictors. */
export interface ShadowConfig {
  /** --shadow-max-in-flight; undefined: no cap beside the shadow upstream's breaker. */
  readonly maxInFlight: number | undefined;
  readonly maxBodyBytes: number;
}

/** --shadow-compare-*: taken by the observers (ObserveConfig.shadowCompare). */
export interface ShadowCompareConfig {
  readonly enabled: boolean;
  readonly tolerance: number;
  readonly ignore: readonly string[];
  readonly maxBodyBytes: number;
}

export function buildShadow(read: Reader): ShadowConfig {
  return { maxInFlight: read.optInt('shadow-max-in-flight') || undefined, maxBodyBytes: read.bytes('shadow-max-body') };
}

export function buildShadowCompare(read: Reader): ShadowCompareConfig {
  const tolerance = read.number('shadow-compare-tolerance');
  if (tolerance < 0) throw new UsageError(`--shadow-compare-tolerance: ${tolerance} is negative`);
  return { enabled: read.bool('shadow-compare'), tolerance, ignore: read.list('shadow-compare-ignore'), maxBodyBytes: read.bytes('shadow-compare-max-body') };
}
