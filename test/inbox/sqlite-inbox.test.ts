import { join } from 'node:path'
import t from 'tap'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import type { RetentionPolicy } from '../../server/inbox/types.js'
import { followNotification, uuidv7, type Notification } from '../../server/notification.js'
import { tempDir } from '../helpers/gateway.js'

const DAY_MS = 24 * 60 * 60 * 1000
type UserId = '1' | '2' | '3'
const users: Record<UserId, { id: string, name: string }> = {
  1: { id: '1', name: 'Emma' },
  2: { id: '2', name: 'Bruno' },
  3: { id: '3', name: 'Rick' }
}
const KEEP_ALL: RetentionPolicy = { maxPerUser: 1_000_000, maxAgeMs: 365 * DAY_MS }

/** A follow notification for `recipient`, created `ageMs` ago. */
function notificationFor (recipient: UserId, ageMs = 0): Notification {
  const follower = recipient === '3' ? users['1'] : users['3']
  const createdAt = Date.now() - ageMs
  return { ...followNotification(follower, users[recipient], uuidv7(createdAt)), createdAt: new Date(createdAt).toISOString() }
}

function openInbox (t: { teardown: (fn: () => unknown) => void }, retention = KEEP_ALL, file?: string): { inbox: SqliteInbox, file: string } {
  const path = file ?? join(tempDir(t), 'data', 'inbox.sqlite')
  const inbox = new SqliteInbox(path, retention)
  t.teardown(() => inbox.close().catch(() => {}))
  return { inbox, file: path }
}

t.test('append stores a batch and returns the new notifications in order with increasing seq', async (t) => {
  const { inbox } = openInbox(t)
  const batch = [notificationFor('1'), notificationFor('2'), notificationFor('1')]
  const appended = await inbox.append(batch)
  t.same(appended.map(({ notification }) => notification), batch)
  const seqs = appended.map(({ seq }) => seq)
  t.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, `seq increases (${seqs.join(', ')})`)
  t.same(await inbox.append([]), [], 'an empty batch stores nothing')
})

t.test('append is idempotent on the notification id', async (t) => {
  const { inbox } = openInbox(t)
  const first = notificationFor('1')
  const second = notificationFor('1')
  t.equal((await inbox.append([first])).length, 1)
  t.same(await inbox.append([first]), [], 'the same id again is not returned')
  const mixed = await inbox.append([first, second])
  t.same(mixed.map(({ notification }) => notification.id), [second.id], 'only the new one of a mixed batch')
  const third = notificationFor('1')
  t.same((await inbox.append([third, third])).map(({ notification }) => notification.id), [third.id], 'a duplicate within one batch is returned once')
  const { items } = await inbox.history('1', 100)
  t.same(items.map(({ notification }) => notification.id), [third.id, second.id, first.id], 'each id stored once')
  t.equal(await inbox.unread('1'), 3)
})

t.test('a redelivered id keeps its first body and read state', async (t) => {
  const { inbox } = openInbox(t)
  const original = notificationFor('1')
  const [stored] = await inbox.append([original])
  await inbox.markRead('1', { upTo: stored!.seq })
  await inbox.append([{ ...original, message: 'changed' }])
  const { items } = await inbox.history('1', 10)
  t.same(items, [{ seq: stored!.seq, notification: original, read: true }])
})

t.test('history pages newest first with limit/before, without overlap or hole', async (t) => {
  const { inbox } = openInbox(t)
  const emmas: Notification[] = []
  for (let i = 0; i < 8; i++) {
    const emma = notificationFor('1')
    emmas.push(emma)
    await inbox.append(i % 3 === 0 ? [emma, notificationFor('2')] : [emma])
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
  const { inbox } = openInbox(t)
  const notification = notificationFor('1')
  const [stored] = await inbox.append([notification])
  t.same((await inbox.history('1', 1)).items, [{ seq: stored!.seq, notification, read: false }])
})

t.test('after returns a user\'s notifications after a seq, oldest first, at most limit', async (t) => {
  const { inbox } = openInbox(t)
  const appended = await inbox.append([notificationFor('1'), notificationFor('2'), notificationFor('1'), notificationFor('1'), notificationFor('1')])
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
  const { inbox } = openInbox(t)
  const emmas = await inbox.append([notificationFor('1'), notificationFor('1'), notificationFor('1'), notificationFor('1')])
  const brunos = await inbox.append([notificationFor('2'), notificationFor('2')])
  t.equal(await inbox.unread('1'), 4)
  t.equal(await inbox.unread('2'), 2)
  t.equal(await inbox.unread('3'), 0)

  t.test('upTo marks every item at or before the cursor', async (t) => {
    t.equal(await inbox.markRead('1', { upTo: emmas[1]!.seq }), 2, 'returns the new unread count')
    const read = (await inbox.history('1', 10)).items.map(({ seq, read }) => [seq, read])
    t.same(read, [[emmas[3]!.seq, false], [emmas[2]!.seq, false], [emmas[1]!.seq, true], [emmas[0]!.seq, true]])
    t.equal(await inbox.markRead('1', { upTo: emmas[1]!.seq }), 2, 'again: no change')
  })

  t.test('ids marks those items only', async (t) => {
    t.equal(await inbox.markRead('1', { ids: [emmas[3]!.notification.id] }), 1)
    t.same((await inbox.history('1', 1)).items[0]?.read, true)
    t.equal(await inbox.markRead('1', { ids: ['01930000-0000-7000-8000-000000000000'] }), 1, 'an unknown id changes nothing')
  })

  t.test('another user\'s ids or cursor change nothing', async (t) => {
    t.equal(await inbox.markRead('1', { ids: brunos.map(({ notification }) => notification.id) }), 1)
    t.equal(await inbox.unread('2'), 2, 'Bruno\'s items stay unread')
    t.ok((await inbox.history('2', 10)).items.every(({ read }) => !read))
    t.equal(await inbox.markRead('3', { upTo: Number.MAX_SAFE_INTEGER }), 0)
    t.equal(await inbox.unread('2'), 2)
    t.equal(await inbox.unread('1'), 1)
  })
})

t.test('checkCursor: a cursor from the future cannot be caught up from', async (t) => {
  const { inbox } = openInbox(t)
  t.same(await inbox.checkCursor('1', 0), { ok: true }, 'an empty inbox, cursor 0')
  t.same(await inbox.checkCursor('1', 1), { ok: false }, 'an empty inbox, a cursor it never issued')
  const appended = await inbox.append([notificationFor('1'), notificationFor('2')])
  const newest = appended.at(-1)!.seq
  t.same(await inbox.checkCursor('1', newest), { ok: true }, 'the newest issued seq (even another user\'s)')
  t.same(await inbox.checkCursor('1', appended[0]!.seq), { ok: true })
  t.same(await inbox.checkCursor('1', newest + 1), { ok: false })
  t.same(await inbox.checkCursor('1', 999_999_999), { ok: false })
})

t.test('prune keeps the newest maxPerUser of each user, and cursors before the cut are refused', async (t) => {
  const { inbox } = openInbox(t, { maxPerUser: 3, maxAgeMs: 365 * DAY_MS })
  const emmas = await inbox.append(Array.from({ length: 5 }, () => notificationFor('1')))
  const brunos = await inbox.append([notificationFor('2'), notificationFor('2')])
  t.equal(await inbox.prune(), 2, 'two of Emma\'s went')
  t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), emmas.slice(2).map(({ seq }) => seq).reverse())
  t.same((await inbox.history('2', 10)).items.map(({ seq }) => seq), brunos.map(({ seq }) => seq).reverse(), 'Bruno is under the cap')
  t.equal(await inbox.unread('1'), 3)
  t.equal(await inbox.prune(), 0, 'nothing more to prune')

  t.same(await inbox.checkCursor('1', 0), { ok: false }, 'from the start: there is a hole now')
  t.same(await inbox.checkCursor('1', emmas[0]!.seq), { ok: false }, 'a cursor at a pruned item')
  t.same(await inbox.checkCursor('1', emmas[1]!.seq), { ok: true }, 'a cursor at the newest pruned item misses nothing')
  t.same(await inbox.checkCursor('1', emmas[4]!.seq), { ok: true })
  t.same(await inbox.checkCursor('2', 0), { ok: true }, 'other users\' cursors are unaffected')
})

t.test('prune removes what is older than maxAge', async (t) => {
  const { inbox } = openInbox(t, { maxPerUser: 1000, maxAgeMs: DAY_MS })
  const old = await inbox.append([notificationFor('1', 3 * DAY_MS), notificationFor('2', 2 * DAY_MS)])
  const fresh = await inbox.append([notificationFor('1', 60_000), notificationFor('2')])
  t.equal(await inbox.prune(), 2)
  t.same((await inbox.history('1', 10)).items.map(({ seq }) => seq), [fresh[0]!.seq])
  t.same((await inbox.history('2', 10)).items.map(({ seq }) => seq), [fresh[1]!.seq])
  t.same(await inbox.checkCursor('1', old[0]!.seq - 1), { ok: false })
  t.same(await inbox.checkCursor('1', old[0]!.seq), { ok: true })
  t.equal(await inbox.prune(Date.now() + 2 * DAY_MS), 2, 'prune takes the time to prune at')
  t.same((await inbox.history('1', 10)).items, [])
})

t.test('everything survives close and reopen', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'nested', 'inbox.sqlite')
  const first = new SqliteInbox(file, KEEP_ALL)
  const appended = await first.append([notificationFor('1'), notificationFor('1'), notificationFor('2')])
  await first.markRead('1', { upTo: appended[0]!.seq })
  const before = await first.history('1', 10)
  await first.close()

  const { inbox } = openInbox(t, KEEP_ALL, file)
  t.same(await inbox.history('1', 10), before, 'history and read state')
  t.equal(await inbox.unread('1'), 1)
  t.equal(await inbox.unread('2'), 1)
  t.same(await inbox.append([appended[1]!.notification]), [], 'ids stored before the restart are still deduplicated')
  const [next] = await inbox.append([notificationFor('1')])
  t.ok(next!.seq > appended[2]!.seq, 'seq goes on from where it was')
  t.same(await inbox.checkCursor('1', appended[2]!.seq), { ok: true }, 'cursors issued before the restart are still known')
})

t.test('seq is never reused after deletes, even across a restart', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'inbox.sqlite')
  const first = new SqliteInbox(file, { maxPerUser: 1, maxAgeMs: DAY_MS })
  const appended = await first.append([notificationFor('1'), notificationFor('1')])
  await first.prune()
  await first.close()
  const { inbox } = openInbox(t, KEEP_ALL, file)
  const [next] = await inbox.append([notificationFor('2')])
  t.ok(next!.seq > appended[1]!.seq)
  t.same(await inbox.checkCursor('1', appended[0]!.seq - 1), { ok: false }, 'the prune is remembered')
})

t.test('a lower cap applies after a restart to users who get nothing new', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'inbox.sqlite')
  const first = new SqliteInbox(file, KEEP_ALL)
  await first.append(Array.from({ length: 5 }, () => notificationFor('1')))
  await first.close()
  const { inbox } = openInbox(t, { maxPerUser: 2, maxAgeMs: 365 * DAY_MS }, file)
  t.equal(await inbox.prune(), 3)
  t.equal((await inbox.history('1', 10)).items.length, 2)
})

t.test('one user\'s queries never return another user\'s rows', async (t) => {
  const { inbox } = openInbox(t)
  const all = await inbox.append(Array.from({ length: 30 }, (_, i) => notificationFor((['1', '2', '3'] as const)[i % 3]!)))
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
