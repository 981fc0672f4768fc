import { join } from 'node:path'
import t from 'tap'
import type { Fanout, FanoutMessage } from '../../server/fanout/types.js'
import { encodeCursor } from '../../server/feed/cursor.js'
import { notificationFrame } from '../../server/feed/frames.js'
import { createIngest } from '../../server/feed/ingest.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import { InboxUnavailableError } from '../../server/inbox/types.js'
import { followNotification } from '../../server/notification.js'
import { tempDir, type TestContext } from '../helpers/gateway.js'
import { consumedRecords } from '../helpers/records.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const rick = { id: '3', name: 'Rick' }

/** A fan-out that records what it is asked to publish; `reachable`: who may be listening. */
class RecordingFanout implements Fanout {
  readonly published: FanoutMessage[][] = []
  constructor (readonly reachable: ReadonlySet<string>, readonly publishing: Promise<void> = Promise.resolve()) {}
  async publish (messages: readonly FanoutMessage[]): Promise<void> {
    this.published.push([...messages])
    await this.publishing
  }

  mayReach (userId: string): boolean { return this.reachable.has(userId) }
  watch (): void {}
  unwatch (): void {}
  unreadyReasons (): string[] { return [] }
  async close (): Promise<void> {}
}

function inboxFor (t: TestContext): SqliteInbox {
  const inbox = new SqliteInbox(join(tempDir(t), 'inbox.sqlite'), { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 })
  t.teardown(() => inbox.close())
  return inbox
}

t.test('a batch is stored, then each new notification is published as its live frame, with the record\'s timestamp', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1', '2']))
  const timings: number[] = []
  const ingest = createIngest(inbox, fanout, (seconds) => timings.push(seconds))
  const notifications = [followNotification(bruno, emma), followNotification(emma, bruno), followNotification(bruno, emma)]
  const records = consumedRecords(notifications).map((record, i) => ({ ...record, timestamp: 1000 + i }))
  await ingest(records)
  t.equal((await inbox.history('1', 10)).items.length, 2, 'stored')
  t.same(fanout.published, [[
    { userId: '1', text: notificationFrame(records[0]!.json, encodeCursor(inbox.epoch, 1), 1, 1), seq: 1, timestamp: 1000 },
    { userId: '2', text: notificationFrame(records[1]!.json, encodeCursor(inbox.epoch, 1), 1, 1), seq: 1, timestamp: 1001 },
    { userId: '1', text: notificationFrame(records[2]!.json, encodeCursor(inbox.epoch, 2), 2, 2), seq: 2, timestamp: 1002 }
  ]], 'one publish per batch; each frame carries the recipient\'s unread count after it')
  t.equal(timings.length, 1, 'the append was timed')
  t.ok(timings[0]! >= 0)
})

t.test('a batch consumed again is neither stored nor published twice', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1']))
  const ingest = createIngest(inbox, fanout)
  const records = consumedRecords([followNotification(bruno, emma)])
  await ingest(records)
  await ingest(records)
  t.equal(fanout.published.length, 1, 'nothing new: no publish')
  t.equal((await inbox.feed('1')).newestSeq, 1)
})

t.test('no frame is made for a recipient the fan-out cannot reach; the notification is stored all the same', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1']))
  await createIngest(inbox, fanout)(consumedRecords([followNotification(bruno, rick), followNotification(bruno, emma)]))
  t.same(fanout.published.map((messages) => messages.map(({ userId }) => userId)), [['1']])
  t.equal((await inbox.feed('3')).newestSeq, 1)
})

t.test('the batch is done once stored: a publish still on its way does not hold the consumer', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1']), new Promise(() => {}))
  await createIngest(inbox, fanout)(consumedRecords([followNotification(bruno, emma)]))
  t.equal(fanout.published.length, 1)
})

t.test('a batch the inbox cannot store is not published, and fails for the consumer to retry', async (t) => {
  const inbox = inboxFor(t)
  inbox.append = async () => { throw new InboxUnavailableError('inbox down') }
  const fanout = new RecordingFanout(new Set(['1']))
  await t.rejects(createIngest(inbox, fanout)(consumedRecords([followNotification(bruno, emma)])), InboxUnavailableError)
  t.same(fanout.published, [])
})
