/** `--redis-url` for one server, a Sentinel set and a Redis Cluster (gateway/auth/redis-url.ts). */
import { describe, expect, it } from 'vitest';
import { parseRedisUrl, redactRedisUrl } from '../../../gateway/auth/redis-url.js';

describe('--redis-url', () => {
  it('one server: as ioredis takes it, credentials read for the record', () => {
    expect(parseRedisUrl('redis://user:p%40ss@redis:6380/2')).toMatchObject({
      kind: 'single',
      url: 'redis://user:p%40ss@redis:6380/2',
      username: 'user',
      password: 'p@ss',
      tls: false,
      redacted: 'redis://user:redacted@redis:6380/2',
    });
    expect(parseRedisUrl('rediss://redis')).toMatchObject({ kind: 'single', tls: true });
  });

  it('Sentinel: the sentinels (default port 26379), the master name, the database, TLS and credentials', () => {
    expect(parseRedisUrl('redis+sentinel://:pw@s1:26380,s2,[::1]:5000/mymaster/3')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
        { host: '::1', port: 5000 },
      ],
      masterName: 'mymaster',
      db: 3,
      username: undefined,
      password: 'pw',
      sentinelUsername: undefined,
      sentinelPassword: undefined,
      tls: false,
      redacted: 'redis+sentinel://:redacted@s1:26380,s2,[::1]:5000/mymaster/3',
    });
    expect(parseRedisUrl('rediss+sentinel://app:pw@s1/m?sentinelPassword=sp')).toMatchObject({
      tls: true,
      username: 'app',
      password: 'pw',
      sentinelPassword: 'sp',
      db: 0,
      redacted: 'rediss+sentinel://app:redacted@s1/m?sentinelPassword=redacted',
    });
  });

  it('Cluster: the seeds (default port 6379), TLS and an ACL user', () => {
    expect(parseRedisUrl('rediss+cluster://gw:pw@n1:7000,n2')).toMatchObject({
      kind: 'cluster',
      seeds: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 6379 },
      ],
      username: 'gw',
      password: 'pw',
      tls: true,
    });
  });

  it('a URL that cannot be used says what is wrong and names the URL, password redacted', () => {
    const cases: [string, string][] = [
      ['redis+sentinel://:pw@s1:26379', 'no master name'],
      ['redis+sentinel://:pw@s1:26379/m/x', 'is not <masterName>[/<db>]'],
      ['redis+sentinel://:pw@s1:0/m', 'is not a port'],
      ['redis+sentinel://:pw@/m', 'no host:port'],
      ['redis+cluster://:pw@n1:7000/1', 'a cluster URL has no path'],
      ['redis+cluster://:pw@n1:7000?x=1', 'unknown parameter "x"'],
      ['redis+sentinel://:pw@s1/m?db=1', 'unknown parameter "db"'],
      ['http://:pw@n1', 'the scheme is not'],
      ['redis://:pw@n1/x', '"x" is not a database number'],
    ];
    for (const [url, why] of cases) {
      expect(() => parseRedisUrl(url), url).toThrow(why);
      expect(() => parseRedisUrl(url), url).toThrow(`--redis-url ${redactRedisUrl(url)}: `);
      try {
        parseRedisUrl(url);
      } catch (err) {
        expect((err as Error).message).not.toContain(':pw@');
      }
    }
  });
});
