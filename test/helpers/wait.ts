/** Waiting in tests: a plain pause, and polling an asynchronous condition. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll an asynchronous condition every 50 ms until it holds, or throw after `ms`. (`waitFor` in gateway.ts is the synchronous one.) */
export async function waitUntil(cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(50);
  }
}
