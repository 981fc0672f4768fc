// The behaviour every inbox shares, run against each store by its own test file
// (sqlite-inbox.test.ts, postgres-inbox.test.ts). tap's config excludes this file: it defines
// tests, it is not one.
import type { Test } from 'tap'
import { InboxRefusedError, type AppendedNotification, type Inbox, type RetentionPolicy } from '../../server/inbox/types.js'
import type { ConsumedRecord } from '../../server/kafka/types.js'
import fc from 'fast-check'
import { followNotification, uuidv7, type Notification } from '../../server/notification.js'
import { consumedRecords } from '../helpers/records.js'

export const DAY_MS = 24 * 60 * 60 * 1000
export const KEEP_ALL: RetentionPolicy = { maxPerUser: 1_000_000, maxAgeMs: 365 * DAY_MS }
export const TOPIC = 'notifications'

/** One empty store: `open` gives an inbox on it, again and again (a restart), with the same data. */
export interface InboxStore {
  open (retention?: RetentionPolicy): Promise<Inbox>
}

/** Makes an empty store for the test `t`, and removes it at t's teardown. */
export type InboxStoreFactory = (t: Test) => Promise<InboxStore>

type UserId = '1' | '2' | '3'
const users: Record<UserId, { id: string, name: string }> = {
  1: { id: '1', name: 'Emma' },
  2: { id: '2', name: 'Bruno' },
  3: { id: '3', name: 'Rick' }
}

/** A follow notification for `recipient`, created `ageMs` ago. */
export function notificationFor (recipient: UserId, ageMs = 0): Notification {
  const follower = recipient === '3' ? users['1'] : users['3']
  const createdAt = Date.now() - ageMs
  return { ...followNotification(follower, users[recipient], uuidv7(createdAt)), createdAt: new Date(createdAt).toISOString() }
}

/** Records of one partition, at consecutive offsets from `firstOffset`. */
export function recordsOf (notifications: Notification[], partition = 0, firstOffset = 0): ConsumedRecord[] {
  return consumedRecords(notifications, { topic: TOPIC, partition, firstOffset })
}

/**
 * An inbox fed as the consumer feeds it: each notification is the next record of partition 0.
 * `append` returns what was stored; `inbox.append` is there for tests of positions.
 */
export interface Fed {
  inbox: Inbox
  append (notifications: Notification[]): Promise<AppendedNotification[]>
}

export function fed (inbox: Inbox, firstOffset = 0): Fed {
  let offset = firstOffset
  return {
    inbox,
    append: async (notifications) => {
      const records = recordsOf(notifications, 0, offset)
      offset += notifications.length
      return (await inbox.append(records)).appended
    }
  }
}

export function inboxContract (t: Test, newStore: InboxStoreFactory): void {
  /** A fresh store's inbox, closed at teardown. */
  const openInbox = async (t: Test, retention = KEEP_ALL): Promise<Fed> => {
    const inbox = await (await newStore(t)).open(retention)
    t.teardown(() => inbox.close().catch(() => {}))
    return fed(inbox)
  }

  t.test('append stores a batch and returns the new notifications in order, each with its user\'s next seq', async (t) => {
    const { append } = await openInbox(t)
    const batch = [notificationFor('1'), notificationFor('2'), notificationFor('1')]
    const appended = await append(batch)
    t.same(appended.map(({ notification }) => notification), batch)
    t.same(appended.map(({ seq }) => seq), [1, 1, 2])
    t.same(await append([]), [], 'an empty batch stores nothing')
  })

  t.test('append is idempotent on the notification id', async (t) => {
    const { inbox, append } = await openInbox(t)
    const first = notificationFor('1')
    const second = notificationFor('1')
    t.equal((await append([first])).length, 1)
    t.same(await append([first]), [], 'the same id again is not returned')
    const mixed = await append([first, second])
    t.same(mixed.map(({ notification }) => notification.id), [second.id], 'only the new one of a mixed batch')
    const third = notificationFor('1')
    t.same((await append([third, third])).map(({ notification }) => notification.id), [third.id], 'a duplicate within one batch is returned once')
    const { items } = await inbox.history('1', 100)
    t.same(items.map(({ notification }) => notification.id), [third.id, second.id, first.id], 'each id stored once')
    t.equal(await inbox.unread('1'), 3)
  })

  t.test('a redelivered id keeps its first body and read state', async (t) => {
    const { inbox, append } = await openInbox(t)
    const original = notificationFor('1')
    const [stored] = await append([original])
    await inbox.markRead('1', { upTo: stored!.seq })
    await append([{ ...original, message: 'changed' }])
    const { items } = await inbox.history('1', 10)
    t.same(items, [{ seq: stored!.seq, notification: original, read: true, archived: false, groupId: original.id }])
  })

  t.test('history pages newest first with limit/before, without overlap or hole', async (t) => {
    const { inbox, append } = await openInbox(t)
    const emmas: Notification[] = []
    for (let i = 0; i < 8; i++) {
      const emma = notificationFor('1')
      emmas.push(emma)
      await append(i % 3 === 0 ? [emma, notificationFor('2')] : [emma])
    }
    const newestFirst = [...emmas].reverse().map(({ id }) => id)

    const pages: string[][] = []
    let before: number | undefined
    for (;;) {
      const page = await inbox.history('1', 3, before)
      pages.push(page.items.map(({ notification }) => notification.id))
      const seqs = page.items.map(({ seq }) => seq)
      t.same(seqs, [...seqs].sort((a, b) => b - a), 'each page is newest first')
      if (page.nextBefore === null) break
      t.equal(page.nextBefore, seqs.at(-1), 'nextBefore is the last item\'s seq')
      before = page.nextBefore
    }
    t.same(pages.map((page) => page.length), [3, 3, 2])
    t.same(pages.flat(), newestFirst, 'the pages together are the whole history, once each, in order')

    const exact = await inbox.history('1', 8)
    t.equal(exact.items.length, 8)
    t.equal(exact.nextBefore, null, 'a page that holds everything has no next page')
    const lastFull = await inbox.history('1', 4, (await inbox.history('1', 4)).nextBefore!)
    t.equal(lastFull.items.length, 4)
    t.equal(lastFull.nextBefore, null, 'nor does a full last page')

    t.same((await inbox.history('3', 10)), { items: [], nextBefore: null }, 'a user with nothing')
    t.same((await inbox.history('1', 10, 1)).items, [], 'nothing before the first seq')
  })

  t.test('history items carry seq, the notification and the read flag', async (t) => {
    const { inbox, append } = await openInbox(t)
    const notification = notificationFor('1')
    const [stored] = await append([notification])
    t.same((await inbox.history('1', 1)).items, [{ seq: stored!.seq, notification, read: false, archived: false, groupId: notification.id }])
  })

  t.test('after returns a user\'s notifications after a seq, oldest first, at most limit', async (t) => {
    const { inbox, append } = await openInbox(t)
    const appended = await append([notificationFor('1'), notificationFor('2'), notificationFor('1'), notificationFor('1'), notificationFor('1')])
    const emmas = appended.filter(({ notification }) => notification.userId === '1')
    const from = emmas[0]!.seq
    const page = await inbox.after('1', from, 2)
    t.same(page.map(({ seq }) => seq), [emmas[1]!.seq, emmas[2]!.seq])
    const rest = await inbox.after('1', page.at(-1)!.seq, 10)
    t.same(rest.map(({ seq }) => seq), [emmas[3]!.seq])
    t.same(await inbox.after('1', emmas[3]!.seq, 10), [], 'nothing after the newest')
    t.same((await inbox.after('1', 0, 10)).map(({ notification }) => notification.id), emmas.map(({ notification }) => notification.id))
    t.ok((await inbox.after('2', 0, 10)).every(({ notification }) => notification.userId === '2'))
  })

  t.test('unread and markRead', async (t) => {
    const { inbox, append } = await openInbox(t)
    const emmas = await append([notificationFor('1'), notificationFor('1'), notificationFor('1'), notificationFor('1')])
    const brunos = await append([notificationFor('2'), notificationFor('2')])
    t.equal(await inbox.unread('1'), 4)
    t.equal(await inbox.unread('2'), 2)
    t.equal(await inbox.unread('3'), 0)

    t.test('upTo marks every item at or before the cursor', async (t) => {
      t.same(await inbox.markRead('1', { upTo: emmas[1]!.seq }), { newestSeq: 4, unread: 2, rev: 1 }, 'returns the feed after it: the new unread count, one read-state change')
      const read = (await inbox.history('1', 10)).items.map(({ seq, read }) => [seq, read])
      t.same(read, [[emmas[3]!.seq, false], [emmas[2]!.seq, false], [emmas[1]!.seq, true], [emmas[0]!.seq, true]])
      t.same(await inbox.markRead('1', { upTo: emmas[1]!.seq }), { newestSeq: 4, unread: 2, rev: 1 }, 'again: no change, no new rev')
    })

    t.test('ids marks those items only', async (t) => {
      t.same(await inbox.markRead('1', { ids: [emmas[3]!.notification.id] }), { newestSeq: 4, unread: 1, rev: 2 })
      t.same((await inbox.history('1', 1)).items[0]?.read, true)
      t.same(await inbox.markRead('1', { ids: ['01930000-0000-7000-8000-000000000000'] }), { newestSeq: 4, unread: 1, rev: 2 }, 'an unknown id changes nothing')
    })

    t.test('another user\'s ids or cursor change nothing', async (t) => {
      t.same(await inbox.markRead('1', { ids: brunos.map(({ notification }) => notification.id) }), { newestSeq: 4, unread: 1, rev: 2 })
      t.equal(await inbox.unread('2'), 2, 'Bruno\'s items stay unread')
      t.ok((await inbox.history('2', 10)).items.every(({ read }) => !read))
      t.same(await inbox.markRead('3', { upTo: Number.MAX_SAFE_INTEGER }), { newestSeq: 0, unread: 0, rev: 0 })
      t.equal(await inbox.unread('2'), 2)
      t.equal(await inbox.unread('1'), 1)
      t.same(await inbox.feed('2'), { newestSeq: 2, unread: 2, rev: 0 }, 'Bruno\'s rev did not move')
    })
  })

  t.test('each user\'s feed is numbered 1, 2, 3… with no gaps, whatever other users get', async (t) => {
    const { inbox, append } = await openInbox(t)
    const appended = await append([notificationFor('1'), notificationFor('2'), notificationFor('1'), notificationFor('1'), notificationFor('2')])
    t.same(appended.map(({ notification, seq }) => [notification.userId, seq]), [['1', 1], ['2', 1], ['1', 2], ['1', 3], ['2', 2]])
    const duplicate = appended[0]!.notification
    t.same((await append([duplicate, notificationFor('1')])).map(({ seq }) => seq), [4], 'a duplicate id takes no seq')
    t.same(await inbox.feed('1'), { newestSeq: 4, unread: 4, rev: 0 })
    t.same(await inbox.feed('3'), { newestSeq: 0, unread: 0, rev: 0 }, 'a user with nothing')
    t.same([...await inbox.feeds(['3', '1', '2'])], [['3', { newestSeq: 0, unread: 0, rev: 0 }], ['1', { newestSeq: 4, unread: 4, rev: 0 }], ['2', { newestSeq: 2, unread: 2, rev: 0 }]],
      'feeds reads several at once, in the order asked')
  })

  t.test('append returns each recipient\'s unread count after the batch, kept without a count query', async (t) => {
    const { inbox } = await openInbox(t)
    const first = await inbox.append([
      ...recordsOf([notificationFor('1')], 0, 0),
      ...recordsOf([notificationFor('2')], 1, 0),
      ...recordsOf([notificationFor('1')], 0, 1)
    ])
    t.same([...first.unread], [['1', 2], ['2', 1]])
    await inbox.markRead('1', { upTo: 1 })
    const second = await inbox.append(recordsOf([notificationFor('1')], 0, 2))
    t.same([...second.unread], [['1', 2]], 'read marks count')
    t.same(second.appended.map(({ seq, unread, rev }) => [seq, unread, rev]), [[3, 2, 1]], 'each appended row has its count and the feed\'s rev then')
  })

  t.test('a record at or below its partition\'s stored position is skipped, even after retention deleted its row', async (t) => {
    const { inbox } = await openInbox(t, { maxPerUser: 2, maxAgeMs: 365 * DAY_MS })
    const records = recordsOf(Array.from({ length: 5 }, () => notificationFor('1')))
    t.equal((await inbox.append(records)).appended.length, 5)
    t.equal(await inbox.prune(), 3, 'the cap deleted the three oldest rows')
    const again = await inbox.append(records)
    t.same(again.appended, [], 'the same records consumed again (a new group id, a restore) are not stored again')
    t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), [5, 4], 'and the newest rows are still there')
    t.same(await inbox.feed('1'), { newestSeq: 5, unread: 2, rev: 0 })
    const otherPartition = await inbox.append(recordsOf([notificationFor('1')], 1, 0))
    t.same(otherPartition.appended.map(({ seq }) => seq), [6], 'positions are per partition')
    const otherTopic = await inbox.append(consumedRecords([notificationFor('1')], { topic: 'other' }))
    t.same(otherTopic.appended.map(({ seq }) => seq), [7], 'and per topic')
    const mixed = await inbox.append([records[4]!, ...recordsOf([notificationFor('1')], 0, 5)])
    t.same(mixed.appended.map(({ seq }) => seq), [8], 'a batch that overlaps the stored position stores only the new part')
  })

  // A partition's dead-lettered tail is consumed too: the stored position must say so, or a check of
  // the positions against the group's committed offsets would take it for a store that lost writes.
  t.test('positions given with a batch move each partition\'s stored position past records it did not get, never back', async (t) => {
    const { inbox } = await openInbox(t)
    const records = recordsOf(Array.from({ length: 6 }, () => notificationFor('1')))
    const first = await inbox.append(records.slice(0, 2), [{ topic: TOPIC, partition: 0, nextOffset: '4' }])
    t.same(first.appended.map(({ seq }) => seq), [1, 2])
    t.same((await inbox.append([records[2]!, records[3]!])).appended, [], 'offsets 2 and 3 (dead-lettered) are behind the position')
    t.same((await inbox.append([], [{ topic: TOPIC, partition: 0, nextOffset: '1' }])).appended, [], 'a position alone stores nothing')
    t.same((await inbox.append([records[4]!])).appended.map(({ seq }) => seq), [3], 'and an older one does not move it back')
    await inbox.append([], [{ topic: TOPIC, partition: 1, nextOffset: '7' }])
    t.same((await inbox.append([{ ...records[5]!, partition: 1, offset: '6' }])).appended, [], 'a partition seen only through a position has one')
  })

  // Regression: a store that lost acknowledged writes (a failover to a standby
  // that lagged, a restored copy) must be refilled from its own positions, in a new epoch.
  t.test('reconcile returns the stored positions, and begins a new epoch once per loss when they are behind the group\'s committed offsets', async (t) => {
    const { inbox } = await openInbox(t)
    await inbox.append(recordsOf(Array.from({ length: 5 }, () => notificationFor('1'))))
    const epoch = inbox.epoch
    t.same(await inbox.reconcile(TOPIC, new Map([[0, 5n], [1, -1n]])), { stored: new Map([[0, 5n], [1, 0n]]) }, 'in step with the group (and a partition never consumed): nothing changes')
    t.same(await inbox.reconcile(TOPIC, new Map([[0, 3n]])), { stored: new Map([[0, 5n]]) }, 'ahead of the group\'s commits (by up to a second): nothing changes')
    t.equal(inbox.epoch, epoch)
    const lost = await inbox.reconcile(TOPIC, new Map([[0, 8n]]))
    t.same(lost.stored, new Map([[0, 5n]]), 'behind: the position to consume again from')
    t.match(lost.epochChanged, /behind the consumer group's committed offsets \(partition 0: 5 < 8\)/, 'a new epoch, saying why')
    t.not(inbox.epoch, epoch)
    const renewed = inbox.epoch
    t.same(await inbox.reconcile(TOPIC, new Map([[0, 8n]])), { stored: new Map([[0, 5n]]) }, 'checked again before it is made good: the same loss, no other epoch')
    await inbox.append(recordsOf(Array.from({ length: 3 }, () => notificationFor('1')), 0, 5))
    t.same(await inbox.reconcile(TOPIC, new Map([[0, 8n]])), { stored: new Map([[0, 8n]]) }, 'made good')
    t.equal(inbox.epoch, renewed)
    t.match((await inbox.reconcile('other', new Map([[0, 1n]]))).epochChanged, /partition 0: 0 < 1/, 'positions are per topic: another topic\'s partition 0 has none')
  })

  // Regression: the consumer isolates what the store refuses and dead-letters it.
  t.test('a record the store cannot hold is refused with InboxRefusedError, and nothing of the call is stored', async (t) => {
    const { inbox, append } = await openInbox(t)
    const impossible = { ...notificationFor('1'), createdAt: 'not a date' }
    await t.rejects(inbox.append(recordsOf([notificationFor('1'), impossible, notificationFor('1')])), InboxRefusedError)
    t.same(await inbox.feed('1'), { newestSeq: 0, unread: 0, rev: 0 }, 'nothing was stored')
    t.same((await append([notificationFor('1')])).map(({ seq }) => seq), [1], 'the store goes on')
  })

  t.test('concurrent appends of overlapping batches of one partition store each record once', async (t) => {
    // As during a rebalance: the new owner of a partition starts from the committed offset, at or
    // below where the old owner's batch in flight starts.
    const { inbox } = await openInbox(t)
    const notifications = Array.from({ length: 60 }, (_, i) => notificationFor((['1', '2'] as const)[i % 2]!))
    const records = recordsOf(notifications)
    const results = await Promise.all([inbox.append(records.slice(0, 40)), inbox.append(records), inbox.append(records.slice(0, 20))])
    const appended = results.flatMap(({ appended }) => appended)
    t.equal(appended.length, 60, 'every record stored by exactly one of the calls')
    for (const userId of ['1', '2']) {
      const mine = notifications.filter((notification) => notification.userId === userId)
      const stored = await inbox.after(userId, 0, 100)
      t.same(stored.map(({ seq }) => seq), mine.map((_, i) => i + 1), `${userId}'s feed is 1…${mine.length}, no gap, no duplicate`)
      t.same(stored.map(({ notification }) => notification.id), mine.map(({ id }) => id), `in ${userId}'s offset order`)
      t.same(await inbox.feed(userId), { newestSeq: mine.length, unread: mine.length, rev: 0 })
    }
  })

  t.test('prune keeps the newest maxPerUser of each user and lowers the unread count', async (t) => {
    const { inbox, append } = await openInbox(t, { maxPerUser: 3, maxAgeMs: 365 * DAY_MS })
    const emmas = await append(Array.from({ length: 5 }, () => notificationFor('1')))
    const brunos = await append([notificationFor('2'), notificationFor('2')])
    await inbox.markRead('1', { upTo: 1 })
    t.equal(await inbox.prune(), 2, 'two of Emma\'s went')
    t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), emmas.slice(2).map(({ seq }) => seq).reverse())
    t.same((await inbox.history('2', 10)).items.map(({ seq }) => seq), brunos.map(({ seq }) => seq).reverse(), 'Bruno is under the cap')
    t.equal(await inbox.unread('1'), 3, 'one read and one unread row went: 4 unread before, 3 now')
    t.equal(await inbox.prune(), 0, 'nothing more to prune')
    t.equal((await inbox.feed('1')).newestSeq, 5, 'the feed goes on from 5')
  })

  t.test('prune removes what is older than maxAge', async (t) => {
    const { inbox, append } = await openInbox(t, { maxPerUser: 1000, maxAgeMs: DAY_MS })
    await append([notificationFor('1', 3 * DAY_MS), notificationFor('2', 2 * DAY_MS)])
    const fresh = await append([notificationFor('1', 60_000), notificationFor('2')])
    t.equal(await inbox.prune(), 2)
    t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), [fresh[0]!.seq])
    t.same((await inbox.history('2', 10)).items.map(({ seq }) => seq), [fresh[1]!.seq])
    t.equal(await inbox.unread('1'), 1)
    t.equal(await inbox.prune(Date.now() + 2 * DAY_MS), 2, 'prune takes the time to prune at')
    t.same((await inbox.history('1', 10)).items, [])
    t.equal(await inbox.unread('1'), 0)
  })

  t.test('prune deletes expired rows a bounded chunk at a time', async (t) => {
    const { inbox, append } = await openInbox(t, { maxPerUser: 1_000_000, maxAgeMs: DAY_MS })
    await append(Array.from({ length: 2500 }, (_, i) => notificationFor((['1', '2'] as const)[i % 2]!, 2 * DAY_MS)))
    const kept = await append([notificationFor('1')])
    t.equal(await inbox.prune(), 2000, 'one chunk')
    t.equal(await inbox.prune(), 500, 'the rest')
    t.equal(await inbox.prune(), 0, 'then nothing')
    t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), [kept[0]!.seq])
    t.equal(await inbox.unread('1'), 1)
    t.equal(await inbox.unread('2'), 0)
  })

  t.test('a lower cap applies after a restart to users who get nothing new, a bounded chunk at a time even of one user', async (t) => {
    const store = await newStore(t)
    const before = fed(await store.open())
    await before.append(Array.from({ length: 2600 }, () => notificationFor('1')))
    await before.inbox.close()
    const inbox = await store.open({ maxPerUser: 100, maxAgeMs: 365 * DAY_MS })
    t.teardown(() => inbox.close())
    t.equal(await inbox.prune(), 2000, 'one chunk of the user\'s 2,500 over the cap')
    t.equal(await inbox.prune(), 500, 'the rest')
    t.equal(await inbox.prune(), 0, 'then nothing')
    t.same((await inbox.after('1', 0, 1000)).map(({ seq }) => seq), Array.from({ length: 100 }, (_, i) => 2501 + i), 'the newest 100 stay')
    t.equal((await inbox.history('1', 1000)).items.length, 100, 'history holds the cap')
    t.same(await inbox.feed('1'), { newestSeq: 2600, unread: 100, rev: 0 })
  })

  t.test('everything survives close and reopen, in the same epoch', async (t) => {
    const store = await newStore(t)
    const first = fed(await store.open())
    const appended = await first.append([notificationFor('1'), notificationFor('1'), notificationFor('2')])
    await first.inbox.markRead('1', { upTo: appended[0]!.seq })
    const before = await first.inbox.history('1', 10)
    await first.inbox.close()

    const inbox = await store.open()
    t.teardown(() => inbox.close())
    const { append } = fed(inbox, 3)
    t.equal(inbox.epoch, first.inbox.epoch, 'a clean close keeps the epoch')
    t.same(await inbox.history('1', 10), before, 'history and read state')
    t.equal(await inbox.unread('1'), 1)
    t.equal((await inbox.feed('1')).rev, 1, 'and the read state\'s rev')
    t.equal(await inbox.unread('2'), 1)
    t.same(await append([appended[1]!.notification]), [], 'ids stored before the restart are still deduplicated')
    const [next] = await append([notificationFor('1')])
    t.equal(next!.seq, 3, 'the feed goes on from where it was')
  })

  t.test('seq is never reused after deletes, even across a restart', async (t) => {
    const store = await newStore(t)
    const first = fed(await store.open({ maxPerUser: 1, maxAgeMs: DAY_MS }))
    await first.append([notificationFor('1'), notificationFor('1')])
    await first.inbox.prune()
    await first.inbox.close()
    const inbox = await store.open()
    t.teardown(() => inbox.close())
    const [next] = await fed(inbox, 2).append([notificationFor('1')])
    t.equal(next!.seq, 3)
  })

  t.test('a fresh store has an epoch of its own, fit for a cursor', async (t) => {
    const [first, second] = await Promise.all([openInbox(t), openInbox(t)])
    t.match(first.inbox.epoch, /^[0-9a-z]{1,16}$/, 'the epoch part of CURSOR_PATTERN')
    t.not(first.inbox.epoch, second.inbox.epoch)
  })

  t.test('one user\'s queries never return another user\'s rows', async (t) => {
    const { inbox, append } = await openInbox(t)
    const all = await append(Array.from({ length: 30 }, (_, i) => notificationFor((['1', '2', '3'] as const)[i % 3]!)))
    for (const userId of ['1', '2', '3'] as const) {
      const mine = all.filter(({ notification }) => notification.userId === userId).map(({ seq }) => seq)
      const history = await inbox.history(userId, 100)
      t.same(history.items.map(({ seq }) => seq), [...mine].reverse(), `history of ${userId}`)
      const paged = await inbox.history(userId, 3, all.at(-1)!.seq)
      t.ok(paged.items.every(({ notification }) => notification.userId === userId), `a page of ${userId} before another user's cursor`)
      t.same((await inbox.after(userId, 0, 100)).map(({ seq }) => seq), mine, `after() of ${userId}`)
      t.equal(await inbox.unread(userId), 10)
    }
    t.same(await inbox.history('4', 100), { items: [], nextBefore: null })
  })

  feedStateContract(t, openInbox)
}

/** A notification of `type` for `userId` from `actor`, created at `createdAt` (ms), with `groupKey` when given. */
function notificationOf (userId: string, actor: { id: string, name: string } | null, createdAt = Date.now(), type = 'follow', groupKey?: string): Notification {
  const base = followNotification(actor ?? { id: 'system', name: 'System' }, { id: userId, name: userId }, uuidv7(createdAt))
  return { ...base, type, actor, createdAt: new Date(createdAt).toISOString(), ...(groupKey === undefined ? {} : { groupKey }) }
}

/** What a feed's state should be: every notification's flags, the seen mark, the rev. */
interface ModelRow { id: string, seq: number, read: boolean, archived: boolean, deleted: boolean }
class FeedModel {
  rows: ModelRow[] = []
  seen = 0
  rev = 0
  get unread (): number { return this.rows.filter((row) => !row.read && !row.archived && !row.deleted).length }
  get unseen (): number { return this.rows.filter((row) => row.seq > this.seen && !row.archived && !row.deleted).length }
  /** Applies a change to the rows `pick` selects that are not deleted; a change that changes something takes a rev. */
  change (pick: (row: ModelRow) => boolean, apply: (row: ModelRow) => boolean): void {
    let changed = false
    for (const row of this.rows.filter((row) => !row.deleted && pick(row))) changed = apply(row) || changed
    if (changed) this.rev++
  }
}

type Op =
  | { kind: 'append', actor: number }
  | { kind: 'read' | 'unread' | 'archive' | 'unarchive' | 'delete', pick: number[] }
  | { kind: 'read-up-to' | 'archive-up-to' | 'seen', at: number }

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), actor: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constantFrom('read' as const, 'unread' as const, 'archive' as const, 'unarchive' as const, 'delete' as const), pick: fc.array(fc.nat(30), { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constantFrom('read-up-to' as const, 'archive-up-to' as const, 'seen' as const), at: fc.nat(30) })
)

function feedStateContract (t: Test, openInbox: (t: Test, retention?: RetentionPolicy) => Promise<Fed>): void {
  t.test('unread, unseen and rev follow a model through any sequence of appends and state changes', async (t) => {
    const { inbox, append } = await openInbox(t)
    let run = 0
    await fc.assert(fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 25 }), async (ops) => {
      const userId = `p${run++}`
      const model = new FeedModel()
      for (const op of ops) {
        const at = (n: number): ModelRow | undefined => model.rows[n % Math.max(1, model.rows.length)]
        switch (op.kind) {
          case 'append': {
            const [stored] = await append([notificationOf(userId, { id: `a${op.actor}`, name: `A${op.actor}` })])
            model.rows.push({ id: stored!.notification.id, seq: stored!.seq, read: false, archived: false, deleted: false })
            break
          }
          case 'read-up-to':
          case 'archive-up-to':
          case 'seen': {
            const upToSeq = at(op.at)?.seq ?? 0
            const kind = op.kind === 'seen' ? 'seen' : op.kind === 'read-up-to' ? 'read' : 'archive'
            await inbox.changeState(userId, { op: kind, upToSeq })
            if (kind === 'seen') {
              if (upToSeq > model.seen) {
                model.seen = upToSeq
                model.rev++
              }
            } else {
              const flag = kind === 'read' ? 'read' : 'archived'
              model.change((row) => row.seq <= upToSeq, (row) => !row[flag] && (row[flag] = true))
            }
            break
          }
          default: {
            const ids = [...new Set(op.pick.map((n) => at(n)?.id).filter((id) => id !== undefined))]
            if (ids.length === 0) break
            await inbox.changeState(userId, { op: op.kind, ids })
            const picked = (row: ModelRow): boolean => ids.includes(row.id)
            if (op.kind === 'read') model.change(picked, (row) => !row.read && (row.read = true))
            if (op.kind === 'unread') model.change(picked, (row) => row.read && !(row.read = false))
            if (op.kind === 'archive') model.change(picked, (row) => !row.archived && (row.archived = true))
            if (op.kind === 'unarchive') model.change(picked, (row) => row.archived && !(row.archived = false))
            if (op.kind === 'delete') model.change(picked, (row) => { row.deleted = true; row.read = true; row.archived = false; return true })
          }
        }
        const snapshot = await inbox.snapshot(userId)
        const expected = { newestSeq: model.rows.length, unread: model.unread, rev: model.rev, unseen: model.unseen }
        if (JSON.stringify(snapshot) !== JSON.stringify(expected)) throw new Error(`after ${JSON.stringify(op)}: ${JSON.stringify(snapshot)} ≠ the model's ${JSON.stringify(expected)}`)
      }
      const inboxView = (await inbox.history(userId, 100)).items.map(({ seq }) => seq)
      const archiveView = (await inbox.history(userId, 100, undefined, { archived: true })).items.map(({ seq }) => seq)
      const visible = (archived: boolean): number[] => model.rows.filter((row) => !row.deleted && row.archived === archived).map(({ seq }) => seq).reverse()
      if (JSON.stringify(inboxView) !== JSON.stringify(visible(false)) || JSON.stringify(archiveView) !== JSON.stringify(visible(true))) throw new Error('history differs from the model')
      const log = await inbox.stateAfter(userId, 0, 1000)
      if (log.changes.map(({ rev }) => rev).join() !== Array.from({ length: model.rev }, (_, i) => i + 1).join()) throw new Error('the state log is not every rev, in order')
    }), { numRuns: 30 })
    t.pass('30 random sequences: the counts exact after every step, the history and the state log as the model says')
  })

  t.test('a state change is logged with its rev, the feed\'s seq, what it changed and the counts after it; a no-op takes no rev', async (t) => {
    const { inbox, append } = await openInbox(t)
    const [one, two] = await append([notificationFor('1'), notificationFor('1')])
    const read = await inbox.changeState('1', { op: 'read', ids: [one!.notification.id, 'not-hers'] })
    t.same(read, { feed: { newestSeq: 2, unread: 1, rev: 1, unseen: 2 }, change: { rev: 1, seq: 2, changes: [{ op: 'read', ids: [one!.notification.id] }], unread: 1, unseen: 2 } })
    t.same(await inbox.changeState('1', { op: 'read', ids: [one!.notification.id] }), { feed: { newestSeq: 2, unread: 1, rev: 1, unseen: 2 }, change: undefined }, 'read already: no rev')
    await inbox.changeState('1', { op: 'archive', upToSeq: 2 })
    await inbox.changeState('1', { op: 'seen', upToSeq: 99 })
    const log = await inbox.stateAfter('1', 1, 10)
    t.same(log, {
      floor: 0,
      changes: [
        { rev: 2, seq: 2, changes: [{ op: 'archive', upToSeq: 2 }], unread: 0, unseen: 0 },
        { rev: 3, seq: 2, changes: [{ op: 'seen', upToSeq: 2 }], unread: 0, unseen: 0 }
      ]
    }, 'after a rev, in rev order; a seen mark past the newest stops at it')
    t.same((await inbox.stateAfter('1', 0, 1)).changes.map(({ rev }) => rev), [1], 'at most limit')
    t.same(await inbox.changeState('2', { op: 'archive', ids: [two!.notification.id] }), { feed: { newestSeq: 0, unread: 0, rev: 0, unseen: 0 }, change: undefined }, 'another user\'s ids: nothing')
    t.same(await inbox.markRead('1', { upTo: 2 }), { newestSeq: 2, unread: 0, rev: 4 }, 'markRead is a read change (of archived ones too)')
  })

  t.test('a change "up to" a seq past the newest covers what is stored, and is logged so: a notification stored after it stays unread on replay', async (t) => {
    const { inbox, append } = await openInbox(t)
    await append([notificationFor('1'), notificationFor('1')])
    const { change } = await inbox.changeState('1', { op: 'read', upToSeq: 999_999_999 })
    t.same(change?.changes, [{ op: 'read', upToSeq: 2 }], 'logged up to the newest seq it covered')
    const { change: cleared } = await inbox.changeState('1', { op: 'archive', upToSeq: 999_999_999 })
    t.same(cleared?.changes, [{ op: 'archive', upToSeq: 2 }])
    await append([notificationFor('1')])
    t.same(await inbox.snapshot('1'), { newestSeq: 3, unread: 1, rev: 2, unseen: 1 }, 'the later notification is unread and in the inbox')
    t.same((await inbox.stateAfter('1', 0, 10)).changes.map(({ changes }) => changes), [[{ op: 'read', upToSeq: 2 }], [{ op: 'archive', upToSeq: 2 }]], 'a client replaying the log leaves seq 3 alone')
  })

  t.test('a deleted notification is a tombstone that keeps its seq, leaves history and counts, and a record consumed again never brings it back', async (t) => {
    const { inbox } = await openInbox(t)
    const notifications = [notificationFor('1'), { ...notificationFor('1'), title: 'Secret', data: { a: 1 } }, notificationFor('1')]
    const records = recordsOf(notifications)
    await inbox.append(records)
    await inbox.changeState('1', { op: 'delete', ids: [notifications[1]!.id] })
    t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), [3, 1])
    const replay = await inbox.after('1', 0, 10)
    t.same(replay.map(({ seq }) => seq), [1, 2, 3], 'the replay stays contiguous')
    const { id, type, userId, createdAt } = notifications[1]!
    t.same(replay[1]!.notification, { id, type, userId, createdAt, actor: null, message: '', deleted: true }, 'nothing of its content')
    t.same(await inbox.snapshot('1'), { newestSeq: 3, unread: 2, rev: 1, unseen: 2 })
    t.same((await inbox.append(records)).appended, [], 'consumed again: skipped by its position')
    t.same((await inbox.append(recordsOf([notifications[1]!], 1, 100))).appended, [], 'produced again (a new offset): its id stays taken')
    t.same((await inbox.after('1', 1, 1))[0]!.notification, replay[1]!.notification, 'still a tombstone')
  })

  t.test('follows group, within the window by event time; other types group only with a key; archiving a member closes the group', async (t) => {
    const { inbox, append } = await openInbox(t)
    const start = Date.now() - 3 * DAY_MS
    const [bruno, rick, lena] = [{ id: '2', name: 'Bruno' }, { id: '3', name: 'Rick' }, { id: '4', name: 'Lena' }]
    const stored = await append([
      notificationOf('1', bruno, start), notificationOf('1', rick, start + 1000), notificationOf('1', bruno, start + 2000), notificationOf('1', lena, start + 3000)
    ])
    t.same(stored.map(({ group }) => group), [
      { id: stored[0]!.notification.id, key: 'follow', count: 1, actorCount: 1, actors: [bruno] },
      { id: stored[0]!.notification.id, key: 'follow', count: 2, actorCount: 2, actors: [rick, bruno] },
      { id: stored[0]!.notification.id, key: 'follow', count: 3, actorCount: 2, actors: [bruno, rick] },
      { id: stored[0]!.notification.id, key: 'follow', count: 4, actorCount: 3, actors: [lena, bruno, rick] }
    ], 'each one carries the group as it stands with it')
    const [late] = await append([notificationOf('1', rick, start + DAY_MS + 1)])
    t.equal(late!.group?.id, late!.notification.id, 'a day after the group began: a new group')
    const [reply, keyed, keyedToo] = await append([
      notificationOf('1', bruno, start + DAY_MS + 2, 'comment.reply'),
      notificationOf('1', bruno, start + DAY_MS + 3, 'comment.reply', 'post:1'),
      notificationOf('1', rick, start + DAY_MS + 4, 'comment.reply', 'post:1')
    ])
    t.equal(reply!.group, undefined, 'a type of its own without a key stands alone')
    t.same(keyedToo!.group, { id: keyed!.notification.id, key: 'post:1', count: 2, actorCount: 2, actors: [rick, bruno] })
    const page = await inbox.grouped('1', 2, undefined, { archived: false })
    t.same(page.items.map(({ newest, count, actorCount, unread }) => [newest.seq, count, actorCount, unread]), [[8, 2, 2, 2], [6, 1, 1, 1]])
    t.equal(page.nextBefore, 6)
    const rest = await inbox.grouped('1', 10, page.nextBefore!, { archived: false })
    t.same(rest.items.map(({ newest, count }) => [newest.seq, count]), [[5, 1], [4, 4]], 'the next page: the rest, each group once')
    t.same(rest.items[1]!.actors, [lena, bruno, rick])
    t.equal(rest.nextBefore, null)
    await inbox.changeState('1', { op: 'archive', ids: [late!.notification.id] })
    const [after] = await append([notificationOf('1', lena, start + DAY_MS + 5)])
    t.same(after!.group, { id: after!.notification.id, key: 'follow', count: 1, actorCount: 1, actors: [lena] }, 'the archived one\'s group is closed: a new one begins')
    t.same((await inbox.grouped('1', 10, undefined, { archived: true })).items.map(({ newest }) => newest.seq), [5], 'the archive, grouped')
    await inbox.changeState('1', { op: 'read', groups: [stored[0]!.notification.id] })
    t.same((await inbox.grouped('1', 10, 5, { archived: false })).items.map(({ count, unread }) => [count, unread]), [[4, 0]], 'a group read whole')
  })

  t.test('a muted type or actor is skipped before a seq is given: no hole, not counted, positions still move', async (t) => {
    const { inbox } = await openInbox(t)
    t.same(await inbox.preferences('1'), { types: [], actors: [] })
    t.same(await inbox.setPreferences('1', { types: ['comment.reply'], actors: ['3'] }), { types: ['comment.reply'], actors: ['3'] })
    const batch = [
      notificationOf('1', { id: '2', name: 'Bruno' }), notificationOf('1', { id: '3', name: 'Rick' }),
      notificationOf('1', { id: '2', name: 'Bruno' }, Date.now(), 'comment.reply'), notificationOf('1', { id: '2', name: 'Bruno' }, Date.now(), 'invoice.paid'),
      notificationOf('2', { id: '3', name: 'Rick' })
    ]
    const result = await inbox.append(recordsOf(batch))
    t.same(result.appended.map(({ notification, seq }) => [notification.userId, seq]), [['1', 1], ['1', 2], ['2', 1]], 'Emma\'s muted ones take no seq; Bruno\'s mute list is his own')
    t.same(await inbox.snapshot('1'), { newestSeq: 2, unread: 2, rev: 0, unseen: 2 }, 'not counted')
    t.same((await inbox.reconcile(TOPIC, new Map([[0, 5n]]))).stored.get(0), 5n, 'the partition\'s position is past them all')
    await inbox.setPreferences('1', { types: [], actors: [] })
    t.same((await inbox.append(recordsOf([notificationOf('1', { id: '3', name: 'Rick' })], 0, 5))).appended.map(({ seq }) => seq), [3], 'unmuted: stored again, next seq')
  })

  t.test('retention prunes the state log too, and records the floor a cursor must not be older than', async (t) => {
    const { inbox, append } = await openInbox(t, { maxPerUser: 3, maxAgeMs: 365 * DAY_MS })
    const stored = await append([notificationFor('1'), notificationFor('1')])
    for (let i = 0; i < 3; i++) {
      for (const op of ['read', 'unread'] as const) await inbox.changeState('1', { op, ids: [stored[0]!.notification.id] })
    }
    t.equal((await inbox.snapshot('1')).rev, 6)
    await inbox.prune()
    const log = await inbox.stateAfter('1', 0, 10)
    t.same(log.floor, 3, 'the newest 3 kept')
    t.same(log.changes.map(({ rev }) => rev), [4, 5, 6])
    const aged = await openInbox(t, { maxPerUser: 100, maxAgeMs: 1 })
    const [old] = await aged.append([notificationFor('1')])
    await aged.inbox.changeState('1', { op: 'read', ids: [old!.notification.id] })
    await aged.inbox.prune(Date.now() + 1000)
    t.same(await aged.inbox.stateAfter('1', 0, 10), { changes: [], floor: 1 }, 'by age too')
  })
}
