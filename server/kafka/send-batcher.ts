/**
 * Coalesces concurrent sends into batches without delaying a lone one: an item goes out at once
 * while fewer than `maxInFlight` sends are under way; otherwise it waits for the next free slot
 * and leaves with everything that queued up meanwhile. kafkajs sends one produce request per
 * `send()`, so this turns N concurrent POSTs into about N / batch size requests.
 */
export interface SendBatcherOptions<T> {
  send: (items: T[]) => Promise<void>
  maxInFlight: number
  maxBatchSize: number
}

interface Pending<T> {
  item: T
  resolve: () => void
  reject: (error: unknown) => void
}

export class SendBatcher<T> {
  readonly #options: SendBatcherOptions<T>
  #queue: Array<Pending<T>> = []
  #inFlight = 0

  constructor (options: SendBatcherOptions<T>) {
    this.#options = options
  }

  get pending (): number {
    return this.#queue.length + this.#inFlight
  }

  add (item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      this.#drain()
    })
  }

  #drain (): void {
    while (this.#inFlight < this.#options.maxInFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#options.maxBatchSize)
      this.#inFlight++
      this.#options.send(batch.map((pending) => pending.item)).then(
        () => { for (const pending of batch) pending.resolve() },
        (error: unknown) => { for (const pending of batch) pending.reject(error) }
      ).finally(() => {
        this.#inFlight--
        this.#drain()
      })
    }
  }
}
