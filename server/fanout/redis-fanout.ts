import type { Logger } from '../logger.js'
import { connectCluster, connectServer, quitRedis, watchLink, type LinkWatch, type RedisClient } from '../redis-connection.js'
import { ServerSubscriptions } from './server-subscriptions.js'
import { ShardSubscriptions } from './shard-subscriptions.js'
import { CHANNEL_PREFIX, channelOf, type Subscriptions } from './subscriptions.js'
import type { Fanout, FanoutMessage, FanoutReceiver } from './types.js'
import type { Unready } from '../lifecycle.js'

export { CHANNEL_PREFIX }
/** Longer than this and a publish or (un)subscribe is given up on (the frames may be lost: the inbox has them). */
const COMMAND_TIMEOUT_MS = 2000
/**
 * Publishes this large (their payloads, in bytes) may wait for Redis at once; past it a batch is
 * dropped rather than queued, and its users' tails are repaired from the inbox once Redis answers.
 */
const MAX_PENDING_PUBLISH_BYTES = 16 * 1024 * 1024

/** Why frames were lost on their way to Redis: the pending publishes were past their bound, or Redis did not take them. */
export type LostWhy = 'queue_full' | 'failed'

/** What the Redis fan-out reports, for metrics. */
export interface RedisFanoutObserver {
  /** Frames that may not have reached Redis. */
  lost (why: LostWhy, frames: number): void
  /** A connection (`publisher` or `subscriber`) was dropped and reopened after a ping went unanswered. */
  linkReset (role: string): void
}

export interface RedisFanoutOptions {
  /** `redis://` or `rediss://`, as ioredis takes it; with `cluster`, the comma-separated seed nodes. */
  url: string
  /** `url` is a Redis Cluster (REDIS_CLUSTER). */
  cluster?: boolean
  receiver: FanoutReceiver
  log: Logger
  observer?: RedisFanoutObserver
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
 * `resubscribed` and catches those users up from the inbox. On one server both connections are
 * pinged (redis-connection.ts's `watchLink`), so a link that went silent without closing is
 * dropped and reopened within seconds, not when TCP gives up.
 */
export class RedisFanout implements Fanout {
  readonly #receiver: FanoutReceiver
  readonly #log: Logger
  readonly #cluster: boolean
  readonly #publisher: RedisClient
  readonly #subscriptions: Subscriptions
  readonly #observer: RedisFanoutObserver | undefined
  /** The liveness checks of the single-server connections (none on a cluster). */
  readonly #links: LinkWatch[] = []
  /** Payload bytes of the publishes waiting for Redis. */
  #pendingBytes = 0
  #closed = false
  /** Frames received in this tick, delivered together in one microtask (their sockets corked once). */
  #pending: FanoutMessage[] = []
  /** A publish failed and none succeeded since: the next failure is not logged again. */
  #publishFailing = false

  constructor (options: RedisFanoutOptions) {
    this.#receiver = options.receiver
    this.#log = options.log
    this.#observer = options.observer
    this.#cluster = options.cluster ?? false
    const common = { commandTimeout: COMMAND_TIMEOUT_MS }
    // The publisher queues while it (re)connects, within MAX_PENDING_PUBLISH_BYTES and
    // COMMAND_TIMEOUT_MS (a cluster client never queues): a frame published late is still better
    // than one lost, and a repeat is dropped by the relay. The subscriber does its own subscribing
    // once it is ready.
    const subscriptions = { receiver: this.#receiver, log: this.#log, onMessage: (channel: string, payload: string) => this.#receive(channel, payload) }
    if (this.#cluster) {
      this.#publisher = connectCluster(options.url, 'publisher', this.#log, { ...common, enableAutoPipelining: true })
      this.#subscriptions = new ShardSubscriptions(connectCluster(options.url, 'subscriber', this.#log, { ...common, shardedSubscribers: true }), subscriptions)
      return
    }
    const publisher = connectServer(options.url, 'publisher', this.#log, common)
    const subscriber = connectServer(options.url, 'subscriber', this.#log, { ...common, enableOfflineQueue: false, autoResubscribe: false })
    this.#publisher = publisher
    this.#subscriptions = new ServerSubscriptions(subscriber, subscriptions)
    for (const [role, client] of [['publisher', publisher], ['subscriber', subscriber]] as const) {
      this.#links.push(watchLink(client, role, this.#log, () => this.#observer?.linkReset(role)))
    }
  }

  publish (messages: readonly FanoutMessage[]): Promise<boolean> {
    if (messages.length === 0) return Promise.resolve(true)
    if (this.#closed) return Promise.resolve(false)
    const payloads = messages.map(encodePayload)
    const bytes = payloads.reduce((sum, payload) => sum + Buffer.byteLength(payload), 0)
    // One batch however large may go while nothing waits: the bound is on a backlog, not a burst.
    if (this.#pendingBytes > 0 && this.#pendingBytes + bytes > MAX_PENDING_PUBLISH_BYTES) {
      this.#observer?.lost('queue_full', messages.length)
      this.#lost(new Error(`more than ${MAX_PENDING_PUBLISH_BYTES} bytes of publishes wait for Redis`), messages.length)
      return Promise.resolve(false)
    }
    this.#pendingBytes += bytes
    return this.#send(messages, payloads).then((failure) => {
      this.#pendingBytes -= bytes
      if (failure === undefined) {
        this.#publishFailing = false
        return true
      }
      this.#observer?.lost('failed', messages.length)
      this.#lost(failure, messages.length)
      return false
    })
  }

  /** Sends the payloads; resolves with the first failure, or undefined when Redis took them all. */
  #send (messages: readonly FanoutMessage[], payloads: string[]): Promise<unknown> {
    if (this.#cluster) {
      return Promise.allSettled(messages.map((message, i) => this.#publisher.spublish(channelOf(message.userId), payloads[i]!)))
        .then((results) => results.find((result) => result.status === 'rejected')?.reason)
    }
    const pipeline = this.#publisher.pipeline()
    messages.forEach((message, i) => pipeline.spublish(channelOf(message.userId), payloads[i]!))
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

  unreadyReasons (): Unready[] {
    const reasons: Unready[] = this.#links.flatMap((link) => {
      const reason = link.unreadyReason()
      return reason === undefined ? [] : [{ reason }]
    })
    reasons.push(...this.#subscriptions.unreadyReasons())
    if (this.#publisher.status !== 'ready') reasons.push({ reason: 'Redis publisher not connected', detail: this.#publisher.status })
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
 * `<seq> <timestamp> <rev> <n|s>\n<frame text>` for a notification (`n`) or a state change (`s`),
 * `\n<frame text>` for any other frame: the frame's JSON goes as it is, never parsed or wrapped
 * again. A payload of before revs (`<seq> <timestamp>\n`) still decodes, as a notification.
 */
export function encodePayload (message: FanoutMessage): string {
  if (message.seq === undefined) return `\n${message.text}`
  return `${message.seq} ${message.timestamp ?? ''} ${message.rev ?? ''} ${message.state === true ? 's' : 'n'}\n${message.text}`
}

/** The message of a payload from `encodePayload`; undefined when it is not one. */
export function decodePayload (userId: string, payload: string): FanoutMessage | undefined {
  const newline = payload.indexOf('\n')
  if (newline === -1) return undefined
  const text = payload.slice(newline + 1)
  if (newline === 0) return { userId, text }
  const [seqField, timestampField = '', revField = '', kind = 'n'] = payload.slice(0, newline).split(' ')
  const seq = Number(seqField)
  if (!Number.isSafeInteger(seq) || seq < 0 || (seq === 0 && kind !== 's')) return undefined
  const message: FanoutMessage = { userId, text, seq }
  const timestamp = Number(timestampField)
  if (timestampField !== '' && Number.isFinite(timestamp)) message.timestamp = timestamp
  const rev = Number(revField)
  if (revField !== '' && Number.isSafeInteger(rev)) message.rev = rev
  if (kind === 's') message.state = true
  return message
}
