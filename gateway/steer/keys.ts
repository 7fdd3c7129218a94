/**
 * The HMAC keys every replica shares, for what clients send back: a bandit's attribution tokens
 * and sticky cookies (docs/bandits.md#attribution, docs/rollouts.md#sticky). The first key signs,
 * every key verifies (so a key can be rotated: add the new one first, drop the old one later).
 *
 *   --steering-key-file   one key per line (a Kubernetes Secret): what every replica reads.
 *   --redis-url           the first replica to start stores a random key in Redis (SET NX); the
 *                         others read it. Until Redis answers, a replica signs with a key of its own.
 *                         On every reconnection a replica offers the key it signs with again (SET
 *                         NX), so a Redis that restarted empty gets the same key back, not a new
 *                         one that replicas started later would sign with.
 *   neither               a random key, made once by the primary and given to its workers.
 *
 * Keys never reach a log.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KEY_PREFIX, type RedisConnection } from '../auth/redis.js';

export const STEERING_KEY = `${KEY_PREFIX}steer:hmac-key`;
const MIN_KEY_BYTES = 16;

/** Keys from a file: one per line (hex, base64 or raw text of at least 16 bytes), blank lines ignored. */
export function keysFromFile(path: string): Buffer[] {
  const keys = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => Buffer.from(l, 'utf8'));
  if (keys.length === 0) throw new Error(`--steering-key-file ${path}: no key in it`);
  for (const k of keys) if (k.length < MIN_KEY_BYTES) throw new Error(`--steering-key-file ${path}: a key is shorter than ${MIN_KEY_BYTES} bytes`);
  return keys;
}

/** The replicas' shared key in Redis: stored by the first one that asks (`offer`, else a random one), read by the others. */
export async function sharedKey(redis: RedisConnection, offer: Buffer = randomBytes(32)): Promise<Buffer> {
  // Durable: a key a failover lost would be replaced by another, and tokens signed with it refused.
  const stored = await redis.durableScript('sgwSteeringKey', OFFER_KEY)(STEERING_KEY, offer.toString('hex'));
  if (typeof stored !== 'string' || stored === '') throw new Error('the shared steering key vanished from Redis');
  return Buffer.from(stored, 'hex');
}

// KEYS: the key. ARGV: the key offered. Stores it unless one is there; returns the stored one.
const OFFER_KEY = { numberOfKeys: 1, lua: `redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])` };

/**
 * This replica's keys, as they become known: `changed` gets the first set at once (the file's, or
 * a random one) and, with Redis, the shared key once Redis has answered (retried until it does).
 * `first` settles at the first answer from a connected Redis, either way: a replica that starts serving
 * before it has the shared key signs tokens the others cannot check, so the start waits for it
 * (bounded: a Redis outage must not keep a replica from serving).
 */
export function loadKeys(options: { file?: string | undefined; redis?: RedisConnection | undefined }, changed: (keys: readonly Buffer[]) => void): { stop: () => void; first: Promise<void> } {
  if (options.file) {
    changed(keysFromFile(options.file));
    return { stop: () => undefined, first: Promise.resolve() };
  }
  const own = randomBytes(32);
  changed([own]);
  const redis = options.redis;
  if (!redis) return { stop: () => undefined, first: Promise.resolve() };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let answered: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (answered = resolve));
  /** The shared keys this replica has signed with, newest first. */
  let shared: Buffer[] = [];
  let asking = false;
  /** A reconnection while a request was out: ask again when it is back. */
  let again = false;
  const attempt = (): void => {
    // Commands fail at once while not connected (no offline queue): the connection's 'ready' asks again.
    if (stopped || !redis.up) return;
    if (asking) {
      again = true;
      return;
    }
    asking = true;
    again = false;
    const settled = (): void => {
      asking = false;
      answered();
      if (again) attempt();
    };
    sharedKey(redis, shared[0]).then(
      (key) => {
        if (!shared[0]?.equals(key)) {
          // Tokens signed with an earlier key (this replica's own, or a shared one Redis lost) still verify.
          shared = [key, ...shared].slice(0, 3);
          changed([...shared, own]);
        }
        settled();
      },
      () => {
        if (!stopped && shared.length === 0) timer = setTimeout(attempt, 1000).unref();
        settled();
      },
    );
  };
  // Every (re)connection: the first asks for the key, the later ones offer it back to a Redis that may have lost it.
  redis.onState((up) => up && attempt());
  attempt();
  return {
    stop: () => {
      stopped = true;
      answered();
      if (timer) clearTimeout(timer);
    },
    first,
  };
}
