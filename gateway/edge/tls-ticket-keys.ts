/**
 * The TLS session-ticket key (48 bytes: name, HMAC and AES keys): random per gateway. The cluster
 * primary makes one and hands it to its workers in their environment (`shareTicketKeys`), so a
 * ticket issued by one worker resumes on another (SO_REUSEPORT spreads a client's connections).
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';

/** Set by the cluster primary for its workers: one session-ticket key for the whole gateway. */
const TICKET_KEYS_ENV = 'SELDON_GATEWAY_INTERNAL_TLS_TICKET_KEYS';

/** This process's ticket key: the primary's when it handed one down, else its own. */
export function ticketKeys(): Buffer {
  const given = process.env[TICKET_KEYS_ENV];
  if (given !== undefined) {
    // Read once; the worker's own children (none today) need not see it.
    delete process.env[TICKET_KEYS_ENV];
    const keys = Buffer.from(given, 'base64');
    if (keys.length === 48) return (ownKeys = keys);
  }
  return (ownKeys ??= randomBytes(48));
}
let ownKeys: Buffer | undefined;

/** In the cluster primary, before workers are forked: they inherit one ticket key. */
export function shareTicketKeys(): void {
  if (cluster.isPrimary) process.env[TICKET_KEYS_ENV] = ticketKeys().toString('base64');
}
