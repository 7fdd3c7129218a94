/** What the gateway's refusals say of a store's or a service's problem (`--error-detail`). */

export type ErrorDetail = 'public' | 'internal';

/** A public description, with the internal detail appended when `--error-detail internal`. */
export const withDetail = (mode: ErrorDetail, text: string, detail: string): string => (mode === 'internal' ? `${text} (${detail})` : text);

/** The message of whatever was thrown. */
export const problemOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
