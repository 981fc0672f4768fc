import type { RedisClient } from '../redis-connection.js'
import { within } from '../lifecycle.js'
import { IdempotencyUnavailableError, type Idempotency, type KeyedAttempt, type RunOptions } from './types.js'

/** `notify:idempotency:<userId>:<key>`; a user id never holds a colon, so the split is unambiguous. */
export const KEY_PREFIX = 'notify:idempotency:'

/** What Redis holds per key: the request's fingerprint, what it made, and how its publish went. */
interface Stored {
  fingerprint: string
  value: unknown
  state: 'publishing' | 'accepted' | 'failed'
}

interface Local {
  fingerprint: string
  value: unknown
  publishing: Promise<void>
}

/**
 * `Idempotency-Key`s shared by every gateway through Redis (with REDIS_URL): a retry that lands on
 * another gateway than the first attempt still gets the first answer. The first request claims the
 * key with `SET … NX GET` (one round trip that also returns an earlier claim) and records how its
 * publish ended. A retry seen while another gateway's publish of the key is still open, or after it
 * failed, publishes the same notification again: the same id, so the inbox stores it once. Keys
 * expire after `ttlMs`; Redis's `maxmemory` bounds them, not this class (see docs/operations.md).
 */
export class RedisIdempotency implements Idempotency {
  readonly #redis: RedisClient
  readonly #ttlMs: number
  /** This gateway's publishes still open, so a retry here waits for its own first attempt. */
  readonly #open = new Map<string, Local>()

  constructor (redis: RedisClient, options: { ttlMs: number }) {
    this.#redis = redis
    this.#ttlMs = options.ttlMs
  }

  async run<T> (userId: string, key: string, fingerprint: string, create: () => T, publish: (value: T) => Promise<void>, { deadline }: RunOptions = {}): Promise<KeyedAttempt<T>> {
    const id = `${KEY_PREFIX}${userId}:${key}`
    const open = this.#open.get(id)
    if (open !== undefined) {
      // The same fingerprint means the same route made it: a value of the caller's type.
      return open.fingerprint === fingerprint ? { kind: 'duplicate', value: open.value as T, publishing: open.publishing } : { kind: 'conflict' }
    }
    const fresh = create()
    const claim = this.#command(() => this.#redis.call('SET', id, encode({ fingerprint, value: fresh, state: 'publishing' }), 'PX', this.#ttlMs, 'NX', 'GET'))
    // A claim that lands after the deadline leaves the key `publishing`: a retry then publishes
    // the same value, which is safe.
    const late = (): never => {
      throw new IdempotencyUnavailableError('Redis did not answer before the request\'s deadline: the Idempotency-Key cannot be checked')
    }
    const earlier = await (deadline === undefined ? claim : within(claim, deadline - performance.now(), late))
    if (earlier === null) return { kind: 'new', value: fresh, publishing: this.#publish(id, fingerprint, fresh, publish) }
    const stored = decode(earlier)
    if (stored === undefined) throw new IdempotencyUnavailableError(`the stored idempotency key ${JSON.stringify(key)} cannot be read`)
    if (stored.fingerprint !== fingerprint) return { kind: 'conflict' }
    const value = stored.value as T
    if (stored.state === 'accepted') return { kind: 'duplicate', value, publishing: Promise.resolve() }
    // Failed, or still open on another gateway (which may have died mid-publish): publishing the
    // same notifications again is safe, and answers this request only once Kafka has them.
    return { kind: 'retry', value, publishing: this.#publish(id, fingerprint, value, publish) }
  }

  #publish<T> (id: string, fingerprint: string, value: T, publish: (value: T) => Promise<void>): Promise<void> {
    const publishing = publish(value)
    const local = { fingerprint, value, publishing }
    this.#open.set(id, local)
    const settle = (state: Stored['state']): void => {
      if (this.#open.get(id) === local) this.#open.delete(id)
      // Best effort: a key left `publishing` makes a later retry publish once more, which the
      // inbox stores once; it never makes a retry lose the follow.
      this.#redis.call('SET', id, encode({ fingerprint, value, state }), 'XX', 'KEEPTTL').catch(() => {})
    }
    publishing.then(() => settle('accepted'), () => settle('failed'))
    return publishing
  }

  async #command<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send()
    } catch (error) {
      throw new IdempotencyUnavailableError(`Redis did not answer (${(error as Error).message}): the Idempotency-Key cannot be checked against the other gateways' keys`, { cause: error })
    }
  }
}

function encode (stored: Stored): string {
  return JSON.stringify(stored)
}

function decode (text: unknown): Stored | undefined {
  if (typeof text !== 'string') return undefined
  try {
    // `notification`: a key written before the value was generic (a follow's), at most a day ago.
    const stored = JSON.parse(text) as Partial<Stored> & { notification?: unknown }
    const value = stored.value ?? stored.notification
    if (typeof stored.fingerprint !== 'string' || value === undefined || value === null) return undefined
    if (stored.state !== 'publishing' && stored.state !== 'accepted' && stored.state !== 'failed') return undefined
    return { fingerprint: stored.fingerprint, value, state: stored.state }
  } catch {
    return undefined
  }
}
