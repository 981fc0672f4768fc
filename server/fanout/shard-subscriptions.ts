import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { quitRedis } from '../redis-connection.js'
import type { FanoutReceiver } from './types.js'
import { channelOf, type Subscriptions, type SubscriptionsOptions } from './subscriptions.js'
import type { Unready } from '../lifecycle.js'

/** While some watched users are not subscribed, they are tried again this often (and at every topology event). */
const RETRY_MS = 1000

/**
 * The subscriptions on a Redis Cluster client with `shardedSubscribers`: ioredis keeps one
 * subscriber connection per shard, sends each SSUBSCRIBE to the shard owning the channel's slot,
 * and resubscribes a shard's channels itself when it replaces that shard's connection (it never
 * says when those are confirmed). So this class tracks, per watched user, the node its
 * subscription was confirmed on. A user lapses when that node's subscriber connection ends, when
 * the whole cluster connection closes, or when a topology change gives the slot to another node;
 * once ioredis reports its subscribers ready again, each lapsed user is subscribed again here,
 * confirmed, and reported to the receiver (caught up from the inbox). Users of healthy shards are
 * left alone: a shard down for minutes does not replay everyone else's tabs every retry.
 */
export class ShardSubscriptions implements Subscriptions {
  readonly #cluster: Cluster
  readonly #receiver: FanoutReceiver
  readonly #log: Logger
  readonly #watched = new Set<string>()
  /** Watched users whose subscription is confirmed, and the node (`host:port`) that holds it. */
  readonly #active = new Map<string, string>()
  /** Watched users whose subscription may have missed frames and is not confirmed again yet. */
  readonly #lapsed = new Set<string>()
  /** Users unwatched while the cluster was down: ioredis still lists their channels, to resubscribe them. */
  readonly #stale = new Set<string>()
  #resyncing = false
  #retry: NodeJS.Timeout | undefined
  #closed = false

  constructor (cluster: Cluster, options: SubscriptionsOptions) {
    this.#cluster = cluster
    this.#receiver = options.receiver
    this.#log = options.log
    cluster.on('smessage', options.onMessage)
    // With a node key: a shard's subscriber connection ended. Without: the pool dropped a node's
    // command connection (that node is down or left the cluster).
    cluster.on('-node', (redis: Redis | undefined, nodeKey?: string) => {
      this.#lost(nodeKey ?? (redis === undefined ? undefined : `${redis.options.host ?? ''}:${redis.options.port ?? ''}`))
    })
    cluster.on('close', () => this.#lost(undefined))
    cluster.on('ready', () => { void this.#resync() })
    cluster.on('subscribersReady', () => { void this.#resync() })
  }

  has (userId: string): boolean {
    return this.#watched.has(userId)
  }

  add (userId: string): void {
    this.#watched.add(userId)
    this.#stale.delete(userId)
    if (this.#cluster.status !== 'ready') {
      this.#lapsed.add(userId)
      return
    }
    const node = this.#ownerOf(userId)
    this.#cluster.ssubscribe(channelOf(userId)).then(
      () => {
        // Lapsed meanwhile: the resync reports it.
        if (this.#watched.has(userId) && !this.#lapsed.has(userId) && this.#confirmed(userId, node)) this.#receiver.resubscribed([userId])
      },
      (error: unknown) => {
        this.#log.debug({ err: error, userId }, 'Redis SSUBSCRIBE failed; retried')
        if (!this.#watched.has(userId)) return
        this.#lapsed.add(userId)
        this.#scheduleRetry()
      }
    )
  }

  remove (userId: string): void {
    if (!this.#watched.delete(userId) || this.#closed) return
    this.#active.delete(userId)
    this.#lapsed.delete(userId)
    this.#unsubscribe(userId)
  }

  unreadyReasons (): Unready[] {
    if (this.#cluster.status !== 'ready') return [{ reason: 'Redis Cluster subscriber not connected', detail: this.#cluster.status }]
    if (this.#lapsed.size === 0) return []
    const nodes = new Set([...this.#lapsed].map((userId) => this.#ownerOf(userId) ?? 'no node for the slot'))
    return [{ reason: 'Redis shard subscriber not connected or resubscribing', detail: `${[...nodes].sort().join(', ')}: ${this.#lapsed.size} watched users` }]
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    this.#watched.clear()
    this.#active.clear()
    this.#lapsed.clear()
    await quitRedis(this.#cluster)
  }

  /** The users confirmed on `nodeKey` (every node when undefined) lapse. */
  #lost (nodeKey: string | undefined): void {
    for (const [userId, node] of this.#active) {
      if (nodeKey !== undefined && node !== nodeKey) continue
      this.#active.delete(userId)
      this.#lapsed.add(userId)
    }
  }

  /** Subscribes every lapsed user again and reports those confirmed; one pass at a time. */
  async #resync (): Promise<void> {
    if (this.#closed || this.#cluster.status !== 'ready') return
    if (this.#resyncing) {
      this.#scheduleRetry() // the event may have lapsed users this pass already read
      return
    }
    this.#resyncing = true
    try {
      // A topology change gives slots to other nodes: a subscription there is a new one.
      for (const [userId, node] of this.#active) {
        if (this.#ownerOf(userId) === node) continue
        this.#active.delete(userId)
        this.#lapsed.add(userId)
      }
      for (const userId of this.#stale) this.#unsubscribe(userId)
      const back = (await Promise.all([...this.#lapsed].map(async (userId) => await this.#subscribeAgain(userId) ? userId : undefined)))
        .filter((userId) => userId !== undefined)
      if (back.length > 0) {
        this.#log.info({ users: back.length }, 'Redis shard subscribers (re)subscribed; catching their users up from the inbox')
        this.#receiver.resubscribed(back)
      }
    } finally {
      this.#resyncing = false
    }
    if (this.#lapsed.size > 0) this.#scheduleRetry()
  }

  /**
   * SUNSUBSCRIBE, then SSUBSCRIBE, on the shard's connection (sent together, answered in order):
   * ioredis lists a channel once per SSUBSCRIBE and resubscribes that list whenever it replaces a
   * connection, so subscribing again without the first would grow the list at every reconnect.
   * True once the subscription is confirmed for a user still watched.
   */
  async #subscribeAgain (userId: string): Promise<boolean> {
    const node = this.#ownerOf(userId)
    try {
      await Promise.all([this.#cluster.sunsubscribe(channelOf(userId)), this.#cluster.ssubscribe(channelOf(userId))])
    } catch (error) {
      this.#log.debug({ err: error, userId }, 'Redis SSUBSCRIBE failed; retried')
      return false
    }
    return this.#watched.has(userId) && this.#lapsed.has(userId) && this.#confirmed(userId, node)
  }

  /** Records the node of a confirmed subscription; false (and lapsed, tried again) when no node owned the slot. */
  #confirmed (userId: string, node: string | undefined): boolean {
    if (node === undefined) {
      this.#lapsed.add(userId)
      this.#scheduleRetry()
      return false
    }
    this.#lapsed.delete(userId)
    this.#active.set(userId, node)
    return true
  }

  #unsubscribe (userId: string): void {
    if (this.#cluster.status !== 'ready') {
      this.#stale.add(userId)
      return
    }
    this.#stale.delete(userId)
    this.#cluster.sunsubscribe(channelOf(userId)).catch((error: unknown) => {
      this.#log.debug({ err: error, userId }, 'Redis SUNSUBSCRIBE failed; the channel is dropped with the connection')
    })
  }

  #ownerOf (userId: string): string | undefined {
    return this.#cluster.slots[calculateSlot(channelOf(userId))]?.[0]
  }

  #scheduleRetry (): void {
    if (this.#retry !== undefined || this.#closed) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      void this.#resync()
    }, RETRY_MS)
    this.#retry.unref()
  }
}
