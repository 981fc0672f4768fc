import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { ErrorCode, RequestError } from '../errors.js'
import type { RedisClient } from '../redis-connection.js'
import { addressKey } from './client-address.js'
import { beforeDeadline } from './deadline.js'
import { MemoryBudget, RedisBudget } from './service-budget.js'

export type RequestHook = (request: FastifyRequest) => Promise<void>

/** Hooks that answer 429 with Retry-After past a per-minute budget; no-ops when the limit is 0. */
export interface RateLimits {
  /** Per client address; runs before auth, so floods of bad tokens are limited too. */
  perIp: RequestHook
  /** Per signed-in user; runs after auth. Service tokens (backends) are exempt. */
  perUser: RequestHook
  /**
   * Per service token, counted in notifications (one per recipient), not requests: takes
   * `notifications` from the service's budget, or refuses the whole request.
   */
  perService: (request: FastifyRequest, notifications: number) => Promise<void>
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
  const budget = redis === undefined ? new MemoryBudget() : new RedisBudget(redis)
  const perMinute = config.rateLimit.perService
  return {
    perIp: limit(config.rateLimit.perIp, 'from this address', (request) => `ip:${addressKey(request.ip)}`),
    perUser: limit(config.rateLimit.perUser, 'from this user', (request) =>
      request.principal.service ? undefined : `user:${request.principal.user.id}`),
    perService: async (request, notifications) => {
      if (perMinute === 0) return
      if (notifications > perMinute) {
        throw new RequestError(ErrorCode.TOO_MANY_RECIPIENTS, `body/recipients has ${notifications} recipients, more than this service may notify in a minute (RATE_LIMIT_PER_SERVICE: ${perMinute}): split it`)
      }
      const taking = budget.take(request.principal.user.id, notifications, perMinute)
      // As for the limits above: a budget Redis has not answered by the deadline is not spent.
      const answer = redis === undefined ? await taking : await beforeDeadline(request, taking, () => ({ allowed: true as const }))
      if (!answer.allowed) {
        throw new RequestError(ErrorCode.RATE_LIMITED, `Too many notifications from this service: at most ${perMinute} a minute (this request has ${notifications})`, { retryAfter: Math.max(1, Math.ceil(answer.retryAfterMs / 1000)) })
      }
    }
  }
}
