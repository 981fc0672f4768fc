import t from 'tap'
import { BatchPipeline } from '../../server/kafka/batch-pipeline.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** A handle whose calls the test settles by hand. */
function controlled (): { calls: number[][], settle: (error?: Error) => void, handle: (batches: number[]) => Promise<void> } {
  const calls: number[][] = []
  const pending: Array<(error?: Error) => void> = []
  return {
    calls,
    settle: (error) => pending.shift()?.(error),
    handle: (batches) => new Promise<void>((resolve, reject) => {
      calls.push(batches)
      pending.push((error) => error === undefined ? resolve() : reject(error))
    })
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('batches pushed in one turn are handled in one call; those that queue while it runs, next, together, in order', async (t) => {
  const handler = controlled()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('no failure'), maxQueued: 8 })
  await pipeline.push(1)
  await pipeline.push(2)
  t.same(handler.calls, [], 'push did not wait for the handling, which waits for the rest of the turn')
  await tick()
  t.same(handler.calls, [[1, 2]], 'the batches of one turn (one fetch\'s partitions) go in one call')
  await pipeline.push(3)
  await pipeline.push(4)
  handler.settle()
  await tick()
  t.same(handler.calls, [[1, 2], [3, 4]], 'the two that queued meanwhile go in the next call')
  handler.settle()
  await pipeline.drained()
  t.same(handler.calls, [[1, 2], [3, 4]])
})

t.test('push waits while maxQueued batches wait, and goes on as soon as there is room', async (t) => {
  const handler = controlled()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('no failure'), maxQueued: 2 })
  await pipeline.push(1)
  await tick() // being handled
  await pipeline.push(2)
  await pipeline.push(3)
  let queued = false
  const fourth = pipeline.push(4).then(() => { queued = true })
  await tick()
  t.equal(queued, false, 'the queue is full: the fourth waits (and so does kafkajs\'s next fetch)')
  handler.settle()
  await fourth
  t.same(handler.calls, [[1], [2, 3]])
  handler.settle()
  await tick()
  t.same(handler.calls, [[1], [2, 3], [4]])
  handler.settle()
  await pipeline.drained()
})

t.test('after a failure nothing more is handled until restart: a later batch of the partition must not overtake the failed one', async (t) => {
  const handler = controlled()
  const failures: string[] = []
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: (error) => failures.push(error.message), maxQueued: 1 })
  await pipeline.push(1)
  await tick() // in hand
  await pipeline.push(2)
  const waiting = pipeline.push(3) // the queue is full: waits
  handler.settle(new Error('inbox down'))
  await waiting
  await pipeline.drained()
  t.same(failures, ['inbox down'], 'told once')
  t.same(handler.calls, [[1]], 'the queued batch and the waiting one were dropped, not handled')
  await pipeline.push(4)
  t.same(handler.calls, [[1]], 'and so is anything pushed before restart')
  pipeline.restart()
  await pipeline.push(1)
  await tick() // in hand
  t.same(handler.calls, [[1], [1]], 'after restart (the consumer starts over from its commits) batches are handled again')
  handler.settle()
  await pipeline.drained()
})

t.test('drained waits for the batch in hand and everything queued behind it', async (t) => {
  const handler = controlled()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('no failure'), maxQueued: 8 })
  await pipeline.push(1)
  await tick() // in hand
  await pipeline.push(2)
  let drained = false
  const done = pipeline.drained().then(() => { drained = true })
  handler.settle()
  await tick()
  t.equal(drained, false, 'the second batch is still being handled')
  handler.settle()
  await done
  t.same(handler.calls, [[1], [2]])
  await pipeline.drained() // nothing in hand: at once
})

t.test('a transient failure stalls the pipeline and handles the same batches again after the backoff; nothing overtakes them', async (t) => {
  const handler = controlled()
  const clock = new FakeClock()
  const delays: number[] = []
  const holds: string[] = []
  const pipeline = new BatchPipeline<number>({
    handle: handler.handle,
    failed: () => t.fail('a transient failure is not a failure for good'),
    maxQueued: 8,
    isTransient: (error) => error.message === 'inbox unreachable',
    held: (error) => holds.push(error.message),
    retryDelayMs: (attempt) => { delays.push(attempt); return 100 * attempt },
    clock
  })
  await pipeline.push(1)
  await tick() // in hand
  handler.settle(new Error('inbox unreachable'))
  await tick()
  t.equal(pipeline.stalledBy?.message, 'inbox unreachable', 'stalled, and says why')
  await pipeline.push(2)
  clock.advance(99)
  await tick()
  t.same(handler.calls, [[1]], 'nothing before the delay, not even the batch pushed meanwhile')
  clock.advance(1)
  await tick()
  t.same(handler.calls, [[1], [1]], 'the same batch again')
  handler.settle(new Error('inbox unreachable'))
  await tick()
  clock.advance(200)
  await tick()
  t.same(delays, [1, 2], 'each try waits its own delay')
  t.same(handler.calls, [[1], [1], [1]])
  t.same(holds, ['inbox unreachable'], 'held is told once for the hold, not once per try')
  handler.settle()
  await tick()
  t.equal(pipeline.stalledBy, undefined, 'no longer stalled once handled')
  t.same(handler.calls, [[1], [1], [1], [2]], 'then the next one, in order')
  handler.settle(new Error('inbox unreachable'))
  await tick()
  t.same(holds, ['inbox unreachable', 'inbox unreachable'], 'and again for the next hold')
  clock.advance(100)
  await tick()
  handler.settle()
  await pipeline.drained()
})

t.test('a transient failure that stalls past stallLimitMs counts as for good: failed is told, nothing more is handled', async (t) => {
  const handler = controlled()
  const clock = new FakeClock()
  const failures: string[] = []
  const pipeline = new BatchPipeline<number>({
    handle: handler.handle,
    failed: (error) => failures.push(error.message),
    maxQueued: 8,
    isTransient: () => true,
    retryDelayMs: () => 1000,
    stallLimitMs: 2500,
    clock
  })
  await pipeline.push(1)
  await tick() // in hand
  for (let elapsed = 0; elapsed < 2000; elapsed += 1000) {
    handler.settle(new Error('inbox unreachable'))
    await tick()
    clock.advance(1000)
    await tick()
  }
  t.same(handler.calls, [[1], [1], [1]], 'tried again while within the limit')
  t.same(failures, [], 'not failed yet')
  clock.advance(500)
  handler.settle(new Error('inbox unreachable'))
  await tick()
  t.same(failures, ['inbox unreachable'], 'past the limit: failed for good')
  t.equal(pipeline.stalledBy, undefined)
  await pipeline.push(2)
  await tick()
  t.same(handler.calls, [[1], [1], [1]], 'dropped until restart, like any failure for good')
})

t.test('stop ends the wait of a stalled pipeline: its batches are dropped, drained resolves', async (t) => {
  const handler = controlled()
  const clock = new FakeClock()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('stopped, not failed'), maxQueued: 8, isTransient: () => true, retryDelayMs: () => 60_000, clock })
  await pipeline.push(1)
  await tick() // in hand
  handler.settle(new Error('inbox unreachable'))
  await tick()
  pipeline.stop()
  await pipeline.drained()
  t.equal(pipeline.stalledBy, undefined)
  t.equal(clock.timers, 0, 'its retry timer is gone')
  t.same(handler.calls, [[1]], 'not tried again')
})

t.test('a push waiting for room calls keepAlive meanwhile, and rejects with what keepAlive throws', async (t) => {
  const handler = controlled()
  const clock = new FakeClock()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('no failure'), maxQueued: 1, keepAliveMs: 1000, clock })
  await pipeline.push(1)
  await tick() // being handled
  await pipeline.push(2)
  let beats = 0
  const waiting = pipeline.push(3, async () => { if (++beats === 3) throw new Error('rebalancing') })
  for (let second = 0; second < 2; second++) {
    clock.advance(1000)
    await tick()
  }
  t.equal(beats, 2, 'one keepAlive per keepAliveMs while it waits')
  clock.advance(1000)
  await t.rejects(waiting, /rebalancing/, 'a rebalance ends the wait (kafkajs then re-joins)')
  handler.settle()
  await tick()
  handler.settle()
  await pipeline.drained()
  t.same(handler.calls, [[1], [2]], 'the rejected push queued nothing')
})
