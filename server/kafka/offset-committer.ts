import type { Logger } from '../logger.js'
import { systemClock, type Clock } from '../clock.js'

export interface PartitionOffset { partition: number, offset: string }

export interface OffsetCommitterOptions {
  /**
   * Sends the offsets to the group coordinator. Resolves true only if the coordinator stored them:
   * kafkajs skips a commit without an error while its consumer is not running (during a re-join).
   */
  commit: (offsets: PartitionOffset[]) => Promise<boolean>
  /** Makes everything handled so far durable (the inbox's fsync) before its offsets are committed. */
  beforeCommit: () => Promise<void>
  intervalMs: number
  clock?: Clock
}

/** One group membership: the partitions this member owns from one join until the next rebalance. */
interface Assignment {
  generation: number
  partitions: Set<number>
}

/**
 * Commits the offsets of handled records on a timer instead of after every batch: a commit per
 * batch put a round trip to the coordinator, and an fsync, in front of every next fetch. What is
 * handled but not yet committed when the process dies is consumed again, and the inbox, idempotent
 * on the notification id, drops the duplicates.
 *
 * Offsets belong to the assignment they were handled under. A rebalance drops every pending one
 * (after a re-join kafkajs fetches from the committed offsets again, so nothing is skipped), and a
 * batch that finishes after the rebalance does not count: committing it under the new generation
 * could move the offset of a partition another member owns by then.
 */
export class OffsetCommitter {
  readonly #options: OffsetCommitterOptions
  readonly #log: Logger
  readonly #clock: Clock
  #assignment: Assignment | undefined
  /** Next offset to consume, by partition, for the current assignment: what a commit would store. */
  #pending = new Map<number, bigint>()
  #committing: Promise<void> | undefined
  #cancelTimer: (() => void) | undefined
  #running = false

  constructor (options: OffsetCommitterOptions, log: Logger) {
    this.#options = options
    this.#log = log
    this.#clock = options.clock ?? systemClock
  }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#schedule()
  }

  /** The group was joined: `generation` names this assignment, and nothing older is ours to commit. */
  assigned (generation: number, partitions: number[]): void {
    this.#assignment = { generation, partitions: new Set(partitions) }
    this.#pending = new Map()
  }

  /** The member is rebalancing, crashed or stopped: what it handled is no longer its to commit. */
  revoked (): void {
    this.#assignment = undefined
    this.#pending = new Map()
  }

  /**
   * Marks a partition handled up to and including `offset`, under assignment `generation`. Returns
   * false (and keeps nothing) when that assignment is over or never had the partition.
   */
  handled (generation: number, partition: number, offset: string): boolean {
    if (this.#assignment?.generation !== generation || !this.#assignment.partitions.has(partition)) return false
    const next = BigInt(offset) + 1n
    if ((this.#pending.get(partition) ?? -1n) < next) this.#pending.set(partition, next)
    return true
  }

  /** Commits what is pending now; concurrent calls share one commit. */
  async flush (): Promise<void> {
    if (this.#committing !== undefined) return await this.#committing
    const assignment = this.#assignment
    if (assignment === undefined || this.#pending.size === 0) return
    const batch = this.#pending
    this.#pending = new Map()
    this.#committing = this.#commit(assignment, batch).finally(() => { this.#committing = undefined })
    return await this.#committing
  }

  async stop (): Promise<void> {
    this.#running = false
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    await this.#committing
    await this.flush()
  }

  #schedule (): void {
    this.#cancelTimer = this.#clock.schedule(() => {
      this.#cancelTimer = undefined
      void this.flush().finally(() => { if (this.#running) this.#schedule() })
    }, this.#options.intervalMs)
  }

  async #commit (assignment: Assignment, batch: Map<number, bigint>): Promise<void> {
    let stored = false
    try {
      await this.#options.beforeCommit()
      // The fsync may have outlasted the assignment: its offsets are no longer ours to commit.
      if (this.#assignment !== assignment) return
      stored = await this.#options.commit([...batch].map(([partition, next]) => ({ partition, offset: next.toString() })))
      if (!stored) this.#log.warn({ partitions: [...batch.keys()] }, 'Kafka skipped the offset commit (the consumer is re-joining); will retry')
    } catch (error) {
      this.#log.warn({ err: error }, 'Committing consumer offsets failed; will retry')
    }
    // Retried with the next commit, unless they are stored or the assignment they belong to is over.
    if (stored || this.#assignment !== assignment) return
    for (const [partition, next] of batch) {
      if ((this.#pending.get(partition) ?? -1n) < next) this.#pending.set(partition, next)
    }
  }
}
