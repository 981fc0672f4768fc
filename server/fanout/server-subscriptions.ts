import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { quitRedis } from '../redis-connection.js'
import type { FanoutReceiver } from './types.js'
import { channelOf, type Subscriptions, type SubscriptionsOptions } from './subscriptions.js'
import type { Unready } from '../lifecycle.js'

/** The first wait before subscribes Redis refused are tried again on the same connection; it doubles up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 200
const MAX_RETRY_MS = 5000

/**
 * The subscriptions on one Redis server's connection. They are this class's own, not ioredis's
 * (the connection has `autoResubscribe: false`), so it knows when they are active again: after
 * every (re)connection it subscribes every watched channel, then reports those users. A subscribe
 * Redis refuses is tried again, with backoff, for as long as the connection stays up.
 */
export class ServerSubscriptions implements Subscriptions {
  readonly #subscriber: Redis
  readonly #receiver: FanoutReceiver
  readonly #log: Logger
  readonly #watched = new Set<string>()
  /**
   * Watched users not confirmed subscribed on this connection, each with the number of the watch
   * that put it there: a confirmation counts only for that watch (an unwatch and a new watch may
   * have come in between).
   */
  readonly #pending = new Map<string, number>()
  #watches = 0
  /** Bumped at every close: a subscribe answered on an earlier connection confirms nothing. */
  #connection = 0
  /** Since the last (re)connection, or a refused subscribe, not every watched channel was confirmed: unready. */
  #behind = true
  #subscribing = false
  #retry: NodeJS.Timeout | undefined
  #retryMs = FIRST_RETRY_MS
  #closed = false

  constructor (subscriber: Redis, options: SubscriptionsOptions) {
    this.#subscriber = subscriber
    this.#receiver = options.receiver
    this.#log = options.log
    subscriber.on('smessage', options.onMessage)
    subscriber.on('ready', () => {
      for (const userId of this.#watched) this.#pending.set(userId, ++this.#watches)
      this.#behind = true
      this.#retryMs = FIRST_RETRY_MS
      void this.#subscribePending()
    })
    subscriber.on('close', () => {
      this.#connection++
      clearTimeout(this.#retry)
      this.#retry = undefined
    })
  }

  has (userId: string): boolean {
    return this.#watched.has(userId)
  }

  add (userId: string): void {
    this.#watched.add(userId)
    this.#pending.set(userId, ++this.#watches)
    void this.#subscribePending()
  }

  remove (userId: string): void {
    if (!this.#watched.delete(userId)) return
    this.#pending.delete(userId)
    if (this.#closed || this.#subscriber.status !== 'ready') return
    this.#subscriber.sunsubscribe(channelOf(userId)).catch((error: unknown) => {
      this.#log.debug({ err: error, userId }, 'Redis SUNSUBSCRIBE failed; the channel is dropped with the connection')
    })
  }

  unreadyReasons (): Unready[] {
    if (this.#subscriber.status !== 'ready') return [{ reason: 'Redis subscriber not connected', detail: this.#subscriber.status }]
    return this.#behind ? [{ reason: 'Redis subscriber resubscribing', detail: `${this.#pending.size} watched users` }] : []
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    this.#watched.clear()
    this.#pending.clear()
    await quitRedis(this.#subscriber)
  }

  /**
   * Subscribes every pending user, one pass at a time, and reports those confirmed, whose frames
   * before may be missed. What Redis refused is tried again after a backoff; users watched during
   * the pass get a pass of their own.
   */
  async #subscribePending (): Promise<void> {
    if (this.#subscribing || this.#retry !== undefined || this.#closed || this.#subscriber.status !== 'ready') return
    if (this.#pending.size === 0) {
      this.#behind = false
      return
    }
    this.#subscribing = true
    const connection = this.#connection
    const resubscribing = this.#behind
    const pass = [...this.#pending]
    const results = await Promise.allSettled(pass.map(async ([userId]) => await this.#subscriber.ssubscribe(channelOf(userId))))
    this.#subscribing = false
    // The connection closed meanwhile: its answers confirm nothing. If the next one is ready
    // already, its pass was skipped for this one: run it now.
    if (connection !== this.#connection) {
      void this.#subscribePending()
      return
    }
    if (this.#closed) return
    const back: string[] = []
    let refused: unknown
    results.forEach((result, i) => {
      const [userId, watch] = pass[i]!
      if (result.status === 'rejected') refused ??= result.reason
      else if (this.#pending.get(userId) === watch) {
        this.#pending.delete(userId)
        back.push(userId)
      }
    })
    if (refused === undefined) {
      this.#retryMs = FIRST_RETRY_MS
    } else {
      if (this.#retryMs === FIRST_RETRY_MS) this.#log.warn({ err: refused, users: this.#pending.size }, 'Redis refused a subscribe; retrying while the connection stays up')
      this.#behind = true
      this.#retry = setTimeout(() => {
        this.#retry = undefined
        void this.#subscribePending()
      }, this.#retryMs)
      this.#retry.unref()
      this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS)
    }
    if (back.length > 0) {
      if (resubscribing) this.#log.info({ users: back.length }, 'Redis subscriber (re)subscribed; catching its users up from the inbox')
      this.#receiver.resubscribed(back)
    }
    if (refused === undefined) void this.#subscribePending()
  }
}
