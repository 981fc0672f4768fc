import { LRUCache } from 'lru-cache'
import type { Clock } from '../clock.js'
import type { Idempotency, KeyedAttempt, RunOptions } from './types.js'

export interface IdempotencyOptions {
  /** How long a key is remembered from its first request. */
  ttlMs: number
  /**
   * All keys together, in estimated bytes (default 64 MiB). Past it, room is made in the largest
   * share (see below), never in a smaller one: many busy callers together cannot push out a quiet
   * caller's keys either.
   */
  maxBytes?: number
  /**
   * One caller's keys, in estimated bytes (default 1 MiB, about 2,400 keys); past it, that
   * caller's own oldest settled key goes.
   */
  maxBytesPerUser?: number
  /** A ceiling on the number of keys whatever their size (default 200,000), kept like `maxBytes`. */
  maxEntries?: number
  /** What the TTL is measured on (lru-cache's own monotonic clock when absent). */
  clock?: Clock
}

interface Entry {
  fingerprint: string
  value: unknown
  publishing: Promise<void>
  /** A key still publishing is never evicted: a retry with it must not produce a second notification. */
  state: 'publishing' | 'accepted' | 'failed'
  /** Whose share the entry counts against. */
  owner: string
  bytes: number
}

/** An owner's keys, oldest first, and their estimated size. */
interface Share {
  bytes: number
  ids: Set<string>
  /** Whose share it is. */
  keysOf: string
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024
const DEFAULT_MAX_BYTES_PER_USER = 1024 * 1024
const DEFAULT_MAX_ENTRIES = 200_000
/** The entry object, its promise, the cache's and the share's bookkeeping, beyond the strings. */
const ENTRY_OVERHEAD_BYTES = 400

/**
 * `Idempotency-Key`s kept in this process's memory: one gateway's worth (without REDIS_URL),
 * bounded in bytes overall and per caller, and in time.
 */
export class MemoryIdempotency implements Idempotency {
  readonly #entries: LRUCache<string, Entry>
  readonly #shares = new Map<string, Share>()
  /** The owners by how many keys their share holds, to find the largest share at once. */
  readonly #ownersByCount = new Map<number, Set<string>>()
  #mostKeys = 0
  /** Estimated bytes of every key held. */
  #used = 0
  readonly #maxBytes: number
  readonly #maxEntries: number
  readonly #maxBytesPerUser: number

  constructor (options: IdempotencyOptions) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
    this.#maxBytesPerUser = Math.min(options.maxBytesPerUser ?? DEFAULT_MAX_BYTES_PER_USER, this.#maxBytes)
    this.#entries = new LRUCache<string, Entry>({
      // Never reached: #remember makes room first, in the largest share (the cache's own eviction
      // would take the least recently used key, anyone's).
      max: this.#maxEntries + 1,
      ttl: options.ttlMs,
      // The clock is read on every lookup: a cached reading would let a key outlive its TTL.
      ttlResolution: 0,
      ...(options.clock === undefined ? {} : { perf: options.clock }),
      dispose: (entry, id) => this.#forget(entry, id)
    })
  }

  /** Answers at once: nothing here waits, so the request's deadline needs no check. */
  run<T> (userId: string, key: string, fingerprint: string, create: () => T, publish: (value: T) => Promise<void>, { owner = userId }: RunOptions = {}): KeyedAttempt<T> {
    const id = `${userId}\u0000${key}`
    const entry = this.#entries.get(id)
    if (entry === undefined) {
      const value = create()
      const fresh: Entry = { fingerprint, value, publishing: Promise.resolve(), state: 'publishing', owner, bytes: entryBytes(id, fingerprint, value) }
      if (!this.#remember(id, fresh)) return { kind: 'full' }
      this.#publish(fresh, publish)
      return { kind: 'new', value, publishing: fresh.publishing }
    }
    if (entry.fingerprint !== fingerprint) return { kind: 'conflict' }
    // The same fingerprint means the same route made it: a value of the caller's type.
    const value = entry.value as T
    if (entry.state !== 'failed') return { kind: 'duplicate', value, publishing: entry.publishing }
    this.#publish(entry, publish)
    return { kind: 'retry', value, publishing: entry.publishing }
  }

  /** Keys held, including expired ones not dropped yet. */
  get size (): number {
    return this.#entries.size
  }

  /** Estimated bytes of the keys held. */
  get bytes (): number {
    return this.#used
  }

  /** Estimated bytes of one owner's keys. */
  bytesOf (owner: string): number {
    return this.#shares.get(owner)?.bytes ?? 0
  }

  #publish<T> (entry: Entry, publish: (value: T) => Promise<void>): void {
    entry.state = 'publishing'
    entry.publishing = publish(entry.value as T)
    entry.publishing.then(() => { entry.state = 'accepted' }, () => { entry.state = 'failed' })
  }

  /**
   * Makes room for the entry: first in its owner's share, then, past the overall bounds, in the
   * largest shares, one key at a time. Either way a share gives up its oldest accepted keys first,
   * then its oldest failed ones (whose retry would be a new notification), never a key still
   * publishing; false when there is no such room.
   */
  #remember (id: string, entry: Entry): boolean {
    const share = this.#shares.get(entry.owner)
    if (share !== undefined) {
      this.#evictFrom(share, () => share.bytes + entry.bytes <= this.#maxBytesPerUser)
      if (share.bytes + entry.bytes > this.#maxBytesPerUser) return false
    }
    if (!this.#makeRoom(entry.bytes)) return false
    let current = this.#shares.get(entry.owner)
    if (current === undefined) {
      current = { bytes: 0, ids: new Set(), keysOf: entry.owner }
      this.#shares.set(entry.owner, current)
    }
    this.#count(current, () => current.ids.add(id))
    current.bytes += entry.bytes
    this.#used += entry.bytes
    this.#entries.set(id, entry)
    return true
  }

  /** Evicts from the largest shares until `bytes` more fit the overall bounds; false if it cannot. */
  #makeRoom (bytes: number): boolean {
    const fits = (): boolean => this.#entries.size < this.#maxEntries && this.#used + bytes <= this.#maxBytes
    while (!fits()) {
      let evicted = false
      for (let count = this.#mostKeys; count > 0 && !evicted; count--) {
        for (const owner of this.#ownersByCount.get(count) ?? []) {
          const share = this.#shares.get(owner)!
          const before = share.ids.size
          this.#evictFrom(share, () => share.ids.size < before)
          evicted = share.ids.size < before
          if (evicted) break
        }
      }
      if (!evicted) return false
    }
    return true
  }

  /** Evicts the share's oldest accepted keys, then its oldest failed ones, until `done()`. */
  #evictFrom (share: Share, done: () => boolean): void {
    for (const evictable of ['accepted', 'failed'] as const) {
      for (const oldest of share.ids) {
        if (done()) return
        if (this.#entries.peek(oldest, { allowStale: true })?.state === evictable) this.#entries.delete(oldest)
      }
    }
  }

  /** Called by the cache for every entry that leaves it: evicted, expired or deleted. */
  #forget (entry: Entry, id: string): void {
    const share = this.#shares.get(entry.owner)
    if (share === undefined || !share.ids.has(id)) return
    this.#count(share, () => share.ids.delete(id))
    share.bytes -= entry.bytes
    this.#used -= entry.bytes
    if (share.ids.size === 0) this.#shares.delete(entry.owner)
  }

  /** Runs `change` on the share's keys, keeping #ownersByCount and #mostKeys in step. */
  #count (share: Share, change: () => unknown): void {
    const from = share.ids.size
    change()
    const to = share.ids.size
    const owners = this.#ownersByCount.get(from)
    owners?.delete(share.keysOf)
    if (owners?.size === 0) this.#ownersByCount.delete(from)
    if (to > 0) {
      let next = this.#ownersByCount.get(to)
      if (next === undefined) this.#ownersByCount.set(to, next = new Set())
      next.add(share.keysOf)
    }
    this.#mostKeys = Math.max(this.#mostKeys, to)
    while (this.#mostKeys > 0 && !this.#ownersByCount.has(this.#mostKeys)) this.#mostKeys--
  }
}

function entryBytes (id: string, fingerprint: string, value: unknown): number {
  return Buffer.byteLength(id) + Buffer.byteLength(fingerprint) + Buffer.byteLength(JSON.stringify(value)) + ENTRY_OVERHEAD_BYTES
}
