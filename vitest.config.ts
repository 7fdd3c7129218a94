import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Bounds, not waits: generous enough for a busy machine (a CLI gateway alone may take 30 s to start there).
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
