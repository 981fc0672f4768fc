import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { quitRedis } from '../redis-connection.js'
import type { FanoutReceiver } from './types.js'
import { channelOf, type Subscriptions, type SubscriptionsOptions } from './subscriptions.js'

/**
 * The subscriptions on one Redis server's connection. They are this class's own, not ioredis's
 * (the connection has `autoResubscribe: false`), so it knows when they are active again: after
 * every (re)connection it subscribes every watched channel, then reports those users.
 */
export class ServerSubscriptions implements Subscriptions {
  readonly #subscriber: Redis
  readonly #receiver: FanoutReceiver
  readonly #log: Logger
  readonly #watched = new Set<string>()
  /** Every watched channel is subscribed on a live connection. */
  #subscribed = false
  #closed = false

  constructor (subscriber: Redis, options: SubscriptionsOptions) {
    this.#subscriber = subscriber
    this.#receiver = options.receiver
    this.#log = options.log
    subscriber.on('smessage', options.onMessage)
    subscriber.on('ready', () => { void this.#subscribeAll() })
    subscriber.on('close', () => { this.#subscribed = false })
  }

  has (userId: string): boolean {
    return this.#watched.has(userId)
  }

  add (userId: string): void {
    this.#watched.add(userId)
    // Not ready: `#subscribeAll` subscribes it once the connection is.
    if (this.#subscriber.status !== 'ready') return
    this.#subscriber.ssubscribe(channelOf(userId)).then(
      () => { if (this.#watched.has(userId)) this.#receiver.resubscribed([userId]) },
      (error: unknown) => this.#log.debug({ err: error, userId }, 'Redis SSUBSCRIBE failed; retried when the connection is back')
    )
  }

  remove (userId: string): void {
    if (!this.#watched.delete(userId) || this.#closed || this.#subscriber.status !== 'ready') return
    this.#subscriber.sunsubscribe(channelOf(userId)).catch((error: unknown) => {
      this.#log.debug({ err: error, userId }, 'Redis SUNSUBSCRIBE failed; the channel is dropped with the connection')
    })
  }

  unreadyReasons (): string[] {
    if (this.#subscriber.status !== 'ready') return [`Redis subscriber not connected (${this.#subscriber.status})`]
    return this.#subscribed ? [] : ['Redis subscriber resubscribing']
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#watched.clear()
    await quitRedis(this.#subscriber)
  }

  /** On every (re)connection: subscribe every watched channel, then have their users caught up. */
  async #subscribeAll (): Promise<void> {
    const userIds = [...this.#watched]
    try {
      await Promise.all(userIds.map(async (userId) => await this.#subscriber.ssubscribe(channelOf(userId))))
    } catch (error) {
      this.#log.warn({ err: error }, 'Redis resubscribe failed; retried when the connection is back')
      return
    }
    if (this.#closed || this.#subscriber.status !== 'ready') return
    this.#subscribed = true
    this.#log.info({ users: userIds.length }, 'Redis subscriber (re)subscribed; catching its users up from the inbox')
    this.#receiver.resubscribed(userIds.filter((userId) => this.#watched.has(userId)))
  }
}
