import { LRUCache } from 'lru-cache'
import type { RedisClient } from '../redis-connection.js'

/** What taking from a budget answered: allowed, or refused until the window resets. */
export type BudgetAnswer = { allowed: true } | { allowed: false, retryAfterMs: number }

/**
 * A per-minute budget counted in units of work rather than in requests: a service's
 * notifications, whose requests carry 1 to 1,000 each. Fixed windows, started by the first take.
 */
export interface ServiceBudget {
  /** Takes `units` from `key`'s window if they all fit under `max`; refused, it takes none. */
  take (key: string, units: number, max: number): Promise<BudgetAnswer>
}

export const WINDOW_MS = 60_000
const MAX_KEYS = 100_000

/** This gateway's own counts, in memory. */
export class MemoryBudget implements ServiceBudget {
  readonly #windows = new LRUCache<string, { used: number, endsAt: number }>({ max: MAX_KEYS })
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  async take (key: string, units: number, max: number): Promise<BudgetAnswer> {
    const now = this.#now()
    let window = this.#windows.get(key)
    if (window === undefined || window.endsAt <= now) {
      window = { used: 0, endsAt: now + WINDOW_MS }
      this.#windows.set(key, window)
    }
    if (window.used + units > max) return { allowed: false, retryAfterMs: window.endsAt - now }
    window.used += units
    return { allowed: true }
  }
}

/** Check and take in one step on the server, so that gateways taking at once never overspend. */
const TAKE_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = tonumber(ARGV[1])
if used + units > tonumber(ARGV[2]) then return math.max(redis.call('PTTL', KEYS[1]), 0) end
if redis.call('INCRBY', KEYS[1], units) == units then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return -1
`

/**
 * Every gateway's counts together, in Redis (with REDIS_URL). A count Redis cannot answer lets the
 * work through, as the request limits do: the budget guards against floods, it is not a promise.
 */
export class RedisBudget implements ServiceBudget {
  readonly #redis: RedisClient

  constructor (redis: RedisClient) {
    this.#redis = redis
  }

  async take (key: string, units: number, max: number): Promise<BudgetAnswer> {
    let refusedForMs: unknown
    try {
      refusedForMs = await this.#redis.eval(TAKE_SCRIPT, 1, `notify:service-budget:${key}`, units, max, WINDOW_MS)
    } catch {
      return { allowed: true }
    }
    return typeof refusedForMs === 'number' && refusedForMs >= 0 ? { allowed: false, retryAfterMs: refusedForMs } : { allowed: true }
  }
}
