import t from 'tap'
import { OffsetCommitter, type PartitionOffset } from '../../server/kafka/offset-committer.js'
import { deferred, type Deferred } from '../helpers/deferred.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { quiet } from '../helpers/quiet-log.js'

const INTERVAL_MS = 1000

/** A coordinator the test answers by hand: each commit waits for `answer` (true: stored, false: kafkajs skipped it). */
class FakeCoordinator {
  readonly commits: Array<{ offsets: PartitionOffset[], answer: Deferred<boolean> }> = []
  readonly commit = (offsets: PartitionOffset[]): Promise<boolean> => {
    const answer = deferred<boolean>()
    this.commits.push({ offsets, answer })
    return answer.promise
  }
}

/** An fsync the test can hold. */
class FakeFsync {
  held: Deferred<void> | undefined
  readonly beforeCommit = async (): Promise<void> => { await this.held?.promise }
}

async function flush (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

function setup (): { clock: FakeClock, coordinator: FakeCoordinator, fsync: FakeFsync, committer: OffsetCommitter } {
  const clock = new FakeClock()
  const coordinator = new FakeCoordinator()
  const fsync = new FakeFsync()
  const committer = new OffsetCommitter({ intervalMs: INTERVAL_MS, clock, commit: coordinator.commit, beforeCommit: fsync.beforeCommit }, quiet)
  committer.start()
  return { clock, coordinator, fsync, committer }
}

t.test('handled offsets are committed on the timer, as the next offset to consume', async (t) => {
  const { clock, coordinator, committer } = setup()
  committer.assigned(1, [0, 1])
  t.ok(committer.handled(1, 0, '5'))
  t.ok(committer.handled(1, 1, '9'))
  clock.advance(INTERVAL_MS - 1)
  await flush()
  t.equal(coordinator.commits.length, 0, 'nothing before the interval')
  clock.advance(1)
  await flush()
  t.same(coordinator.commits.map((commit) => commit.offsets), [[{ partition: 0, offset: '6' }, { partition: 1, offset: '10' }]])
  coordinator.commits[0]!.answer.resolve(true)
  await flush()
  clock.advance(INTERVAL_MS)
  await flush()
  t.equal(coordinator.commits.length, 1, 'stored: with nothing new, nothing is committed again')
})

// Regression: kafkajs's commitOffsets does nothing, without an error, while its runner
// is not running (during a re-join); the committer took that for a commit.
t.test('a commit kafkajs skipped is not taken as done: the offsets go again with the next commit', async (t) => {
  const { clock, coordinator, committer } = setup()
  committer.assigned(1, [0])
  committer.handled(1, 0, '5')
  clock.advance(INTERVAL_MS)
  await flush()
  coordinator.commits[0]!.answer.resolve(false)
  await flush()
  committer.handled(1, 0, '3') // an older offset must not replace the one still pending
  clock.advance(INTERVAL_MS)
  await flush()
  t.equal(coordinator.commits.length, 2, 'not taken as committed: committed again on the next tick')
  t.same(coordinator.commits[1]!.offsets, [{ partition: 0, offset: '6' }])
  coordinator.commits[1]!.answer.resolve(true)
  await flush()
  clock.advance(INTERVAL_MS)
  await flush()
  t.equal(coordinator.commits.length, 2, 'stored this time: not committed again')
})

// Regression: offsets handled under one assignment could be committed, under the next
// generation, for a partition another member owned by then.
t.test('offsets of an assignment that ended are never committed under the next one', async (t) => {
  const { clock, coordinator, committer } = setup()
  committer.assigned(1, [0, 1])
  committer.handled(1, 1, '9')
  committer.revoked()
  t.notOk(committer.handled(1, 1, '12'), 'a batch that finishes during the rebalance does not count')
  committer.assigned(2, [0])
  t.notOk(committer.handled(1, 0, '3'), 'nor one of the old assignment that finishes after the re-join')
  t.notOk(committer.handled(2, 1, '20'), 'nor a partition this member does not own now')
  clock.advance(INTERVAL_MS)
  await flush()
  t.equal(coordinator.commits.length, 0, 'partition 1 (now another member\'s) was not committed')
  t.ok(committer.handled(2, 0, '4'))
  clock.advance(INTERVAL_MS)
  await flush()
  t.same(coordinator.commits.map((commit) => commit.offsets), [[{ partition: 0, offset: '5' }]], 'only the new assignment\'s own offsets')
})

t.test('a commit whose fsync outlasted its assignment is dropped, even for a partition still owned', async (t) => {
  const { clock, coordinator, fsync, committer } = setup()
  committer.assigned(1, [0])
  committer.handled(1, 0, '5')
  fsync.held = deferred()
  clock.advance(INTERVAL_MS)
  await flush()
  committer.revoked()
  committer.assigned(2, [0])
  fsync.held.resolve()
  await flush()
  t.equal(coordinator.commits.length, 0, 'the old generation\'s offsets were not sent under the new one')
  // kafkajs fetches from the committed offset after a re-join, so the records come again and are handled anew.
  committer.handled(2, 0, '5')
  clock.advance(INTERVAL_MS)
  await flush()
  t.same(coordinator.commits.map((commit) => commit.offsets), [[{ partition: 0, offset: '6' }]])
})

t.test('a failed commit is retried with the next one, unless its assignment ended meanwhile', async (t) => {
  const { clock, coordinator, committer } = setup()
  committer.assigned(1, [0])
  committer.handled(1, 0, '5')
  clock.advance(INTERVAL_MS)
  await flush()
  coordinator.commits[0]!.answer.reject(new Error('coordinator moved'))
  await flush()
  clock.advance(INTERVAL_MS)
  await flush()
  t.equal(coordinator.commits.length, 2, 'retried on the next tick')
  t.same(coordinator.commits[1]!.offsets, [{ partition: 0, offset: '6' }])
  committer.revoked()
  coordinator.commits[1]!.answer.reject(new Error('rebalance in progress'))
  await flush()
  committer.assigned(2, [0])
  clock.advance(INTERVAL_MS)
  await flush()
  t.equal(coordinator.commits.length, 2, 'not retried once its assignment was over')
})

t.test('stop commits what is pending, once, and stops the timer', async (t) => {
  const { clock, coordinator, committer } = setup()
  committer.assigned(1, [0])
  committer.handled(1, 0, '7')
  let done = false
  const stopped = committer.stop().then(() => { done = true })
  await flush()
  t.same(coordinator.commits.map((commit) => commit.offsets), [[{ partition: 0, offset: '8' }]])
  t.notOk(done, 'stop waits for the coordinator to store the commit')
  coordinator.commits[0]!.answer.resolve(true)
  await stopped
  t.equal(clock.timers, 0, 'no timer left')
})
