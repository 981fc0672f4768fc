import type { Test } from 'tap'
import { REDIS_INSTALL_HINT, redisServerPath, startLocalRedis, type LocalRedis } from '../../local/redis.js'
import { isCI } from './ci.js'

export type TestRedis = LocalRedis

/**
 * Starts a throwaway redis-server (local/redis.ts) for the test `t` (a file's root test): its
 * teardown stops the server however the test ended. Without redis-server the test is skipped with
 * the command that installs it, and fails instead under CI, where it must run. Resolves undefined
 * then.
 */
export async function startRedis (t: Test): Promise<TestRedis | undefined> {
  if (redisServerPath() === undefined) {
    if (isCI()) t.fail(`${REDIS_INSTALL_HINT} (CI must run the Redis tests)`)
    else void t.skip(`SKIPPED, ${REDIS_INSTALL_HINT}`, () => {})
    return undefined
  }
  const redis = await startLocalRedis()
  t.teardown(redis.stop)
  return redis
}
