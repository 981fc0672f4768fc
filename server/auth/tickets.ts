import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { NotifyError } from '../errors.js'
import type { RedisClient } from '../redis-connection.js'
import type { Principal } from './tokens.js'

/** A ticket is short-lived: it only carries a token from an authenticated POST to the next upgrade. */
export const TICKET_TTL_MS = 30_000
/** 32 random bytes, base64url. */
export const TICKET_PATTERN = '^[A-Za-z0-9_-]{43}$'
/** `notify:ticket:<ticket>` in Redis. */
export const TICKET_KEY_PREFIX = 'notify:ticket:'
/** Tickets held at once in memory; past it the oldest go (their holders ask for another). */
const MAX_MEMORY_TICKETS = 100_000

/** Where tickets live until redeemed or expired: each `take` of one succeeds once. */
export interface TicketStore {
  put (ticket: string, principal: string, ttlMs: number): Promise<void>
  /** The stored value, deleted in the same step; undefined when unknown, expired or taken before. */
  take (ticket: string): Promise<string | undefined>
}

/** The shared ticket store (Redis) did not answer: nothing was issued, or whether it was redeemed is unknown. */
export class TicketsUnavailableError extends NotifyError<'TICKETS_UNAVAILABLE'> {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super('TICKETS_UNAVAILABLE', message, { canRetry: true, cause: options.cause })
  }
}

/**
 * One-time tickets that stand for a verified token on a streaming endpoint (`GET /ws`, `GET /sse`),
 * where browsers cannot set an Authorization header: a token in the URL ends up in proxy access
 * logs and browser history, a ticket there is spent by the time anyone reads it. Issued by an
 * authenticated POST, good for one use within `TICKET_TTL_MS` and never past the token's own
 * expiry; kept in this process, or in Redis (with REDIS_URL) so that a ticket issued by one gateway
 * is redeemed on whichever the upgrade (or stream) reaches.
 */
export class Tickets {
  readonly #store: TicketStore
  readonly #now: () => number

  constructor (store: TicketStore, now: () => number = Date.now) {
    this.#store = store
    this.#now = now
  }

  async issue (principal: Principal): Promise<{ ticket: string, expiresAt: string }> {
    const now = this.#now()
    const expiresAt = Math.min(now + TICKET_TTL_MS, principal.expiresAt === undefined ? Infinity : principal.expiresAt * 1000)
    const ticket = randomBytes(32).toString('base64url')
    await this.#store.put(ticket, JSON.stringify(principal), Math.max(1, expiresAt - now))
    return { ticket, expiresAt: new Date(expiresAt).toISOString() }
  }

  /** The principal the ticket was issued to, once; undefined for a ticket unknown, expired or used. */
  async redeem (ticket: string): Promise<Principal | undefined> {
    const stored = await this.#store.take(ticket)
    return stored === undefined ? undefined : JSON.parse(stored) as Principal
  }
}

/** Tickets in this process's memory (one gateway), bounded in number and time (`now`: tests pass a fake clock). */
export function memoryTicketStore (options: { maxTickets?: number, now?: () => number } = {}): TicketStore {
  const tickets = new LRUCache<string, string>({
    max: options.maxTickets ?? MAX_MEMORY_TICKETS,
    ttlResolution: 0,
    ...(options.now === undefined ? {} : { perf: { now: options.now } })
  })
  return {
    async put (ticket, principal, ttlMs) {
      tickets.set(ticket, principal, { ttl: ttlMs })
    },
    async take (ticket) {
      const principal = tickets.get(ticket)
      tickets.delete(ticket)
      return principal
    }
  }
}

/** Tickets in Redis, shared by every gateway: `SET … PX … NX` to issue, `GETDEL` to redeem (one round trip each). */
export function redisTicketStore (redis: RedisClient): TicketStore {
  const reach = async <T>(what: string, send: () => Promise<T>): Promise<T> => {
    try {
      return await send()
    } catch (error) {
      throw new TicketsUnavailableError(`Redis did not answer: the ticket cannot be ${what}`, { cause: error })
    }
  }
  return {
    async put (ticket, principal, ttlMs) {
      await reach('issued', () => redis.set(`${TICKET_KEY_PREFIX}${ticket}`, principal, 'PX', ttlMs, 'NX'))
    },
    async take (ticket) {
      const principal = await reach('redeemed', () => redis.call('GETDEL', `${TICKET_KEY_PREFIX}${ticket}`))
      return typeof principal === 'string' ? principal : undefined
    }
  }
}
