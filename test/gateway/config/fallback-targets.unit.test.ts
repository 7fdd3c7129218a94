/**
 * --fallback-target NAME=URL (gateway/config/fallback-targets.ts): the only addresses a fallback may
 * dial, each by its name; a bad value is refused in the gateway's words (the CLI exits 2), and the
 * names reach the compiler, which lets `seldon.io/gateway-fallback` name nothing else.
 */
import { describe, expect, it } from 'vitest';
import { buildFallbackTargets } from '../../../gateway/config/fallback-targets.js';
import type { Command } from '../../../gateway/config/option.js';
import { OPTIONS } from '../../../gateway/config/options.js';
import { parseConfig } from '../../../gateway/config/parse.js';
import { createReader, type Reader } from '../../../gateway/config/read.js';
import { refusal } from './refusal.js';

const read = (argv: string[] = [], environment: NodeJS.ProcessEnv = {}, command: Command = 'serve'): Reader => createReader(command, argv, environment, OPTIONS);

describe('--fallback-target', () => {
  it('names http (h2c for gRPC) and https (TLS) addresses, repeatable or comma-separated in the environment', () => {
    const t = buildFallbackTargets(read(['--fallback-target', 'rules=http://127.0.0.1:9000', '--fallback-target', 'cloud=https://models.example.com']));
    expect([...t.values()]).toEqual([
      { name: 'rules', host: '127.0.0.1', port: 9000, tls: false },
      { name: 'cloud', host: 'models.example.com', port: 443, tls: true },
    ]);
    const fromEnv = buildFallbackTargets(read([], { SELDON_GATEWAY_FALLBACK_TARGET: 'a=http://[::1]:81,b=http://b.svc' }));
    expect([...fromEnv.values()]).toEqual([
      { name: 'a', host: '::1', port: 81, tls: false },
      { name: 'b', host: 'b.svc', port: 80, tls: false },
    ]);
    expect(buildFallbackTargets(read()).size).toBe(0);
  });

  it('refuses a bad value in its own words', () => {
    const bad = (v: string): string => refusal(() => buildFallbackTargets(read(['--fallback-target', v])));
    expect(bad('http://127.0.0.1:9000')).toBe('--fallback-target "http://127.0.0.1:9000": no NAME= before the address (expected NAME=http://host:port or NAME=https://host:port)');
    expect(bad('a b=http://x:1')).toMatch(/NAME "a b" must be letters, digits/);
    expect(bad('rules=127.0.0.1:9000')).toMatch(/scheme 127.0.0.1: is neither http: nor https:|the address is not a URL/);
    expect(bad('rules=ftp://x:1')).toMatch(/scheme ftp: is neither http: nor https:/);
    expect(bad('rules=http://x:1/predict')).toMatch(/the address has more than a scheme, host and port/);
    expect(bad('rules=http://user:pw@x:1')).toMatch(/more than a scheme, host and port/);
    expect(refusal(() => buildFallbackTargets(read(['--fallback-target', 'a=http://x:1', '--fallback-target', 'a=http://y:2'])))).toBe('--fallback-target: a is named twice');
  });

  it('its names, and no others, reach the compiler, for serve and routes alike', () => {
    for (const command of ['serve', 'routes'] as const) {
      const c = parseConfig(command, ['--fallback-target', 'rules=http://127.0.0.1:9000'], {});
      expect([...c.compile.fallbackTargets!]).toEqual(['rules']);
    }
  });
});
