import { LRUCache } from 'lru-cache'
import type { Notification } from '../notification.js'
import type { Idempotency, KeyedAttempt } from './types.js'

export interface IdempotencyOptions {
  /** How long a key is remembered from its first request. */
  ttlMs: number
  /** All keys together, in estimated bytes (default 64 MiB); past it, the least recently used go. */
  maxBytes?: number
  /**
   * One user's keys, in estimated bytes (default 1 MiB, about 2,400 keys); past it, that user's own
   * oldest settled key goes, so nobody can push everyone else's keys out.
   */
  maxBytesPerUser?: number
  /** A ceiling on the number of keys whatever their size (default 200,000). */
  maxEntries?: number
  /** The clock for the TTL, in milliseconds (tests pass a fake one). */
  now?: () => number
}

interface Entry {
  fingerprint: string
  notification: Notification
  publishing: Promise<void>
  /** A key still publishing is never evicted: a retry with it must not produce a second notification. */
  state: 'publishing' | 'accepted' | 'failed'
  /** Whose share the entry counts against. */
  owner: string
  bytes: number
}

/** A user's keys, oldest first, and their estimated size. */
interface Share {
  bytes: number
  ids: Set<string>
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024
const DEFAULT_MAX_BYTES_PER_USER = 1024 * 1024
const DEFAULT_MAX_ENTRIES = 200_000
/** The entry object, its promise, the cache's and the share's bookkeeping, beyond the strings. */
const ENTRY_OVERHEAD_BYTES = 400

/**
 * `Idempotency-Key`s kept in this process's memory: one gateway's worth (without REDIS_URL),
 * bounded in bytes overall and per user, and in time.
 */
export class MemoryIdempotency implements Idempotency {
  readonly #entries: LRUCache<string, Entry>
  readonly #shares = new Map<string, Share>()
  readonly #maxBytesPerUser: number

  constructor (options: IdempotencyOptions) {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    this.#maxBytesPerUser = Math.min(options.maxBytesPerUser ?? DEFAULT_MAX_BYTES_PER_USER, maxBytes)
    this.#entries = new LRUCache<string, Entry>({
      max: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
      maxSize: maxBytes,
      ttl: options.ttlMs,
      // The clock is read on every lookup: a cached reading would let a key outlive its TTL.
      ttlResolution: 0,
      ...(options.now === undefined ? {} : { perf: { now: options.now } }),
      dispose: (entry, id) => this.#forget(entry, id)
    })
  }

  run (userId: string, key: string, fingerprint: string, create: () => Notification, publish: (notification: Notification) => Promise<void>, owner = userId): KeyedAttempt {
    const id = `${userId}\u0000${key}`
    const entry = this.#entries.get(id)
    if (entry === undefined) {
      const notification = create()
      const fresh: Entry = { fingerprint, notification, publishing: Promise.resolve(), state: 'publishing', owner, bytes: entryBytes(id, fingerprint, notification) }
      if (!this.#remember(id, fresh)) return { kind: 'full' }
      this.#publish(fresh, publish)
      return { kind: 'new', notification, publishing: fresh.publishing }
    }
    if (entry.fingerprint !== fingerprint) return { kind: 'conflict' }
    if (entry.state !== 'failed') return { kind: 'duplicate', notification: entry.notification, publishing: entry.publishing }
    this.#publish(entry, publish)
    return { kind: 'retry', notification: entry.notification, publishing: entry.publishing }
  }

  /** Keys held, including expired ones not dropped yet. */
  get size (): number {
    return this.#entries.size
  }

  /** Estimated bytes of the keys held. */
  get bytes (): number {
    return this.#entries.calculatedSize
  }

  /** Estimated bytes of one owner's keys. */
  bytesOf (owner: string): number {
    return this.#shares.get(owner)?.bytes ?? 0
  }

  #publish (entry: Entry, publish: (notification: Notification) => Promise<void>): void {
    entry.state = 'publishing'
    entry.publishing = publish(entry.notification)
    entry.publishing.then(() => { entry.state = 'accepted' }, () => { entry.state = 'failed' })
  }

  /**
   * Makes room in the owner's share, oldest accepted keys first, then oldest failed ones (whose
   * retry would be a new notification), never a key still publishing; false when there is none.
   */
  #remember (id: string, entry: Entry): boolean {
    const share = this.#shares.get(entry.owner)
    if (share !== undefined) {
      for (const evictable of ['accepted', 'failed'] as const) {
        for (const oldest of share.ids) {
          if (share.bytes + entry.bytes <= this.#maxBytesPerUser) break
          if (this.#entries.peek(oldest, { allowStale: true })?.state === evictable) this.#entries.delete(oldest)
        }
      }
      if (share.bytes + entry.bytes > this.#maxBytesPerUser) return false
    }
    let current = this.#shares.get(entry.owner)
    if (current === undefined) {
      current = { bytes: 0, ids: new Set() }
      this.#shares.set(entry.owner, current)
    }
    current.ids.add(id)
    current.bytes += entry.bytes
    this.#entries.set(id, entry, { size: entry.bytes })
    return true
  }

  /** Called by the cache for every entry that leaves it: evicted, expired or deleted. */
  #forget (entry: Entry, id: string): void {
    const share = this.#shares.get(entry.owner)
    if (share?.ids.delete(id) !== true) return
    share.bytes -= entry.bytes
    if (share.ids.size === 0) this.#shares.delete(entry.owner)
  }
}

function entryBytes (id: string, fingerprint: string, notification: Notification): number {
  return Buffer.byteLength(id) + Buffer.byteLength(fingerprint) + Buffer.byteLength(JSON.stringify(notification)) + ENTRY_OVERHEAD_BYTES
}
