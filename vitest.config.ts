import { configDefaults, defineConfig } from 'vitest/config';

/** Pure tests (the routing core, single units, config sections): no build, no gateway process, no socket, seconds to run. */
const UNIT = ['test/**/*.unit.test.ts'];
/** Seeded simulations and long property runs: pure too, but minutes on a busy machine. */
const SLOW = ['test/**/*-sim.test.ts', 'test/**/*.property.test.ts'];
const EXCLUDE = configDefaults.exclude;

export default defineConfig({
  test: {
    // Bounds, not waits: generous enough for a busy machine (a CLI gateway alone may take 30 s to start there).
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // `npm test` runs all three (after the type check); `npm run test:unit` the first alone, without either.
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT, exclude: [...EXCLUDE, ...SLOW] } },
      { extends: true, test: { name: 'simulation', include: SLOW } },
      // The CLI tests run the built entry point (`node dist/gateway/main.js`), as users do.
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: [...EXCLUDE, ...UNIT, ...SLOW], globalSetup: ['test/global-setup.ts'] } },
    ],
  },
});
