import t from 'tap'
import { KafkaErrorCode } from '../../server/kafka/errors.js'
import { SendBatcher, type SendBatcherOptions } from '../../server/kafka/send-batcher.js'
import { FakeClock } from '../helpers/fake-clock.js'

interface Call {
  items: number[]
  resolve: () => void
  reject: (error: unknown) => void
}

/** A send whose calls the test settles by hand, and can wait for. */
class FakeSend {
  readonly calls: Call[] = []
  readonly #waiters: Array<(call: Call) => void> = []

  readonly send = (items: number[]): Promise<void> => new Promise<void>((resolve, reject) => {
    const call = { items, resolve, reject }
    this.calls.push(call)
    this.#waiters.shift()?.(call)
  })

  /** The call number `index` (0-based), once it was made. */
  async call (index: number): Promise<Call> {
    while (this.calls.length <= index) await new Promise<Call>((resolve) => this.#waiters.push(resolve))
    return this.calls[index]!
  }
}

/** A batcher on a fake clock; the bounds the test does not care about are out of the way. */
function makeBatcher (options: Partial<SendBatcherOptions<number>> & Pick<SendBatcherOptions<number>, 'send' | 'maxInFlight' | 'maxBatchSize'>): SendBatcher<number> {
  return new SendBatcher({ maxBatchBytes: Number.MAX_SAFE_INTEGER, sizeOf: () => 1, timeoutMs: 60_000, maxQueued: 1_000_000, clock: new FakeClock(), ...options })
}

/** Whether the promise has settled, and how, as of now (after pending microtasks ran). */
async function state (promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  const pending = {}
  const winner = await Promise.race([promise.then(() => 'resolved' as const, () => 'rejected' as const), new Promise((resolve) => setImmediate(() => resolve(pending)))])
  return winner === pending ? 'pending' : winner as 'resolved' | 'rejected'
}

/** Lets the batcher's bookkeeping (which runs after the add's own promise settles) catch up. */
async function flush (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}

t.test('a lone add is sent at once, within add()', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 4, maxBatchSize: 100 })
  const sent = batcher.add(1)
  t.equal(fake.calls.length, 1, 'send was called synchronously')
  t.same(fake.calls[0]?.items, [1])
  t.equal(batcher.pending, 1)
  t.equal(await state(sent), 'pending', 'the add waits for the send')
  fake.calls[0]!.resolve()
  await sent
  await flush()
  t.equal(batcher.pending, 0)
})

t.test('adds while a slot is free each go out alone at once', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 3, maxBatchSize: 100 })
  const adds = [batcher.add(1), batcher.add(2), batcher.add(3)]
  t.same(fake.calls.map((call) => call.items), [[1], [2], [3]])
  for (const call of fake.calls) call.resolve()
  await Promise.all(adds)
})

t.test('adds beyond maxInFlight wait and then leave together in one batch', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 2, maxBatchSize: 100 })
  const first = [batcher.add(1), batcher.add(2)]
  const queued = [batcher.add(3), batcher.add(4), batcher.add(5), batcher.add(6)]
  t.equal(fake.calls.length, 2, 'only maxInFlight sends are under way')
  t.equal(batcher.pending, 6)
  fake.calls[0]!.resolve()
  const third = await fake.call(2)
  t.same(third.items, [3, 4, 5, 6], 'everything that queued leaves in one send, in order')
  t.equal(fake.calls.length, 3)
  await first[0]
  t.equal(await state(queued[0]!), 'pending', 'queued adds resolve with their own send only')
  fake.calls[1]!.resolve()
  third.resolve()
  await Promise.all([...first, ...queued])
  t.equal(fake.calls.length, 3, 'nothing was sent twice')
  await flush()
  t.equal(batcher.pending, 0)
})

t.test('batches never exceed maxBatchSize, and every item is sent once, in order', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 3 })
  const adds = Array.from({ length: 11 }, (_, i) => batcher.add(i))
  t.equal(fake.calls.length, 1)
  for (let index = 0; index < 5; index++) (await fake.call(index)).resolve()
  await Promise.all(adds)
  const batches = fake.calls.map((call) => call.items)
  t.same(batches, [[0], [1, 2, 3], [4, 5, 6], [7, 8, 9], [10]])
  t.ok(batches.every((batch) => batch.length <= 3))
})

t.test('a failed send rejects exactly its own batch, and the batcher goes on', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 10 })
  const alone = batcher.add(1)
  const batched = [batcher.add(2), batcher.add(3)]
  const down = new Error('broker down')
  fake.calls[0]!.resolve()
  await alone
  const second = await fake.call(1)
  t.same(second.items, [2, 3])
  second.reject(down)
  for (const add of batched) await t.rejects(add, down, 'each add of the failed batch rejects with its error')

  const later = [batcher.add(4), batcher.add(5)]
  const third = await fake.call(2)
  t.same(third.items, [4], 'a free slot sends at once again')
  third.resolve()
  const fourth = await fake.call(3)
  t.same(fourth.items, [5])
  fourth.resolve()
  await Promise.all(later)
  await flush()
  t.equal(batcher.pending, 0, 'the failed send freed its slot')
})

t.test('a failure in one slot leaves the concurrent slot alone', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 2, maxBatchSize: 10 })
  const one = batcher.add(1)
  const two = batcher.add(2)
  fake.calls[0]!.reject(new Error('timeout'))
  await t.rejects(one, { message: 'timeout' })
  t.equal(await state(two), 'pending')
  fake.calls[1]!.resolve()
  await t.resolves(two)
})

/** Records when (on the fake clock) each add settled, and how. */
function watch (clock: FakeClock, add: Promise<void>): { addedAt: number, settledAt?: number, error?: { code?: string, canRetry?: boolean } } {
  const outcome: { addedAt: number, settledAt?: number, error?: { code?: string, canRetry?: boolean } } = { addedAt: clock.now() }
  add.then(() => { outcome.settledAt = clock.now() }, (error: { code?: string, canRetry?: boolean }) => {
    outcome.settledAt = clock.now()
    outcome.error = error
  })
  return outcome
}

// Regression: the send timer started when a batch left the batcher, so queued POSTs
// waited several timeout windows under a stalled broker, and abandoned sends freed their slot.
t.test('with a send that never settles, every add settles within the timeout of its call, and no more than maxInFlight sends are made', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeSend()
  const timeoutMs = 1000
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 4, maxBatchSize: 10, timeoutMs, clock })
  const outcomes = []
  let mostTimers = 0
  // One add every 10 ms for 3 s, while the broker never answers.
  for (let step = 0; step < 300; step++) {
    outcomes.push(watch(clock, batcher.add(step)))
    mostTimers = Math.max(mostTimers, clock.timers)
    clock.advance(10)
    await flush()
  }
  t.equal(mostTimers, 1, 'one deadline timer for all adds, not one per add')
  // Settle times are read after each step, so steps are small.
  for (let step = 0; step < timeoutMs / 10; step++) {
    clock.advance(10)
    await flush()
  }
  t.equal(fake.calls.length, 4, 'only maxInFlight produce requests were made: the abandoned ones keep their slots')
  const late = outcomes.filter((outcome) => outcome.settledAt === undefined || outcome.settledAt - outcome.addedAt > timeoutMs)
  t.same(late, [], 'every add settled within the timeout of its call')
  t.ok(outcomes.every((outcome) => outcome.error?.code === KafkaErrorCode.TIMEOUT && outcome.error.canRetry === true), 'each with a retriable KAFKA_TIMEOUT')
  t.equal(batcher.pending, 0, 'nothing is waiting any more')
  t.equal(batcher.inFlight, 4, 'the four abandoned sends still hold their slots')
})

t.test('an abandoned send holds its slot until it really settles; then the queue moves on', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 10, timeoutMs: 1000, clock })
  const first = watch(clock, batcher.add(1))
  clock.advance(1000)
  await flush()
  t.equal(first.error?.code, KafkaErrorCode.TIMEOUT, 'the caller got its timeout')
  const second = batcher.add(2)
  t.equal(fake.calls.length, 1, 'the next add waits: the first request is still on the broker')
  t.equal(batcher.inFlight, 1)
  fake.calls[0]!.resolve()
  const call = await fake.call(1)
  t.same(call.items, [2], 'once kafkajs settled the first, the next one goes')
  call.resolve()
  await t.resolves(second)
  t.equal(first.error?.code, KafkaErrorCode.TIMEOUT, 'a late success does not change the first answer')
})

t.test('the queue stays under its cap: past it an add is refused at once with a retriable KAFKA_QUEUE_FULL', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 100, maxQueued: 5, timeoutMs: 1000, clock })
  const admitted = Array.from({ length: 6 }, (_, i) => watch(clock, batcher.add(i)))
  t.equal(batcher.queued, 5)
  const refused = watch(clock, batcher.add(6))
  await flush()
  t.equal(refused.settledAt, 0, 'refused at once, no time passed')
  t.match(refused.error, { code: KafkaErrorCode.QUEUE_FULL, canRetry: true })
  t.equal(batcher.queued, 5, 'the queue did not grow past the cap')
  t.ok(admitted.every((outcome) => outcome.settledAt === undefined), 'the admitted adds still wait')
  clock.advance(1000)
  await flush()
  t.ok(admitted.every((outcome) => outcome.error?.code === KafkaErrorCode.TIMEOUT), 'and time out at their deadline')
  t.equal(batcher.queued, 0, 'which frees the queue')
  const later = batcher.add(7)
  t.equal(batcher.queued, 1, 'a new add is admitted again')
  fake.calls[0]!.resolve()
  ;(await fake.call(1)).resolve()
  await t.resolves(later)
})

// Regression: ~800 messages of 1,000 chars to one user coalesced into one request over
// the broker's message.max.bytes, which failed every caller in it, and the retry built it again.
t.test('batches are cut by bytes below maxBatchBytes, and every item is sent once, in order', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 1000, maxBatchBytes: 100, sizeOf: (item) => item })
  const sizes = [10, 30, 30, 30, 30, 60, 50, 50, 100, 1]
  const adds = sizes.map((size) => batcher.add(size))
  for (let index = 0; index < 6; index++) (await fake.call(index)).resolve()
  await Promise.all(adds)
  const batches = fake.calls.map((call) => call.items)
  t.same(batches, [[10], [30, 30, 30], [30, 60], [50, 50], [100], [1]])
  t.ok(batches.every((batch) => batch.reduce((sum, size) => sum + size, 0) <= 100), 'no batch is over the limit')
})

t.test('an item that can never fit is refused alone with RECORD_TOO_LARGE; the others are sent', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 1000, maxBatchBytes: 100, sizeOf: (item) => item })
  const first = batcher.add(40)
  const queued = batcher.add(50)
  const huge = batcher.add(101)
  const after = batcher.add(20)
  await t.rejects(huge, { code: KafkaErrorCode.RECORD_TOO_LARGE, canRetry: false, bytes: 101, limit: 100 })
  fake.calls[0]!.resolve()
  const second = await fake.call(1)
  t.same(second.items, [50, 20], 'the record that fits nobody did not hold up or fail the batch')
  second.resolve()
  await Promise.all([first, queued, after])
})

t.test('addAll: a request\'s items leave together, in as few sends as the batch limits allow', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 2, maxBatchSize: 4 })
  const all = batcher.addAll([1, 2, 3, 4, 5, 6])
  t.same(fake.calls.map((call) => call.items), [[1, 2, 3, 4], [5, 6]], 'not one send per item while slots are free: two sends of up to maxBatchSize')
  t.equal(await state(all), 'pending')
  fake.calls[0]!.resolve()
  t.equal(await state(all), 'pending', 'resolved only once every item was sent')
  fake.calls[1]!.resolve()
  await t.resolves(all)

  const busy = [batcher.add(7), batcher.add(8)]
  const queued = batcher.addAll([9, 10, 11])
  t.equal(fake.calls.length, 4, 'both slots are busy: the request waits')
  fake.calls[2]!.resolve()
  t.same((await fake.call(4)).items, [9, 10, 11], 'then leaves in one send')
  fake.calls[3]!.resolve()
  fake.calls[4]!.resolve()
  await Promise.all([...busy, queued])
})

t.test('addAll rejects once every item settled, with the first failure, when one of its sends fails', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 2, maxBatchSize: 2 })
  const all = batcher.addAll([1, 2, 3, 4])
  const failure = new Error('broker said no')
  fake.calls[1]!.reject(failure)
  t.equal(await state(all), 'pending', 'the other send is still out: no answer yet')
  fake.calls[0]!.resolve()
  await t.rejects(all, failure)
  await flush()
  t.equal(batcher.pending, 0)
})

t.test('addAll is all or none: one item too large, or no room for all, and nothing is added', async (t) => {
  const fake = new FakeSend()
  const batcher = makeBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 100, maxBatchBytes: 100, maxQueued: 3, sizeOf: (item) => item })
  await t.rejects(batcher.addAll([10, 101, 10]), { code: KafkaErrorCode.RECORD_TOO_LARGE, bytes: 101, limit: 100 })
  t.equal(fake.calls.length, 0, 'nothing was sent')
  t.equal(batcher.pending, 0, 'nothing was queued')
  const first = batcher.add(1)
  await t.rejects(batcher.addAll([1, 1, 1, 1]), { code: KafkaErrorCode.QUEUE_FULL, canRetry: true }, 'four do not fit in a queue of three')
  t.equal(batcher.queued, 0, 'none of the four queued')
  const fits = batcher.addAll([1, 1, 1])
  t.equal(batcher.queued, 3, 'three do')
  fake.calls[0]!.resolve()
  ;(await fake.call(1)).resolve()
  await Promise.all([first, fits])
})
