/**
 * The one reader of TCP ports in configuration: a SeldonDeployment's ports and status endpoints, a
 * Mapping's `service`, a CORS origin, the flags' addresses (--ext-auth-service, --redis-url,
 * --fallback-target, a log sink's URL) and the port flags. A port is a whole number (whole-number.ts:
 * a YAML integer or a string of digits) from 1 to 65535; `0` is no port, except where a flag lets it
 * mean "any free port" (a listener's), which it says with `min: 0`. (A request's Host is checked by
 * host.ts's own scan, the same rule byte by byte, as it runs on every request.)
 */
import { readWholeNumber, type Whole } from './whole-number.js';

export const MAX_PORT = 65535;

/** `v` as a port (1..65535, or from `min`), or why not. */
export function readPort(v: unknown, min = 1): Whole {
  const n = readWholeNumber(v, { min, max: MAX_PORT });
  return n.ok ? n : { ok: false, error: `${JSON.stringify(v) ?? String(v)} is not a port (${min}..${MAX_PORT})` };
}

/** `v` as a port 1..65535, or null. */
export function validPort(v: unknown): number | null {
  const n = readPort(v);
  return n.ok ? n.value : null;
}
