/**
 * The value parsers of the command line (gateway/config/values.ts): what each accepts, what it makes
 * of it, and the gateway's words for what it refuses.
 */
import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { addTrustedProxy, orList, parseBool, parseBytes, parseChoice, parseDuration, parseFraction, parseNumber, parsePort, parseResolve, parseWhole } from '../../../gateway/config/values.js';
import { refusal } from './refusal.js';

describe('durations', () => {
  it('take ms, s, m, h or d, with decimals, blanks and several in a row (routing/values/duration.ts)', () => {
    expect(parseDuration('t', '500ms')).toBe(500);
    expect(parseDuration('t', '10s')).toBe(10_000);
    expect(parseDuration('t', '1.5s')).toBe(1500);
    expect(parseDuration('t', '2m')).toBe(120_000);
    expect(parseDuration('t', '12h')).toBe(43_200_000);
    expect(parseDuration('t', ' 3 s ')).toBe(3000);
    expect(parseDuration('t', '1d')).toBe(86_400_000);
    expect(parseDuration('t', '1m30s')).toBe(90_000);
  });

  it('a duration that is not whole milliseconds is refused, never rounded', () => {
    expect(refusal(() => parseDuration('grace-period', '0.0004s'))).toBe('--grace-period: "0.0004s" is not a whole number of milliseconds');
    expect(refusal(() => parseDuration('grace-period', '1.5ms'))).toBe('--grace-period: "1.5ms" is not a whole number of milliseconds');
  });

  it('a number without a unit is refused, naming the flag and the units (only 0 needs none)', () => {
    expect(refusal(() => parseDuration('default-timeout', '3'))).toBe('--default-timeout: "3" has no unit: durations take ms, s, m, h or d (3ms, 3s)');
    expect(refusal(() => parseDuration('grace-period', '2.5'))).toBe('--grace-period: "2.5" has no unit: durations take ms, s, m, h or d (2.5ms, 2.5s)');
    expect(parseDuration('client-request-timeout', '0')).toBe(0);
    expect(parseDuration('client-request-timeout', '0s')).toBe(0);
  });

  it('anything else is not a duration', () => {
    for (const v of ['', 'soon', '5w', '-1s', '1e3ms', 's', '1 sec']) {
      expect(refusal(() => parseDuration('connect-timeout', v))).toBe(`--connect-timeout: "${v}" is not a duration like 500ms, 10s or 2m`);
    }
  });
});

describe('sizes', () => {
  it('take bytes or a decimal or binary unit, in any case', () => {
    expect(parseBytes('s', '1048576')).toBe(1_048_576);
    expect(parseBytes('s', '512KiB')).toBe(512 * 1024);
    expect(parseBytes('s', '4mib')).toBe(4 * 1024 ** 2);
    expect(parseBytes('s', '1GB')).toBe(1e9);
    expect(parseBytes('s', '2 kB')).toBe(2000);
    expect(parseBytes('s', '7b')).toBe(7);
  });

  it('refuse unknown units, fractions and negatives', () => {
    for (const v of ['1XB', '1.5MiB', '-1', 'MiB', '']) expect(refusal(() => parseBytes('max-body', v))).toBe(`--max-body: "${v}" is not a size like 1048576, 512KiB or 4MiB`);
  });
});

describe('numbers', () => {
  it('whole numbers: digits only', () => {
    expect(parseWhole('n', ' 42 ')).toBe(42);
    for (const v of ['-1', '1.5', '1e3', '', 'x']) expect(refusal(() => parseWhole('workers', v))).toBe(`--workers: "${v}" is not a whole number`);
  });

  it('ports: whole numbers up to 65535', () => {
    expect(parsePort('port', '0')).toBe(0);
    expect(parsePort('port', '65535')).toBe(65535);
    expect(refusal(() => parsePort('port', '65536'))).toBe('--port: 65536 is not a port (0..65535)');
    expect(refusal(() => parsePort('port', 'http'))).toBe('--port: "http" is not a whole number');
  });

  it('numbers and fractions', () => {
    expect(parseNumber('x', '1e-6')).toBe(1e-6);
    expect(refusal(() => parseNumber('x', ''))).toBe('--x: "" is not a number');
    expect(refusal(() => parseNumber('x', 'Infinity'))).toBe('--x: "Infinity" is not a number');
    expect(parseFraction('trace-sample', '0.25')).toBe(0.25);
    expect(refusal(() => parseFraction('trace-sample', '1.5'))).toBe('--trace-sample: 1.5 is not between 0 and 1');
    expect(refusal(() => parseFraction('trace-sample', '-0.1'))).toBe('--trace-sample: -0.1 is not between 0 and 1');
  });
});

describe('booleans and choices', () => {
  it('booleans: the usual words, empty is false; the message names what was given', () => {
    for (const v of ['1', 'true', 'YES', ' on ']) expect(parseBool('X', v)).toBe(true);
    for (const v of ['0', 'false', 'No', 'off', '']) expect(parseBool('X', v)).toBe(false);
    expect(refusal(() => parseBool('SELDON_GATEWAY_PREDICTOR_HEADER', 'maybe'))).toBe('SELDON_GATEWAY_PREDICTOR_HEADER: "maybe" is not true or false');
  });

  it('choices: case and blanks ignored; the message lists every accepted value', () => {
    expect(parseChoice('balance', ' Round-Robin ', ['random', 'round-robin'])).toBe('round-robin');
    expect(refusal(() => parseChoice('log-level', 'verbose', ['fatal', 'error', 'warn', 'info', 'debug', 'trace']))).toBe('--log-level: "verbose" is not fatal, error, warn, info, debug or trace');
    expect(orList(['a'])).toBe('a');
    expect(orList(['a', 'b'])).toBe('a or b');
  });
});

describe('--resolve and --trusted-proxies entries', () => {
  it('resolve: <svc>.<ns>:<port>=<host>:<port>, IPv6 hosts in brackets', () => {
    expect(parseResolve('iris-main.seldon:8000=127.0.0.1:9001')).toEqual(['iris-main.seldon:8000', { host: '127.0.0.1', port: 9001 }]);
    expect(parseResolve(' a.b:1=[::1]:2 ')).toEqual(['a.b:1', { host: '::1', port: 2 }]);
    for (const v of ['a.b=127.0.0.1:1', 'a.b:1=127.0.0.1', 'a.b:1:127.0.0.1:2']) expect(refusal(() => parseResolve(v))).toBe(`--resolve: "${v}" is not <svc>.<ns>:<port>=<host>:<port>`);
  });

  it('trusted proxies: addresses and CIDRs of both families, added to the list', () => {
    const list = new BlockList();
    for (const entry of ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1']) addTrustedProxy(list, entry);
    expect(list.check('10.1.2.3', 'ipv4')).toBe(true);
    expect(list.check('192.168.1.7', 'ipv4')).toBe(true);
    expect(list.check('192.168.1.8', 'ipv4')).toBe(false);
    expect(list.check('fd12::1', 'ipv6')).toBe(true);
    for (const v of ['10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0.0/8/1', '10.0.0.0/x']) {
      expect(refusal(() => addTrustedProxy(new BlockList(), v))).toBe(`--trusted-proxies: "${v}" is not an address or CIDR like 10.0.0.0/8 or fd00::/8`);
    }
  });
});
