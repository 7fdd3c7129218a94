/** The words of a refused value: the message of the UsageError `f` throws (fails if it throws none, or another error). */
import { expect } from 'vitest';
import { UsageError } from '../../../gateway/config/values.js';

export function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('accepted');
}
