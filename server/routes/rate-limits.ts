import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { ErrorCode, RequestError } from '../errors.js'
import type { RedisClient } from '../redis-connection.js'
import { addressKey } from './client-address.js'
import { beforeDeadline } from './deadline.js'

export type RequestHook = (request: FastifyRequest) => Promise<void>

/** Hooks that answer 429 with Retry-After past a per-minute budget; no-ops when the limit is 0. */
export interface RateLimits {
  /** Per client address; runs before auth, so floods of bad tokens are limited too. */
  perIp: RequestHook
  /** Per signed-in user; runs after auth. Service tokens (backends) are exempt. */
  perUser: RequestHook
}

const MINUTE_MS = 60_000
const unlimited: RequestHook = async () => {}

/**
 * Registers @fastify/rate-limit and returns the two limits. Counts are this gateway's own, in
 * memory, or every gateway's together in Redis when `redis` is given. A count Redis cannot answer
 * lets the request through (`skipOnError`): a Redis outage must not stop follows, and the budget
 * is a guard against floods, not a promise.
 */
export async function registerRateLimits (app: FastifyInstance, config: Config, redis?: RedisClient): Promise<RateLimits> {
  await app.register(fastifyRateLimit, redis === undefined
    ? { global: false, cache: 100_000 }
    : { global: false, redis, nameSpace: 'notify:rate-limit:', skipOnError: true })
  const limit = (max: number, what: string, key: (request: FastifyRequest) => string | undefined): RequestHook => {
    if (max === 0) return unlimited
    const check = app.createRateLimit({ max, timeWindow: MINUTE_MS, keyGenerator: (request) => key(request) ?? '' })
    return async (request) => {
      if (key(request) === undefined) return
      // A count Redis has not answered by the request's deadline is skipped, as one it fails.
      const result = redis === undefined ? await check(request) : await beforeDeadline(request, check(request), () => undefined)
      if (result !== undefined && !result.isAllowed && result.isExceeded) {
        throw new RequestError(ErrorCode.RATE_LIMITED, `Too many requests ${what}: at most ${max} a minute`, { retryAfter: result.ttlInSeconds })
      }
    }
  }
  return {
    perIp: limit(config.rateLimit.perIp, 'from this address', (request) => `ip:${addressKey(request.ip)}`),
    perUser: limit(config.rateLimit.perUser, 'from this user', (request) =>
      request.principal.service ? undefined : `user:${request.principal.user.id}`)
  }
}
