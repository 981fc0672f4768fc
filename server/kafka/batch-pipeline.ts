import { systemClock, type Clock } from '../clock.js'

export interface BatchPipelineOptions<T> {
  handle: (batches: T[]) => Promise<void>
  /** Told when a handle call fails for good; from then on batches are dropped until `restart`. */
  failed: (error: Error) => void
  maxQueued: number
  /** Whether a failure passes by itself, so that the same batches are handled again; none does when absent. */
  isTransient?: (error: Error) => boolean
  /** Told when a transient failure begins to hold the batches in hand (once per hold, not per try). */
  held?: (error: Error) => void
  /** How long to wait before try `attempt` (1, 2…) after a transient failure. */
  retryDelayMs?: (attempt: number) => number
  /**
   * How long transient failures may stall the pipeline on the same batches before the failure
   * counts as for good (`failed`): the consumer then leaves the group, so that a gateway cut off
   * from the inbox alone does not keep its partitions from the others. Unlimited when absent.
   */
  stallLimitMs?: number
  /** How often a `push` that waits for room calls its `keepAlive` (a stalled pipeline can wait long). */
  keepAliveMs?: number
  clock?: Clock
}

const DEFAULT_KEEP_ALIVE_MS = 1000

/**
 * Lets the consumer fetch the next batch while the last one is handled. kafkajs fetches, hands
 * each partition's batch to eachBatch, and fetches again only once every eachBatch returned: with
 * the handling inside eachBatch, the gateway sat idle for every fetch round trip. Here eachBatch
 * only queues its batch; batches are handled one call at a time, in arrival order, all those that
 * queued up meanwhile (or in the same turn) in one call (one inbox transaction for several
 * partitions). At most
 * `maxQueued` batches wait; past that, `push` waits too, and so does kafkajs's next fetch.
 *
 * kafkajs moves on to the next offsets before a batch is handled, so a failure must not let a
 * later batch of the same partition go first: it would store a user's notifications out of order,
 * and the inbox's stored position would then skip the failed ones when they are consumed again.
 * A transient failure (the inbox is unreachable) stalls the pipeline: the same batches are handled
 * again after a backoff, while the consumer keeps its partitions (a restart would leave and rejoin
 * the group, a rebalance of every gateway, once per failed try), up to `stallLimitMs`. Any other
 * failure, or one stalled past that limit, stops it: every batch is dropped until `restart`,
 * which the new consumer calls; it starts over from the committed offsets.
 */
export class BatchPipeline<T> {
  readonly #options: BatchPipelineOptions<T>
  readonly #clock: Clock
  #queue: T[] = []
  /** pushes waiting for room, resolved as the queue drains or is dropped */
  #waiting: Array<() => void> = []
  #running: Promise<void> | undefined
  #failed = false
  /** The transient failure the batches in hand wait to be retried after; undefined when none. */
  #stalledBy: Error | undefined
  /** Ends the wait before a retry (stop). */
  #wakeRetry: (() => void) | undefined

  constructor (options: BatchPipelineOptions<T>) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
  }

  /** The transient failure that stalls the pipeline now, if any. */
  get stalledBy (): Error | undefined {
    return this.#stalledBy
  }

  /**
   * Queues a batch; resolves once it is queued (at once unless the queue is full), or dropped after
   * a failure. While it waits for room it calls `keepAlive` every `keepAliveMs` (kafkajs's
   * heartbeat, so that a stalled pipeline does not cost the consumer its membership), and rejects
   * with what `keepAlive` throws (a rebalance).
   */
  async push (batch: T, keepAlive?: () => Promise<void>): Promise<void> {
    while (!this.#failed && this.#queue.length >= this.#options.maxQueued) await this.#room(keepAlive)
    if (this.#failed) return
    this.#queue.push(batch)
    this.#running ??= this.#run()
  }

  /** Resolves once every batch queued so far was handled (or dropped). */
  async drained (): Promise<void> {
    while (this.#running !== undefined) await this.#running
  }

  /** Takes batches again, after a failure: the consumer that pushes them starts from its commits. */
  restart (): void {
    this.#failed = false
  }

  /** Drops what is queued or stalled, and everything pushed until `restart` (it will be fetched again). */
  stop (): void {
    this.#failed = true
    this.#queue = []
    this.#wakeRetry?.()
    this.#release()
  }

  async #run (): Promise<void> {
    try {
      // kafkajs hands over one fetch's batches (one per partition) one after another in the same
      // turn: the rest of the turn lets them all queue, so they share one handle call (one inbox
      // transaction, one round of socket writes) instead of the first going alone.
      await new Promise<void>((resolve) => setImmediate(resolve))
      while (this.#queue.length > 0) {
        const batches = this.#queue
        this.#queue = []
        this.#release()
        await this.#handle(batches)
      }
    } finally {
      this.#running = undefined
    }
  }

  /** Handles `batches`, again after each transient failure, until they are handled or the pipeline stops. */
  async #handle (batches: T[]): Promise<void> {
    const since = this.#clock.now()
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#options.handle(batches)
        this.#stalledBy = undefined
        return
      } catch (error) {
        if (this.#failed) return // stopped meanwhile: the batches are dropped, and so is this error
        const stalledTooLong = this.#clock.now() - since >= (this.#options.stallLimitMs ?? Infinity)
        if (this.#options.isTransient?.(error as Error) !== true || stalledTooLong) {
          this.#stalledBy = undefined
          this.stop()
          this.#options.failed(error as Error)
          return
        }
        if (attempt === 1) this.#options.held?.(error as Error)
        this.#stalledBy = error as Error
        await this.#sleep(this.#options.retryDelayMs?.(attempt) ?? 0)
        if (this.#failed) {
          this.#stalledBy = undefined
          return
        }
      }
    }
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const cancel = this.#clock.schedule(() => { this.#wakeRetry = undefined; resolve() }, ms)
      this.#wakeRetry = () => { this.#wakeRetry = undefined; cancel(); resolve() }
    })
  }

  /** Waits until the queue has room or is dropped, or until it is time for `keepAlive`. */
  async #room (keepAlive: (() => Promise<void>) | undefined): Promise<void> {
    let freed!: () => void
    const room = new Promise<boolean>((resolve) => { freed = () => resolve(true) })
    this.#waiting.push(freed)
    if (keepAlive === undefined) {
      await room
      return
    }
    let cancel: () => void = () => {}
    const due = new Promise<boolean>((resolve) => { cancel = this.#clock.schedule(() => resolve(false), this.#options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS) })
    const hasRoom = await Promise.race([room, due])
    cancel()
    if (hasRoom) return
    this.#waiting = this.#waiting.filter((waiter) => waiter !== freed)
    await keepAlive()
  }

  #release (): void {
    const waiting = this.#waiting
    this.#waiting = []
    for (const resolve of waiting) resolve()
  }
}
