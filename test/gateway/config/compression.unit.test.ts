/**
 * The compression flags (gateway/config/compression.ts): what they set in the routing compiler's
 * options, off unless --compress is given, and the gateway's words for a bad value (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { refusal } from './refusal.js';

const compile = (args: string[], env: NodeJS.ProcessEnv = {}): unknown => parseConfig('serve', ['--manifests', '/tmp/none', ...args], env).compile.compression;

describe('--compress and its companions', () => {
  it('off unless --compress is given', () => {
    expect(compile([])).toBeUndefined();
    expect(compile(['--compress-level', 'gzip=9'])).toBeUndefined();
  });

  it('sets the codings in their order, levels over the defaults, the minimum and the types', () => {
    expect(compile(['--compress', 'br,gzip', '--compress-level', 'gzip=9', '--compress-min-length', '100', '--compress-types', 'application/json', '--compress-types', 'text/csv'])).toEqual({
      algorithms: ['br', 'gzip'],
      levels: { gzip: 9, br: 4, zstd: 3 },
      minLength: 100,
      types: ['application/json', 'text/csv'],
    });
    expect(compile(['--compress', 'zstd', '--compress', 'gzip'])).toEqual({ algorithms: ['zstd', 'gzip'], levels: { gzip: 6, br: 4, zstd: 3 }, minLength: 30 });
    expect(compile([], { SELDON_GATEWAY_COMPRESS: 'gzip,br' })).toMatchObject({ algorithms: ['gzip', 'br'] });
  });

  it('a bad value is refused in the gateway’s words', () => {
    expect(refusal(() => compile(['--compress', 'gzip,lz4']))).toBe('--compress: "lz4" is not one of zstd, br, gzip');
    expect(refusal(() => compile(['--compress', 'gzip', '--compress-level', 'gzip=11']))).toBe("--compress-level: gzip's level must be a whole number from 1 to 9, not 11");
    expect(refusal(() => compile(['--compress', 'gzip', '--compress-level', 'fast']))).toBe('--compress-level: "fast" is not <coding>=<level>');
    expect(refusal(() => compile(['--compress', 'gzip', '--compress-types', 'json']))).toBe('--compress-types: "json" is not a media type like application/json');
    expect(refusal(() => compile(['--compress', 'gzip', '--compress-min-length', 'few']))).toBe('--compress-min-length: "few" is not a whole number');
  });
});
