import t from 'tap'
import { SendBatcher } from '../../server/kafka/send-batcher.js'

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
  const batcher = new SendBatcher({ send: fake.send, maxInFlight: 4, maxBatchSize: 100 })
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
  const batcher = new SendBatcher({ send: fake.send, maxInFlight: 3, maxBatchSize: 100 })
  const adds = [batcher.add(1), batcher.add(2), batcher.add(3)]
  t.same(fake.calls.map((call) => call.items), [[1], [2], [3]])
  for (const call of fake.calls) call.resolve()
  await Promise.all(adds)
})

t.test('adds beyond maxInFlight wait and then leave together in one batch', async (t) => {
  const fake = new FakeSend()
  const batcher = new SendBatcher({ send: fake.send, maxInFlight: 2, maxBatchSize: 100 })
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
  const batcher = new SendBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 3 })
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
  const batcher = new SendBatcher({ send: fake.send, maxInFlight: 1, maxBatchSize: 10 })
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
  const batcher = new SendBatcher({ send: fake.send, maxInFlight: 2, maxBatchSize: 10 })
  const one = batcher.add(1)
  const two = batcher.add(2)
  fake.calls[0]!.reject(new Error('timeout'))
  await t.rejects(one, { message: 'timeout' })
  t.equal(await state(two), 'pending')
  fake.calls[1]!.resolve()
  await t.resolves(two)
})
