import { systemClock, type Clock } from '../clock.js'
import { KafkaErrorCode, KafkaUnavailableError, RecordTooLargeError } from './errors.js'

export interface SendBatcherOptions<T> {
  send: (items: T[]) => Promise<void>
  maxInFlight: number
  maxBatchSize: number
  /** A batch's items add up to at most `maxBatchBytes` of `sizeOf`; an item bigger than that is refused. */
  maxBatchBytes: number
  sizeOf: (item: T) => number
  /** How long an add may take, counted from its call, unless the add names its own deadline. */
  timeoutMs: number
  /** How many adds may wait for a slot; more are refused with KAFKA_QUEUE_FULL. */
  maxQueued: number
  clock?: Clock
}

type State = 'queued' | 'sending' | 'settled'

interface Pending<T> {
  item: T
  size: number
  deadline: number
  state: State
  resolve: () => void
  reject: (error: unknown) => void
}

/** A FIFO over an array with a moving head, compacted once the dead prefix is most of it. */
class Fifo<E> {
  #items: E[] = []
  #head = 0

  push (item: E): void {
    this.#items.push(item)
  }

  peek (): E | undefined {
    return this.#items[this.#head]
  }

  /**
   * Adds `item` behind the last one that does not come after it by `after`: deadlines come from the
   * callers, whose order of calls need not be the order of their deadlines. Out-of-order items
   * are few and near the end, so this walks back only past those.
   */
  insert (item: E, after: (a: E, b: E) => boolean): void {
    let at = this.#items.length
    while (at > this.#head && after(this.#items[at - 1]!, item)) at--
    this.#items.splice(at, 0, item)
  }

  shift (): void {
    this.#head++
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
  }
}

/**
 * Coalesces concurrent sends into batches without delaying a lone one: an item goes out at once
 * while fewer than `maxInFlight` sends are under way; otherwise it waits for the next free slot
 * and leaves with everything that queued up meanwhile. kafkajs sends one produce request per
 * `send()`, so this turns N concurrent POSTs into about N / batch size requests.
 *
 * Every add is bounded: it settles within `timeoutMs` of its call, queued and in flight together,
 * and past `maxQueued` waiting adds a new one is refused at once. A send that its callers gave up
 * on keeps its slot until it really settles, so a stalled broker never has more than
 * `maxInFlight` requests on it.
 */
export class SendBatcher<T> {
  readonly #options: SendBatcherOptions<T>
  readonly #clock: Clock
  /** Adds waiting for a slot, in order (entries that timed out meanwhile are skipped). */
  readonly #queue = new Fifo<Pending<T>>()
  /** Every unsettled add, in the order of their deadlines (not of their calls): the sweep's view. */
  readonly #deadlines = new Fifo<Pending<T>>()
  #queued = 0
  #sending = 0
  #inFlight = 0
  #cancelSweep: (() => void) | undefined
  /** When the armed sweep fires. */
  #sweepAt = 0

  constructor (options: SendBatcherOptions<T>) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
  }

  /** Adds not answered yet (waiting or in a send). */
  get pending (): number {
    return this.#queued + this.#sending
  }

  /** Adds waiting for a slot. */
  get queued (): number {
    return this.#queued
  }

  /** Sends holding a slot, abandoned ones included. */
  get inFlight (): number {
    return this.#inFlight
  }

  /** `deadline`: when the add must have settled, on the clock's time (default: `timeoutMs` from now). */
  add (item: T, deadline = this.#clock.now() + this.#options.timeoutMs): Promise<void> {
    const size = this.#options.sizeOf(item)
    const refusal = this.#refusal([size], deadline)
    if (refusal !== undefined) return Promise.reject(refusal)
    const added = this.#enqueue(item, size, deadline)
    this.#drain()
    this.#armSweep()
    return added
  }

  /**
   * Adds several items at once, with one deadline: they queue together before any leaves, so they
   * go out in as few sends as the batch limits allow (one, for a request's worth of small records).
   * All or none: if one is too large or the queue has no room for all, none is added. Resolves once
   * every one was sent; rejects once every one has settled, with the first failure.
   */
  addAll (items: readonly T[], deadline = this.#clock.now() + this.#options.timeoutMs): Promise<void> {
    const sizes = items.map((item) => this.#options.sizeOf(item))
    const refusal = this.#refusal(sizes, deadline)
    if (refusal !== undefined) return Promise.reject(refusal)
    const added = items.map((item, index) => this.#enqueue(item, sizes[index]!, deadline))
    this.#drain()
    this.#armSweep()
    return Promise.allSettled(added).then((results) => {
      const failed = results.find((result) => result.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    })
  }

  /** Why adds of these sizes are refused at once, if they are. */
  #refusal (sizes: readonly number[], deadline: number): Error | undefined {
    const largest = Math.max(0, ...sizes)
    if (largest > this.#options.maxBatchBytes) return new RecordTooLargeError(largest, this.#options.maxBatchBytes)
    if (this.#queued + sizes.length > this.#options.maxQueued) {
      return new KafkaUnavailableError(`Kafka is behind: ${this.#queued} records already wait to be sent`, { code: KafkaErrorCode.QUEUE_FULL })
    }
    if (deadline <= this.#clock.now()) {
      return new KafkaUnavailableError('no time was left before the deadline to send the record', { code: KafkaErrorCode.TIMEOUT })
    }
    return undefined
  }

  #enqueue (item: T, size: number, deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending: Pending<T> = { item, size, deadline, state: 'queued', resolve, reject }
      this.#queue.push(pending)
      this.#queued++
      this.#deadlines.insert(pending, (earlier, later) => earlier.deadline > later.deadline)
    })
  }

  #drain (): void {
    while (this.#inFlight < this.#options.maxInFlight && this.#queued > 0) {
      const batch = this.#takeBatch()
      this.#inFlight++
      this.#sending += batch.length
      let sent: Promise<void>
      try {
        sent = this.#options.send(batch.map((pending) => pending.item))
      } catch (error) {
        sent = Promise.reject(error)
      }
      sent.then(
        () => { for (const pending of batch) this.#settle(pending, undefined) },
        (error: unknown) => { for (const pending of batch) this.#settle(pending, error ?? new Error('send failed')) }
      ).finally(() => {
        this.#inFlight--
        this.#forgetSettled()
        this.#drain()
      })
    }
  }

  /** The oldest waiting adds, as many as fit in one batch by count and bytes (at least one). */
  #takeBatch (): Array<Pending<T>> {
    const batch: Array<Pending<T>> = []
    let bytes = 0
    for (let next = this.#queue.peek(); next !== undefined && batch.length < this.#options.maxBatchSize; next = this.#queue.peek()) {
      if (next.state !== 'queued') {
        this.#queue.shift()
        continue
      }
      if (batch.length > 0 && bytes + next.size > this.#options.maxBatchBytes) break
      this.#queue.shift()
      next.state = 'sending'
      this.#queued--
      bytes += next.size
      batch.push(next)
    }
    return batch
  }

  #settle (pending: Pending<T>, error: unknown): void {
    if (pending.state === 'settled') return
    if (pending.state === 'queued') this.#queued--
    else this.#sending--
    pending.state = 'settled'
    if (error === undefined) pending.resolve()
    else pending.reject(error)
  }

  /** Releases settled adds at the front of the deadline order, so they are not kept until the next sweep. */
  #forgetSettled (): void {
    while (this.#deadlines.peek()?.state === 'settled') this.#deadlines.shift()
  }

  /**
   * One timer for all adds: it fires at the earliest deadline of an unsettled one, and is set
   * again for an add whose deadline comes before the one it waits for.
   */
  #armSweep (): void {
    this.#forgetSettled()
    const first = this.#deadlines.peek()
    if (first === undefined || (this.#cancelSweep !== undefined && this.#sweepAt <= first.deadline)) return
    this.#cancelSweep?.()
    this.#sweepAt = first.deadline
    this.#cancelSweep = this.#clock.schedule(() => this.#sweep(), Math.max(0, first.deadline - this.#clock.now()))
  }

  #sweep (): void {
    this.#cancelSweep = undefined
    const now = this.#clock.now()
    for (let first = this.#deadlines.peek(); first !== undefined && (first.state === 'settled' || first.deadline <= now); first = this.#deadlines.peek()) {
      this.#deadlines.shift()
      if (first.state === 'settled') continue
      const message = first.state === 'queued'
        ? `Kafka did not take the record by its deadline (it waited behind ${this.#inFlight} produce requests)`
        : 'Kafka did not acknowledge by the record\'s deadline'
      this.#settle(first, new KafkaUnavailableError(message, { code: KafkaErrorCode.TIMEOUT }))
    }
    this.#armSweep()
  }
}
