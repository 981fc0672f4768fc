export interface ReadLimitOptions {
  /** Reads running at once, at most. */
  concurrency: number
  /** Reads waiting for their turn, at most: one more is refused at once. */
  maxQueued: number
  /** How long a read may wait for its turn before it is refused. */
  maxWaitMs: number
  /** The error a refused read rejects with, saying why. */
  refuse: (why: string) => Error
}

interface Waiting {
  start: () => void
  timer: NodeJS.Timeout
}

/**
 * Lets a bounded number of reads run at once and a bounded number wait, first come first served;
 * the rest are refused at once, and so is a read that waited too long. A reconnect storm (the
 * sockets of a gateway that died resume on the others) or a flood of history requests then costs a
 * few refusals that clients retry later, instead of a queue without end in front of the store.
 */
export class ReadLimit {
  readonly #options: ReadLimitOptions
  #running = 0
  readonly #queue: Waiting[] = []

  constructor (options: ReadLimitOptions) {
    this.#options = options
  }

  async run<T> (read: () => Promise<T>): Promise<T> {
    await this.#turn()
    try {
      return await read()
    } finally {
      this.#running--
      const next = this.#queue.shift()
      if (next !== undefined) {
        clearTimeout(next.timer)
        next.start()
      }
    }
  }

  /** Resolves when this read may run (counted as running), or rejects with the refusal. */
  async #turn (): Promise<void> {
    const { concurrency, maxQueued, maxWaitMs, refuse } = this.#options
    if (this.#running < concurrency) {
      this.#running++
      return
    }
    if (this.#queue.length >= maxQueued) throw refuse(`${this.#queue.length} reads already wait for one of ${concurrency} connections`)
    await new Promise<void>((resolve, reject) => {
      const waiting: Waiting = {
        start: () => {
          this.#running++
          resolve()
        },
        timer: setTimeout(() => {
          this.#queue.splice(this.#queue.indexOf(waiting), 1)
          reject(refuse(`waited ${maxWaitMs} ms for one of ${concurrency} connections`))
        }, maxWaitMs)
      }
      this.#queue.push(waiting)
    })
  }
}
