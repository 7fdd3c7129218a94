/** Reading a routing parser's `Parsed` result in a test: its value, or its error, failing on the other. */
import type { Parsed } from '../../routing/values/syntax.js';

/** `parse`'s value for `raw` (throws its error). */
export const parsedValue =
  <T>(parse: (raw: string) => Parsed<T>) =>
  (raw: string): T => {
    const p = parse(raw);
    if (!p.ok) throw new Error(p.error);
    return p.value;
  };

/** `parse`'s error for `raw` (throws when it parses). */
export const parsedError =
  <T>(parse: (raw: string) => Parsed<T>) =>
  (raw: string): string => {
    const p = parse(raw);
    if (p.ok) throw new Error(`parsed: ${JSON.stringify(p.value)}`);
    return p.error;
  };
