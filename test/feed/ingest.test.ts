import { join } from 'node:path'
import t from 'tap'
import { encodeCursor } from '../../server/feed/cursor.js'
import { notificationFrame, type GroupSummary } from '../../server/feed/frames.js'
import { createIngest } from '../../server/feed/ingest.js'
import { TailRepair } from '../../server/feed/tail-repair.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import { InboxUnavailableError, type Inbox } from '../../server/inbox/types.js'
import type { Fanout } from '../../server/fanout/types.js'
import type { BatchHandler } from '../../server/kafka/types.js'
import { followNotification } from '../../server/notification.js'
import { tempDir, type TestContext } from '../helpers/gateway.js'
import { quiet } from '../helpers/quiet-log.js'
import { consumedRecords } from '../helpers/records.js'
import { RecordingFanout } from '../helpers/recording-fanout.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const rick = { id: '3', name: 'Rick' }

function inboxFor (t: TestContext): SqliteInbox {
  const inbox = new SqliteInbox(join(tempDir(t), 'inbox.sqlite'), { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 })
  t.teardown(() => inbox.close())
  return inbox
}

/** The consumer's batch handler over `inbox` and `fanout`, with the tail repair services.ts gives it. */
function ingestFor (t: TestContext, inbox: Inbox, fanout: Fanout, onAppended?: (seconds: number) => void): BatchHandler {
  const tail = new TailRepair(inbox, fanout, { log: quiet })
  t.teardown(() => tail.close())
  return createIngest(inbox, fanout, tail, onAppended)
}

t.test('a batch is stored, then each new notification is published as its live frame, with the record\'s timestamp', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1', '2']))
  const timings: number[] = []
  const ingest = ingestFor(t, inbox, fanout, (seconds) => timings.push(seconds))
  const notifications = [followNotification(bruno, emma), followNotification(emma, bruno), followNotification(bruno, emma)]
  const records = consumedRecords(notifications).map((record, i) => ({ ...record, timestamp: 1000 + i }))
  await ingest(records, [])
  t.equal((await inbox.history('1', 10)).items.length, 2, 'stored')
  // Follows group: Emma's second follow from Bruno joins the group her first began.
  const emmasGroup = (count: number): GroupSummary => ({ id: notifications[0]!.id, key: 'follow', count, actorCount: 1, actors: [bruno] })
  t.same(fanout.published, [[
    { userId: '1', text: notificationFrame(records[0]!.json, encodeCursor(inbox.epoch, 1, 0), 1, { unread: 1, rev: 0 }, emmasGroup(1)), seq: 1, rev: 0, timestamp: 1000 },
    { userId: '2', text: notificationFrame(records[1]!.json, encodeCursor(inbox.epoch, 1, 0), 1, { unread: 1, rev: 0 }, { id: notifications[1]!.id, key: 'follow', count: 1, actorCount: 1, actors: [emma] }), seq: 1, rev: 0, timestamp: 1001 },
    { userId: '1', text: notificationFrame(records[2]!.json, encodeCursor(inbox.epoch, 2, 0), 2, { unread: 2, rev: 0 }, emmasGroup(2)), seq: 2, rev: 0, timestamp: 1002 }
  ]], 'one publish per batch; each frame carries the recipient\'s unread count after it, and its group')
  t.equal(timings.length, 1, 'the append was timed')
  t.ok(timings[0]! >= 0)
})

t.test('the batch\'s positions reach the inbox with its records: what was dead-lettered after the last record is behind the stored position', async (t) => {
  const inbox = inboxFor(t)
  const ingest = ingestFor(t, inbox, new RecordingFanout(new Set(['1'])))
  const [stored, deadLettered] = consumedRecords([followNotification(bruno, emma), followNotification(bruno, emma)])
  await ingest([stored!], [{ topic: stored!.topic, partition: stored!.partition, nextOffset: '2' }])
  await ingest([deadLettered!], [])
  t.equal((await inbox.feed('1')).newestSeq, 1, 'the record at offset 1, consumed again, is skipped')
})

t.test('a batch consumed again is neither stored nor published twice', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1']))
  const ingest = ingestFor(t, inbox, fanout)
  const records = consumedRecords([followNotification(bruno, emma)])
  await ingest(records, [])
  await ingest(records, [])
  t.equal(fanout.published.length, 1, 'nothing new: no publish')
  t.equal((await inbox.feed('1')).newestSeq, 1)
})

t.test('no frame is made for a recipient the fan-out cannot reach; the notification is stored all the same', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1']))
  await ingestFor(t, inbox, fanout)(consumedRecords([followNotification(bruno, rick), followNotification(bruno, emma)]), [])
  t.same(fanout.published.map((messages) => messages.map(({ userId }) => userId)), [['1']])
  t.equal((await inbox.feed('3')).newestSeq, 1)
})

t.test('the batch is done once stored: a publish still on its way does not hold the consumer', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1']), new Promise(() => {}))
  await ingestFor(t, inbox, fanout)(consumedRecords([followNotification(bruno, emma)]), [])
  t.equal(fanout.published.length, 1)
})

t.test('a batch the inbox cannot store is not published, and fails for the consumer to retry; its users\' tails are republished as the inbox has them', async (t) => {
  const inbox = inboxFor(t)
  const append = inbox.append.bind(inbox)
  await append(consumedRecords([followNotification(bruno, emma)], { firstOffset: 0 }), [])
  inbox.append = async () => { throw new InboxUnavailableError('inbox down') }
  const fanout = new RecordingFanout(new Set(['1']))
  await t.rejects(ingestFor(t, inbox, fanout)(consumedRecords([followNotification(bruno, emma)], { firstOffset: 1 }), []), InboxUnavailableError)
  const [repair] = await fanout.publishes(1)
  t.same(repair!.map(({ text }) => JSON.parse(text) as unknown), [
    { type: 'notification', notification: (await inbox.history('1', 1)).items[0]!.notification, cursor: encodeCursor(inbox.epoch, 1, 0), seq: 1, unread: 1, rev: 0 }
  ], 'not the batch (it was not stored): Emma\'s newest notification and count as the inbox has them; tabs that have it drop it')
})

// A COMMIT whose answer is lost. The retry skips every record as applied, and
// before this nothing was ever published for them.
t.test('an append that was stored but answered with an error: the retry publishes nothing new, and the batch\'s users\' tails are republished from the inbox', async (t) => {
  const inbox = inboxFor(t)
  const append = inbox.append.bind(inbox)
  let lose = true
  inbox.append = async (records, positions) => {
    const result = await append(records, positions)
    if (!lose) return result
    lose = false
    throw new InboxUnavailableError('inbox (PostgreSQL) unreachable: Connection terminated unexpectedly')
  }
  const fanout = new RecordingFanout(new Set(['1', '2']))
  const ingest = ingestFor(t, inbox, fanout)
  const records = consumedRecords([followNotification(bruno, emma), followNotification(rick, emma), followNotification(emma, bruno), followNotification(bruno, rick)])
  await t.rejects(ingest(records, []), InboxUnavailableError)
  await ingest(records, []) // the consumer's retry: every record applied already
  const [repair] = await fanout.publishes(1)
  t.equal(fanout.published.length, 1, 'the retry published nothing')
  const frames = repair!.map(({ userId, text, seq }) => ({ userId, seq, frame: JSON.parse(text) as { type: string, seq?: number, unread: number, rev: number } }))
  t.same(frames.map(({ userId, seq, frame }) => [userId, frame.type, seq, frame.seq, frame.unread, frame.rev]), [
    ['1', 'notification', 2, 2, 2, 0],
    ['2', 'notification', 1, 1, 1, 0]
  ], 'each reachable user of the batch: the newest notification with the count, as stored; Rick has no tab anywhere')
})

t.test('a publish the fan-out could not hand on: its users\' tails are republished from the inbox', async (t) => {
  const inbox = inboxFor(t)
  const fanout = new RecordingFanout(new Set(['1']))
  fanout.handedOn.push(false)
  const records = consumedRecords([followNotification(bruno, emma)])
  await ingestFor(t, inbox, fanout)(records, [])
  const [lost, repair] = await fanout.publishes(2)
  t.same(repair, [
    { userId: '1', text: notificationFrame(records[0]!.json, encodeCursor(inbox.epoch, 1, 0), 1, { unread: 1, rev: 0 }), seq: 1, rev: 0 }
  ], 'the lost frame again, from the inbox')
  t.equal(lost![0]!.seq, 1)
})
