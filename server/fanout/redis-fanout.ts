import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { connectRedis, quitRedis } from '../redis-connection.js'
import type { Fanout, FanoutMessage, FanoutReceiver } from './types.js'

export const CHANNEL_PREFIX = 'notify:user:'
/** Longer than this and a publish or (un)subscribe is given up on (the frames may be lost: the inbox has them). */
const COMMAND_TIMEOUT_MS = 2000

export interface RedisFanoutOptions {
  /** `redis://` or `rediss://`, as ioredis takes it. */
  url: string
  receiver: FanoutReceiver
  log: Logger
}

/**
 * The fan-out between gateways: one Redis channel per user, subscribed by a gateway only while it
 * holds a socket of that user. Sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7+), one channel per
 * command, so a Redis Cluster routes each user's frames through one shard instead of copying every
 * frame to every node. A batch is published in one pipeline (one round trip).
 *
 * Pub/sub is at-most-once. The subscriber's (re)subscriptions are this class's own, not ioredis's,
 * so it knows when they are active again: then the receiver hears `resubscribed` and catches those
 * users up from the inbox.
 */
export class RedisFanout implements Fanout {
  readonly #receiver: FanoutReceiver
  readonly #log: Logger
  readonly #publisher: Redis
  readonly #subscriber: Redis
  readonly #watched = new Set<string>()
  /** Every watched channel is subscribed on a live connection. */
  #subscribed = false
  #closed = false
  /** Frames received in this tick, delivered together in one microtask (their sockets corked once). */
  #pending: FanoutMessage[] = []
  /** A publish failed and none succeeded since: the next failure is not logged again. */
  #publishFailing = false

  constructor (options: RedisFanoutOptions) {
    this.#receiver = options.receiver
    this.#log = options.log
    const common = { commandTimeout: COMMAND_TIMEOUT_MS }
    // The publisher queues while it (re)connects (ioredis flushes that queue with an error every 20
    // attempts, so it stays bounded): a frame published late is still better than one lost, and a
    // repeat is dropped by the relay. The subscriber does its own subscribing once it is ready.
    this.#publisher = connectRedis(options.url, 'publisher', this.#log, common)
    this.#subscriber = connectRedis(options.url, 'subscriber', this.#log, { ...common, enableOfflineQueue: false, autoResubscribe: false })
    this.#subscriber.on('smessage', (channel: string, payload: string) => this.#receive(channel, payload))
    this.#subscriber.on('ready', () => { void this.#subscribeAll() })
    this.#subscriber.on('close', () => { this.#subscribed = false })
  }

  publish (messages: readonly FanoutMessage[]): Promise<void> {
    if (messages.length === 0 || this.#closed) return Promise.resolve()
    const pipeline = this.#publisher.pipeline()
    for (const message of messages) pipeline.spublish(CHANNEL_PREFIX + message.userId, encodePayload(message))
    return pipeline.exec().then(
      (results) => {
        const failed = results?.find(([error]) => error !== null)?.[0]
        if (failed === undefined || failed === null) this.#publishFailing = false
        else this.#lost(failed, messages.length)
      },
      (error: unknown) => this.#lost(error, messages.length)
    )
  }

  mayReach (): boolean {
    return true
  }

  watch (userId: string): void {
    if (this.#closed || this.#watched.has(userId)) return
    this.#watched.add(userId)
    // Not ready: `#subscribeAll` subscribes it once the connection is.
    if (this.#subscriber.status !== 'ready') return
    this.#subscriber.ssubscribe(CHANNEL_PREFIX + userId).then(
      () => { if (this.#watched.has(userId)) this.#receiver.resubscribed([userId]) },
      (error: unknown) => this.#log.debug({ err: error, userId }, 'Redis SSUBSCRIBE failed; retried when the connection is back')
    )
  }

  unwatch (userId: string): void {
    if (!this.#watched.delete(userId) || this.#closed || this.#subscriber.status !== 'ready') return
    this.#subscriber.sunsubscribe(CHANNEL_PREFIX + userId).catch((error: unknown) => {
      this.#log.debug({ err: error, userId }, 'Redis SUNSUBSCRIBE failed; the channel is dropped with the connection')
    })
  }

  unreadyReasons (): string[] {
    const reasons: string[] = []
    if (this.#subscriber.status !== 'ready') reasons.push(`Redis subscriber not connected (${this.#subscriber.status})`)
    else if (!this.#subscribed) reasons.push('Redis subscriber resubscribing')
    if (this.#publisher.status !== 'ready') reasons.push(`Redis publisher not connected (${this.#publisher.status})`)
    return reasons
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#watched.clear()
    await Promise.all([quitRedis(this.#publisher), quitRedis(this.#subscriber)])
  }

  /** On every (re)connection: subscribe every watched channel, then have their users caught up. */
  async #subscribeAll (): Promise<void> {
    const userIds = [...this.#watched]
    try {
      await Promise.all(userIds.map(async (userId) => await this.#subscriber.ssubscribe(CHANNEL_PREFIX + userId)))
    } catch (error) {
      this.#log.warn({ err: error }, 'Redis resubscribe failed; retried when the connection is back')
      return
    }
    if (this.#closed || this.#subscriber.status !== 'ready') return
    this.#subscribed = true
    this.#log.info({ users: userIds.length }, 'Redis subscriber (re)subscribed; catching its users up from the inbox')
    this.#receiver.resubscribed(userIds.filter((userId) => this.#watched.has(userId)))
  }

  #receive (channel: string, payload: string): void {
    const userId = channel.slice(CHANNEL_PREFIX.length)
    if (!this.#watched.has(userId)) return // unwatched while the message was on its way
    const message = decodePayload(userId, payload)
    if (message === undefined) {
      this.#log.warn({ channel }, 'Redis fan-out message without a header line; dropped')
      return
    }
    this.#pending.push(message)
    if (this.#pending.length === 1) queueMicrotask(this.#flush)
  }

  readonly #flush = (): void => {
    const messages = this.#pending
    this.#pending = []
    this.#receiver.batch(() => {
      for (const message of messages) this.#receiver.deliver(message)
    })
  }

  #lost (error: unknown, frames: number): void {
    if (this.#publishFailing) return
    this.#publishFailing = true
    this.#log.warn({ err: error, frames }, 'Redis publish failed: frames may be lost until one succeeds again (clients catch up from the inbox)')
  }
}

/**
 * `<seq> <timestamp>\n<frame text>` for a notification, `\n<frame text>` for any other frame:
 * the frame's JSON goes as it is, never parsed or wrapped again.
 */
export function encodePayload (message: FanoutMessage): string {
  if (message.seq === undefined) return `\n${message.text}`
  return `${message.seq} ${message.timestamp ?? ''}\n${message.text}`
}

/** The message of a payload from `encodePayload`; undefined when it is not one. */
export function decodePayload (userId: string, payload: string): FanoutMessage | undefined {
  const newline = payload.indexOf('\n')
  if (newline === -1) return undefined
  const text = payload.slice(newline + 1)
  if (newline === 0) return { userId, text }
  const space = payload.indexOf(' ')
  const seq = Number(payload.slice(0, space === -1 || space > newline ? newline : space))
  if (!Number.isSafeInteger(seq) || seq < 1) return undefined
  const timestamp = space === -1 || space > newline ? NaN : Number(payload.slice(space + 1, newline))
  return Number.isFinite(timestamp) && space + 1 < newline ? { userId, text, seq, timestamp } : { userId, text, seq }
}
