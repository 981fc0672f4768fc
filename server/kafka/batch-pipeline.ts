/**
 * Lets the consumer fetch the next batch while the last one is handled. kafkajs fetches, hands
 * each partition's batch to eachBatch, and fetches again only once every eachBatch returned: with
 * the handling inside eachBatch, the gateway sat idle for every fetch round trip. Here eachBatch
 * only queues its batch; batches are handled one call at a time, in arrival order, all those that
 * queued up meanwhile in one call (one inbox transaction for several partitions). At most
 * `maxQueued` batches wait; past that, `push` waits too, and so does kafkajs's next fetch.
 *
 * kafkajs moves on to the next offsets before a batch is handled, so a failure must stop the
 * pipeline: handling a later batch of the same partition first would store a user's
 * notifications out of order, and the inbox's stored position would then skip the failed ones
 * when they are consumed again. After a failure every batch is dropped until `restart`, which the
 * new consumer calls: it starts over from the committed offsets.
 */
export interface BatchPipelineOptions<T> {
  handle: (batches: T[]) => Promise<void>
  /** Told when a handle call fails; from then on batches are dropped until `restart`. */
  failed: (error: Error) => void
  maxQueued: number
}

export class BatchPipeline<T> {
  readonly #options: BatchPipelineOptions<T>
  #queue: T[] = []
  /** pushes waiting for room, resolved as the queue drains or is dropped */
  #waiting: Array<() => void> = []
  #running: Promise<void> | undefined
  #failed = false

  constructor (options: BatchPipelineOptions<T>) {
    this.#options = options
  }

  /** Queues a batch; resolves once it is queued (at once unless the queue is full), or dropped after a failure. */
  async push (batch: T): Promise<void> {
    while (!this.#failed && this.#queue.length >= this.#options.maxQueued) await new Promise<void>((resolve) => this.#waiting.push(resolve))
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

  /** Drops what is queued, and everything pushed until `restart` (it will be fetched again). */
  stop (): void {
    this.#failed = true
    this.#queue = []
    this.#release()
  }

  async #run (): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batches = this.#queue
        this.#queue = []
        this.#release()
        try {
          await this.#options.handle(batches)
        } catch (error) {
          this.stop()
          this.#options.failed(error as Error)
        }
      }
    } finally {
      this.#running = undefined
    }
  }

  #release (): void {
    const waiting = this.#waiting
    this.#waiting = []
    for (const resolve of waiting) resolve()
  }
}
