/**
 * The gateway's compression (docs/edge.md#compression): what every REST route's answers are
 * compressed with, unless its deployment's `seldon.io/gateway-compression` says otherwise
 * (routing/compression/config.ts, which these values share their parsers with). Off unless
 * --compress is given, as in Emissary and nginx.
 */
import { parseAlgorithms, parseLevels, parseTypes } from '../../routing/compression/config.js';
import { DEFAULT_LEVELS, DEFAULT_MIN_LENGTH, type Coding, type CompressionSettings } from '../../routing/compression/policy.js';
import { BOTH, env, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { UsageError } from './values.js';

export const COMPRESSION_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'compress',
    section: 'listen',
    value: 'codings',
    env: env('compress'),
    kind: 'list',
    commands: BOTH,
    help: 'Compress REST answers for clients that accept it, with these codings in the order preferred on equal q-values (zstd, br, gzip). Off unless given. Repeatable; env: comma-separated.',
  },
  {
    flag: 'compress-min-length',
    section: 'listen',
    value: 'bytes',
    env: env('compress-min-length'),
    kind: 'int',
    default: String(DEFAULT_MIN_LENGTH),
    commands: BOTH,
    help: 'Answers shorter than this (by their Content-Length) are not compressed.',
  },
  {
    flag: 'compress-types',
    section: 'listen',
    value: 'media-types',
    env: env('compress-types'),
    kind: 'list',
    commands: BOTH,
    help: "Media types compressed, replacing the default list (Envoy's: application/json, application/javascript, application/xhtml+xml, image/svg+xml, text/css, text/html, text/plain, text/xml). Repeatable; env: comma-separated.",
  },
  {
    flag: 'compress-level',
    section: 'listen',
    value: 'levels',
    env: env('compress-level'),
    kind: 'string',
    default: Object.entries(DEFAULT_LEVELS)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    commands: BOTH,
    help: 'Level per coding: gzip 1-9, br 0-11, zstd 1-22.',
  },
];

/** A list flag's entries, each given as one or as several joined with commas. */
const commaList = (read: Reader, flag: string): string[] =>
  read
    .list(flag)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);

/** The settings of the flags; undefined when nothing is compressed (no --compress). */
export function buildCompression(read: Reader): CompressionSettings | undefined {
  const algorithms = parseAlgorithms(commaList(read, 'compress'));
  if (!algorithms.ok) throw new UsageError(`--compress: ${algorithms.error}`);
  const levels = parseLevels(read.str('compress-level'));
  if (!levels.ok) throw new UsageError(`--compress-level: ${levels.error}`);
  const minLength = read.int('compress-min-length');
  const typeList = commaList(read, 'compress-types');
  let types: string[] | undefined;
  if (read.given('compress-types')) {
    const t = parseTypes(typeList);
    if (!t.ok) throw new UsageError(`--compress-types: ${t.error}`);
    types = t.value;
  }
  if (algorithms.value.length === 0) return undefined;
  return { algorithms: algorithms.value, levels: { ...DEFAULT_LEVELS, ...levels.value } as Record<Coding, number>, minLength, ...(types !== undefined ? { types } : {}) };
}
