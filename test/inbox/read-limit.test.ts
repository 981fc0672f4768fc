import t from 'tap'
import { ReadLimit } from '../../server/inbox/read-limit.js'

/** A read the test ends by hand. */
function pending (): { read: () => Promise<string>, finish: (value: string) => void } {
  let finish!: (value: string) => void
  const done = new Promise<string>((resolve) => { finish = resolve })
  return { read: () => done, finish }
}

const refuse = (why: string): Error => new Error(why)

t.test('at most `concurrency` reads run at once; the others start in arrival order as reads end', async (t) => {
  const limit = new ReadLimit({ concurrency: 2, maxQueued: 10, maxWaitMs: 10_000, refuse })
  const reads = [pending(), pending(), pending(), pending()]
  const started: number[] = []
  const results = reads.map((read, i) => limit.run(async () => { started.push(i); return await read.read() }))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [0, 1], 'two run, two wait')
  reads[1]!.finish('b')
  t.equal(await results[1], 'b')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [0, 1, 2], 'the first waiting one starts when one ends')
  reads[0]!.finish('a')
  reads[2]!.finish('c')
  await results[2]
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [0, 1, 2, 3])
  reads[3]!.finish('d')
  t.same(await Promise.all(results), ['a', 'b', 'c', 'd'])
})

t.test('a read past maxQueued waiting is refused at once, saying why', async (t) => {
  const limit = new ReadLimit({ concurrency: 1, maxQueued: 1, maxWaitMs: 10_000, refuse })
  const running = pending()
  const first = limit.run(running.read)
  const second = limit.run(async () => 'second')
  await t.rejects(limit.run(async () => 'third'), { message: '1 reads already wait for one of 1 connections' })
  running.finish('first')
  t.same(await Promise.all([first, second]), ['first', 'second'], 'the running and the waiting one still read')
})

t.test('a read that waits maxWaitMs is refused; a failed read frees its place', async (t) => {
  const limit = new ReadLimit({ concurrency: 1, maxQueued: 10, maxWaitMs: 50, refuse })
  const running = pending()
  const first = limit.run(running.read)
  await t.rejects(limit.run(async () => 'late'), { message: 'waited 50 ms for one of 1 connections' })
  running.finish('first')
  await first
  await t.rejects(limit.run(async () => { throw new Error('store down') }), { message: 'store down' })
  t.equal(await limit.run(async () => 'next'), 'next', 'the place of a failed read is free again')
})
