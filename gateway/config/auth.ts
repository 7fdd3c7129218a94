/** Auth: OAuth tokens, rate limits, the steering keys, and the Redis they share. */
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { UsageError } from './values.js';

export const AUTH_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'redis-url',
    section: 'auth',
    value: 'url',
    env: 'REDIS_URL',
    kind: 'string',
    commands: SERVE,
    help: "Redis for state every replica shares (OAuth tokens, rate limits), e.g. redis://redis:6379/0. Unset: kept in this instance's memory.",
  },
  {
    flag: 'redis-timeout',
    section: 'auth',
    env: env('redis-timeout'),
    kind: 'duration',
    default: '100ms',
    commands: SERVE,
    help: "How long a request waits for Redis: then token checks answer 503 and rate limits use this replica's share.",
  },
  {
    flag: 'steering-key-file',
    section: 'auth',
    value: 'path',
    env: env('steering-key-file'),
    kind: 'string',
    commands: SERVE,
    help: 'HMAC keys, one per line (a mounted Secret; the first signs), for what clients send back: bandit attribution tokens and sticky cookies. Unset: a key shared through --redis-url, else one per instance.',
  },
  {
    flag: 'oauth-token-ttl',
    section: 'auth',
    env: env('oauth-token-ttl'),
    kind: 'duration',
    default: '43200s',
    commands: SERVE,
    help: 'Lifetime of the bearer tokens POST /oauth/token issues (a client gets its unexpired token again).',
  },
];

/** OAuth tokens and rate limits, and the Redis they share. */
export interface AuthConfig {
  readonly redisUrl: string | undefined;
  /** --steering-key-file: the keys that sign attribution tokens and sticky cookies (gateway/steer/keys.ts). */
  readonly steeringKeyFile: string | undefined;
  readonly redisTimeoutMs: number;
  readonly oauthTokenTtlMs: number;
}

export function buildAuth(read: Reader): AuthConfig {
  const oauthTokenTtlMs = read.duration('oauth-token-ttl');
  if (oauthTokenTtlMs < 1000) throw new UsageError('--oauth-token-ttl: must be at least 1s');
  return { redisUrl: read.optStr('redis-url'), steeringKeyFile: read.optStr('steering-key-file'), redisTimeoutMs: read.duration('redis-timeout'), oauthTokenTtlMs };
}
