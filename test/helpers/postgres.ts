import type { Test } from 'tap'
import { POSTGRES_INSTALL_HINT, postgresBinDir, startLocalPostgres, type LocalPostgres } from '../../local/postgres.js'
import { isCI } from './ci.js'

export type TestPostgres = LocalPostgres

/**
 * Starts a throwaway PostgreSQL (local/postgres.ts) for the test `t` (a file's root test): its
 * teardown stops the server and removes its dir, whichever way the test ends. Without PostgreSQL
 * installed the test is skipped with the command that installs it, and fails instead under CI,
 * where it must run. Resolves undefined then.
 */
export async function startPostgres (t: Test): Promise<TestPostgres | undefined> {
  if (postgresBinDir() === undefined) {
    if (isCI()) t.fail(`${POSTGRES_INSTALL_HINT} (CI must run the PostgreSQL tests)`)
    else void t.skip(`SKIPPED, ${POSTGRES_INSTALL_HINT}`, () => {})
    return undefined
  }
  const postgres = await startLocalPostgres()
  t.teardown(postgres.stop)
  return postgres
}
