import type { Logger } from '../logger.js'

export interface PartitionOffset { partition: number, offset: string }

export interface OffsetCommitterOptions {
  /** Sends the offsets to the group coordinator. */
  commit: (offsets: PartitionOffset[]) => Promise<void>
  /** Makes everything handled so far durable (the inbox's fsync) before its offsets are committed. */
  beforeCommit: () => Promise<void>
  intervalMs: number
}

/**
 * Commits the offsets of handled records on a timer instead of after every batch: a commit per
 * batch put a round trip to the coordinator, and an fsync, in front of every next fetch. What is
 * handled but not yet committed when the process dies is consumed again, and the inbox, idempotent
 * on the notification id, drops the duplicates.
 */
export class OffsetCommitter {
  readonly #options: OffsetCommitterOptions
  readonly #log: Logger
  /** Next offset to consume, by partition: what a commit would store. */
  #pending = new Map<number, bigint>()
  #committing: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (options: OffsetCommitterOptions, log: Logger) {
    this.#options = options
    this.#log = log
  }

  start (): void {
    this.#timer ??= setInterval(() => { void this.flush() }, this.#options.intervalMs).unref()
  }

  /** Marks a partition handled up to and including `offset`. */
  handled (partition: number, offset: string): void {
    this.#pending.set(partition, BigInt(offset) + 1n)
  }

  /** After a rebalance, offsets of partitions this member no longer owns are not ours to commit. */
  keepOnly (partitions: number[]): void {
    for (const partition of this.#pending.keys()) {
      if (!partitions.includes(partition)) this.#pending.delete(partition)
    }
  }

  /** Commits what is pending now; concurrent calls share one commit. */
  async flush (): Promise<void> {
    if (this.#committing !== undefined) return await this.#committing
    if (this.#pending.size === 0) return
    const batch = this.#pending
    this.#pending = new Map()
    this.#committing = this.#commit(batch).finally(() => { this.#committing = undefined })
    return await this.#committing
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#committing
    await this.flush()
  }

  async #commit (batch: Map<number, bigint>): Promise<void> {
    try {
      await this.#options.beforeCommit()
      await this.#options.commit([...batch].map(([partition, next]) => ({ partition, offset: next.toString() })))
    } catch (error) {
      this.#log.warn({ err: error }, 'Committing consumer offsets failed; will retry')
      for (const [partition, next] of batch) {
        if ((this.#pending.get(partition) ?? -1n) < next) this.#pending.set(partition, next)
      }
    }
  }
}
