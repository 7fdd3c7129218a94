/**
 * What an answer's own header fields already say of what the lane's writer would add (edge/lane-exchange.ts
 * writes `node:http`'s Date, Connection and framing only where the answer has none): one bit per meaning.
 */
import { lists } from '../wire/http1-syntax.js';

/** What the answer's own fields already say, of what the server would add. */
export const DATE = 1;
export const CONNECTION = 2;
export const CLOSE = 4;
export const FRAMED = 8;
export const LENGTH = 16;
export function meaning(name: string, value: string): number {
  switch (name.length) {
    case 4:
      return name.toLowerCase() === 'date' ? DATE : 0;
    case 10:
      return name.toLowerCase() !== 'connection' ? 0 : lists(value, 'close') ? CONNECTION | CLOSE : CONNECTION;
    case 14:
      return name.toLowerCase() === 'content-length' ? FRAMED | LENGTH : 0;
    case 17:
      return name.toLowerCase() === 'transfer-encoding' ? FRAMED : 0;
    default:
      return 0;
  }
}

/** A Content-Length value as a number (-1: not one plain decimal). */
export function lengthOf(value: string): number {
  return /^\d{1,15}$/.test(value) ? Number(value) : -1;
}
