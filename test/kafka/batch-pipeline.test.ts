import t from 'tap'
import { BatchPipeline } from '../../server/kafka/batch-pipeline.js'

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

t.test('batches that queue while one is handled are handled next, together, in order', async (t) => {
  const handler = controlled()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('no failure'), maxQueued: 8 })
  await pipeline.push(1)
  await pipeline.push(2)
  await pipeline.push(3)
  t.same(handler.calls, [[1]], 'the first batch is handled at once; push did not wait for it')
  handler.settle()
  await tick()
  t.same(handler.calls, [[1], [2, 3]], 'the two that queued meanwhile go in one call')
  handler.settle()
  await pipeline.drained()
  t.same(handler.calls, [[1], [2, 3]])
})

t.test('push waits while maxQueued batches wait, and goes on as soon as there is room', async (t) => {
  const handler = controlled()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('no failure'), maxQueued: 2 })
  await pipeline.push(1) // being handled
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
  t.same(handler.calls, [[1], [1]], 'after restart (the consumer starts over from its commits) batches are handled again')
  handler.settle()
  await pipeline.drained()
})

t.test('drained waits for the batch in hand and everything queued behind it', async (t) => {
  const handler = controlled()
  const pipeline = new BatchPipeline<number>({ handle: handler.handle, failed: () => t.fail('no failure'), maxQueued: 8 })
  await pipeline.push(1)
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
