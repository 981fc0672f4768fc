import type { Test } from 'tap'
import { REDIS_INSTALL_HINT, redisServerPath, startLocalRedis, startLocalRedisCluster, type LocalRedis, type LocalRedisCluster } from '../../local/redis.js'
import { isCI } from './ci.js'

export type TestRedis = LocalRedis
export type TestRedisCluster = LocalRedisCluster

/**
 * Starts a throwaway redis-server (local/redis.ts) for the test `t` (a file's root test): its
 * teardown stops the server however the test ended. Without redis-server the test is skipped with
 * the command that installs it, and fails instead under CI, where it must run. Resolves undefined
 * then.
 */
export async function startRedis (t: Test): Promise<TestRedis | undefined> {
  if (!installed(t)) return undefined
  const redis = await startLocalRedis()
  t.teardown(redis.stop)
  return redis
}

/** `startRedis` for a Redis Cluster of three masters (local/redis.ts), under the same rule. */
export async function startRedisCluster (t: Test): Promise<TestRedisCluster | undefined> {
  if (!installed(t)) return undefined
  const cluster = await startLocalRedisCluster({ masters: 3 })
  t.teardown(cluster.stop)
  return cluster
}

/** Whether redis-server is there; if not, `t` is skipped, or failed under CI. */
function installed (t: Test): boolean {
  if (redisServerPath() !== undefined) return true
  if (isCI()) t.fail(`${REDIS_INSTALL_HINT} (CI must run the Redis tests)`)
  else void t.skip(`SKIPPED, ${REDIS_INSTALL_HINT}`, () => {})
  return false
}
