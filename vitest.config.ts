import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Integration tests share real servers; two cores: keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
    env: { STELLA_LOG_LEVEL: process.env.STELLA_LOG_LEVEL ?? 'warn' },
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
