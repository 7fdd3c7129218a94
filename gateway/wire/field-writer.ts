/**
 * Header fields that write themselves into a head (edge/upstream-fields.ts: a request's fields
 * copied from the buffer they arrived in), for the upstream client's request head
 * (upstream/request-head.ts), which otherwise writes a `[name, value, …]` list. Its fields were
 * checked when they were read (a field a head cannot carry never gets here) and frame nothing:
 * no Content-Length, Transfer-Encoding or Connection, which the client writes itself.
 */
export interface FieldWriter {
  /** The bytes `writeFields` writes: each field as `name: value` CRLF. */
  readonly fieldBytes: number;
  /** A Host field is among them. */
  readonly hasHost: boolean;
  /** Write them into `out` at `at`; the index after. */
  writeFields(out: Buffer, at: number): number;
  /** The Content-Length the request came with, for a body that streams (-1: none, it goes chunked). */
  readonly declaredLength: number;
}

/** Whether a request's headers are a list or fields that write themselves. */
export const isFieldWriter = (h: readonly string[] | FieldWriter): h is FieldWriter => !Array.isArray(h);

/** Every field named `name` (lower case) dropped from a `[name, value, …]` list, in place. */
export function removeField(list: string[], name: string): void {
  for (let i = list.length - 2; i >= 0; i -= 2) if (list[i]!.length === name.length && list[i]!.toLowerCase() === name) list.splice(i, 2);
}
