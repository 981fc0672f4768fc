import type { Logger } from '../logger.js'
import { connectCluster, connectRedis, connectServer, quitRedis, type RedisClient } from '../redis-connection.js'
import { ServerSubscriptions } from './server-subscriptions.js'
import { ShardSubscriptions } from './shard-subscriptions.js'
import { CHANNEL_PREFIX, channelOf, type Subscriptions } from './subscriptions.js'
import type { Fanout, FanoutMessage, FanoutReceiver } from './types.js'

export { CHANNEL_PREFIX }
/** Longer than this and a publish or (un)subscribe is given up on (the frames may be lost: the inbox has them). */
const COMMAND_TIMEOUT_MS = 2000

export interface RedisFanoutOptions {
  /** `redis://` or `rediss://`, as ioredis takes it; with `cluster`, the comma-separated seed nodes. */
  url: string
  /** `url` is a Redis Cluster (REDIS_CLUSTER). */
  cluster?: boolean
  receiver: FanoutReceiver
  log: Logger
}

/**
 * The fan-out between gateways: one Redis channel per user, subscribed by a gateway only while it
 * holds a socket of that user. Sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7+), one channel per
 * command, so a Redis Cluster routes each user's frames through one shard instead of copying every
 * frame to every node. On one server a batch is published in one pipeline (one round trip); on a
 * cluster a pipeline cannot span slots, so each frame is its own SPUBLISH and ioredis's
 * auto-pipelining groups those of one tick into one pipeline per node (one user's frames go to one
 * node, in order).
 *
 * Pub/sub is at-most-once. The subscriptions (server-subscriptions.ts, shard-subscriptions.ts) know
 * when a user's channel is active again after a lost connection: then the receiver hears
 * `resubscribed` and catches those users up from the inbox.
 */
export class RedisFanout implements Fanout {
  readonly #receiver: FanoutReceiver
  readonly #log: Logger
  readonly #cluster: boolean
  readonly #publisher: RedisClient
  readonly #subscriptions: Subscriptions
  #closed = false
  /** Frames received in this tick, delivered together in one microtask (their sockets corked once). */
  #pending: FanoutMessage[] = []
  /** A publish failed and none succeeded since: the next failure is not logged again. */
  #publishFailing = false

  constructor (options: RedisFanoutOptions) {
    this.#receiver = options.receiver
    this.#log = options.log
    this.#cluster = options.cluster ?? false
    const common = { commandTimeout: COMMAND_TIMEOUT_MS }
    // The publisher queues while it (re)connects (ioredis flushes that queue with an error every 20
    // attempts, so it stays bounded; a cluster client never queues): a frame published late is
    // still better than one lost, and a repeat is dropped by the relay. The subscriber does its own
    // subscribing once it is ready.
    this.#publisher = connectRedis({ url: options.url, cluster: this.#cluster }, 'publisher', this.#log, { ...common, enableAutoPipelining: this.#cluster })
    const subscriptions = { receiver: this.#receiver, log: this.#log, onMessage: (channel: string, payload: string) => this.#receive(channel, payload) }
    this.#subscriptions = this.#cluster
      ? new ShardSubscriptions(connectCluster(options.url, 'subscriber', this.#log, { ...common, shardedSubscribers: true }), subscriptions)
      : new ServerSubscriptions(connectServer(options.url, 'subscriber', this.#log, { ...common, enableOfflineQueue: false, autoResubscribe: false }), subscriptions)
  }

  publish (messages: readonly FanoutMessage[]): Promise<boolean> {
    if (messages.length === 0) return Promise.resolve(true)
    if (this.#closed) return Promise.resolve(false)
    return this.#send(messages).then((failure) => {
      if (failure === undefined) {
        this.#publishFailing = false
        return true
      }
      this.#lost(failure, messages.length)
      return false
    })
  }

  /** Sends the frames; resolves with the first failure, or undefined when Redis took them all. */
  #send (messages: readonly FanoutMessage[]): Promise<unknown> {
    if (this.#cluster) {
      return Promise.allSettled(messages.map((message) => this.#publisher.spublish(channelOf(message.userId), encodePayload(message))))
        .then((results) => results.find((result) => result.status === 'rejected')?.reason)
    }
    const pipeline = this.#publisher.pipeline()
    for (const message of messages) pipeline.spublish(channelOf(message.userId), encodePayload(message))
    return pipeline.exec().then(
      (results) => results?.find(([error]) => error !== null)?.[0] ?? undefined,
      (error: unknown) => error ?? new Error('the pipeline failed')
    )
  }

  mayReach (): boolean {
    return true
  }

  watch (userId: string): void {
    if (this.#closed || this.#subscriptions.has(userId)) return
    this.#subscriptions.add(userId)
  }

  unwatch (userId: string): void {
    this.#subscriptions.remove(userId)
  }

  unreadyReasons (): string[] {
    const reasons = this.#subscriptions.unreadyReasons()
    if (this.#publisher.status !== 'ready') reasons.push(`Redis publisher not connected (${this.#publisher.status})`)
    return reasons
  }

  async close (): Promise<void> {
    this.#closed = true
    await Promise.all([quitRedis(this.#publisher), this.#subscriptions.close()])
  }

  #receive (channel: string, payload: string): void {
    const userId = channel.slice(CHANNEL_PREFIX.length)
    if (!this.#subscriptions.has(userId)) return // unwatched while the message was on its way
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
    this.#receiver.corked(() => {
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
