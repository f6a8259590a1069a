import { defineConfig } from 'vitest/config';
import { alone, vmLane } from './test/lanes.js';

// `unit` needs nothing but Node and runs in seconds. The files against real parts (`*.int.test.ts`)
// run one at a time within a lane, because those parts are shared by the whole machine; the
// lanes themselves run at once (scripts/lanes.sh): `vm` deploys to the test VM and holds the
// monitoring stack's fixed ports, `host` uses everything else, `alone` restarts the engine under
// everybody and so runs by itself, last. test/lanes.ts says which file goes where, and why.
const integration = { fileParallelism: false, testTimeout: 300_000, hookTimeout: 600_000 };
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts', 'node_modules/**'],
          testTimeout: 15_000,
        },
      },
      {
        test: {
          name: 'host',
          include: ['test/**/*.int.test.ts'],
          exclude: [...vmLane, ...alone, 'node_modules/**'],
          ...integration,
        },
      },
      { test: { name: 'vm', include: vmLane, exclude: alone, ...integration } },
      { test: { name: 'alone', include: alone, ...integration } },
    ],
  },
});
