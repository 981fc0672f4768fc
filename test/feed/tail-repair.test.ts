import { join } from 'node:path'
import t from 'tap'
import { TailRepair } from '../../server/feed/tail-repair.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import { InboxUnavailableError } from '../../server/inbox/types.js'
import { followNotification } from '../../server/notification.js'
import { tempDir, type TestContext } from '../helpers/gateway.js'
import { quiet } from '../helpers/quiet-log.js'
import { consumedRecords } from '../helpers/records.js'
import { RecordingFanout } from '../helpers/recording-fanout.js'

const [emma, bruno] = [{ id: '1', name: 'Emma' }, { id: '2', name: 'Bruno' }]

async function inboxWith (t: TestContext, count: number): Promise<SqliteInbox> {
  const inbox = new SqliteInbox(join(tempDir(t), 'inbox.sqlite'), { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 })
  t.teardown(() => inbox.close())
  await inbox.append(consumedRecords(Array.from({ length: count }, () => followNotification(bruno, emma))))
  return inbox
}

function repairFor (t: TestContext, inbox: SqliteInbox, fanout: RecordingFanout, repaired: number[] = []): TailRepair {
  const tail = new TailRepair(inbox, fanout, { log: quiet, onRepaired: (users) => repaired.push(users) })
  t.teardown(() => tail.close())
  return tail
}

/** What a publish carried, as [user, frame type, seq of the frame, unread, rev]. */
function summary (messages: ReadonlyArray<{ userId: string, text: string }>): unknown[] {
  return messages.map(({ userId, text }) => {
    const frame = JSON.parse(text) as { type: string, seq?: number, unread: number, rev: number }
    return [userId, frame.type, frame.seq, frame.unread, frame.rev]
  })
}

t.test('a publish handed on is not repaired; one the fan-out may have lost is, from the inbox, once: a lost unread frame with the count', async (t) => {
  const inbox = await inboxWith(t, 3)
  const fanout = new RecordingFanout(new Set(['1']))
  const repaired: number[] = []
  const tail = repairFor(t, inbox, fanout, repaired)
  tail.publish([{ userId: '1', text: 'handed on' }])
  fanout.handedOn.push(false)
  tail.publish([{ userId: '1', text: 'lost' }])
  const [, , repair] = await fanout.publishes(3)
  t.same(summary(repair!), [['1', 'notification', 3, 3, 0], ['1', 'unread', undefined, 3, 0]], 'the newest notification and the count, as the inbox has them')
  t.same(repaired, [1])
  tail.publish([])
  t.equal(fanout.published.length, 3, 'nothing more: an empty publish, and no repair left')
})

t.test('a repair waits, with backoff, until the inbox and the fan-out answer', async (t) => {
  const inbox = await inboxWith(t, 1)
  const feeds = inbox.feeds.bind(inbox)
  let asked = 0
  inbox.feeds = async (userIds) => {
    if (++asked <= 2) throw new InboxUnavailableError('inbox down')
    return await feeds(userIds)
  }
  const fanout = new RecordingFanout(new Set(['1']))
  fanout.handedOn.push(false) // the fan-out does not take the first repair either
  repairFor(t, inbox, fanout).repair(['1'])
  const [first, second] = await fanout.publishes(2)
  t.same(summary(first!), summary(second!), 'tried again after the inbox answered, and again after the fan-out lost it')
  t.equal(asked, 4, 'twice while it was down, then once per publish')
})

t.test('users nobody can be listening for are not repaired; a user suspected again during a repair is repaired again', async (t) => {
  const inbox = await inboxWith(t, 2)
  let goOn: () => void = () => {}
  const fanout = new RecordingFanout(new Set(['1']), new Promise((resolve) => { goOn = resolve }))
  const tail = repairFor(t, inbox, fanout)
  tail.repair(['1', '3'])
  const [repair] = await fanout.publishes(1)
  t.same(summary(repair!), [['1', 'notification', 2, 2, 0]], 'Emma\'s newest notification, with the count; user 3 has no tab anywhere')
  tail.repair(['1']) // while the first repair is being published
  goOn()
  const [, again] = await fanout.publishes(2)
  t.same(summary(again!), summary(repair!))
})

t.test('after close nothing is repaired', async (t) => {
  const inbox = await inboxWith(t, 1)
  const fanout = new RecordingFanout(new Set(['1']))
  const tail = repairFor(t, inbox, fanout)
  tail.close()
  tail.repair(['1'])
  fanout.handedOn.push(false)
  tail.publish([{ userId: '1', text: 'lost' }])
  await new Promise((resolve) => setImmediate(resolve))
  t.same(fanout.published.map((messages) => messages.map(({ text }) => text)), [['lost']])
})

t.test('a lost notification frame is repaired by the newest notification alone, a lost unread frame also by the count', async (t) => {
  const inbox = await inboxWith(t, 2)
  await inbox.markRead('1', { upTo: 1 })
  const fanout = new RecordingFanout(new Set(['1']))
  const tail = repairFor(t, inbox, fanout)
  fanout.handedOn.push(false)
  tail.publish([{ userId: '1', text: 'notification 2', seq: 2 }])
  const [, notificationRepair] = await fanout.publishes(2)
  t.same(summary(notificationRepair!), [['1', 'notification', 2, 1, 1]])
  fanout.handedOn.push(false)
  tail.publish([{ userId: '1', text: 'unread 1' }])
  const [, , , countRepair] = await fanout.publishes(4)
  t.same(summary(countRepair!), [['1', 'notification', 2, 1, 1], ['1', 'unread', undefined, 1, 1]], 'the count as it is now, with its rev')
})
