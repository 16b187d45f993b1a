import { defineConfig } from 'vitest/config';

// The real-server suite (test/n8n-server): one n8n 2.41.1 process on embedded PostgreSQL, driven over
// HTTP in real time. Apart from `npm test` because it needs n8n installed in the cache folder
// (`node scripts/n8n-server.js install`, run by `npm run test:n8n`) and minutes of wall time.
export default defineConfig({
  test: {
    name: 'n8n-server',
    include: ['test/n8n-server/*.test.ts'],
    // A loaded 2-core machine: n8n alone can take a minute to start; waits inside tests poll up to 5 minutes.
    testTimeout: 600_000,
    hookTimeout: 900_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
