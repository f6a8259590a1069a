import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing but Node and runs in seconds; `integration` drives real
// parts (container engine, registry, sshd, Prometheus, Alertmanager) and runs one file at a
// time, because those parts are shared by the whole machine.
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
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
