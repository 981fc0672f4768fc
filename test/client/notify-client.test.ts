import t, { type Test } from 'tap'
import { NotifyClient, type NotificationEvent, type StateEvent } from '../../client/notify-client.js'
import type { Position } from '../../client/feed-sync.js'
import type { HistoryItem, NotificationFrame, ReadyFrame, StateFrame } from '../../client/types.js'
import { FakeNetwork, noJitter } from '../helpers/fake-transport.js'

const EPOCH = 'k3j9x2'
const at = (seq: number): Position => ({ cursor: `${EPOCH}.${seq}`, seq })
/** A position on a connection whose `ready` said rev 0 (as `ready()` below does): it carries that rev. */
const atRev0 = (seq: number): Position => ({ ...at(seq), rev: 0 })

function ready (seq: number, { unread = 0, rev = 0 } = {}): ReadyFrame {
  return { type: 'ready', user: { id: '1', name: 'Emma' }, unread, cursor: at(seq).cursor, seq, rev, pingMs: 30_000 }
}

function notification (seq: number, count?: { unread: number, rev: number }): NotificationFrame {
  return {
    type: 'notification',
    cursor: at(seq).cursor,
    seq,
    ...count,
    notification: { id: `n-${seq}`, type: 'follow', userId: '1', actor: { id: '2', name: 'Bruno' }, message: 'Bruno started following you.', createdAt: '2026-01-01T00:00:00.000Z' }
  }
}

function item (seq: number): HistoryItem {
  return { ...notification(seq).notification, read: false, cursor: at(seq).cursor, seq }
}

function client (t: Test, since: Position | null = null): { feed: NotifyClient, network: FakeNetwork, shown: NotificationEvent[], counts: number[] } {
  noJitter(t)
  const network = new FakeNetwork()
  const feed = new NotifyClient({ baseUrl: 'http://127.0.0.1:1', token: () => 'token', since, transports: { websocket: network.transport('websocket') } })
  const shown: NotificationEvent[] = []
  const counts: number[] = []
  feed.on('notification', (event) => shown.push(event))
  feed.on('unread', (count) => counts.push(count))
  t.teardown(() => feed.stop())
  return { feed, network, shown, counts }
}

t.test('a frame past last + 1 is a gap: nothing after it is shown, and the client reconnects with since = the last one it has', async (t) => {
  const { feed, network, shown } = client(t)
  feed.start()
  const first = await network.attempt(0)
  t.equal(first.dial.since, null, 'no stored position: live only')
  first.frame(ready(3))
  first.frame(notification(4))
  first.frame(notification(6))
  first.frame(notification(7))
  const second = await network.attempt(1)
  t.equal(first.closed, true, 'the connection with the gap is dropped')
  t.same(second.dial.since, atRev0(4), 'resumes after the last contiguous one')
  t.same(shown.map(({ seq, live }) => [seq, live]), [[4, true]], 'neither 6 nor 7 shown before the gap is filled')

  second.frame(ready(7))
  for (const seq of [5, 6, 7]) second.frame(notification(seq))
  second.frame({ type: 'synced', cursor: at(7).cursor, seq: 7 })
  second.frame(notification(8))
  t.same(shown.map(({ seq, live }) => [seq, live]), [[4, true], [5, false], [6, false], [7, false], [8, true]], 'the catch-up fills it, then live again')
  t.same(feed.since, atRev0(8))
})

t.test('a stored position is where the first connection resumes from, and each move is told', async (t) => {
  const { feed, network } = client(t, at(10))
  const positions: Position[] = []
  feed.on('position', (position) => positions.push(position))
  feed.start()
  const first = await network.attempt(0)
  t.same(first.dial.since, at(10))
  first.frame(ready(11))
  first.frame(notification(11))
  t.same(positions, [atRev0(11)])
})

t.test('unread counts in rev order: an older count after a newer one is not taken, and listeners hear the newest', async (t) => {
  const { feed, network, counts } = client(t)
  feed.start()
  const first = await network.attempt(0)
  first.frame(ready(5, { unread: 5, rev: 2 }))
  first.frame({ type: 'unread', unread: 0, rev: 3 })
  first.frame(notification(6, { unread: 6, rev: 2 }))
  t.equal(feed.unread, 0, 'a notification counted before the read mark came after it: the read mark\'s count stands')
  first.frame(notification(7, { unread: 1, rev: 3 }))
  t.equal(feed.unread, 1, 'one counted after it')
  t.same(counts, [5, 0, 0, 1])
})

t.test('ready without a resume point asks for a history refresh; synced with reset asks for a reset', async (t) => {
  const { feed, network } = client(t)
  const reloads: string[] = []
  feed.on('reload', (kind) => reloads.push(kind))
  feed.start()
  const first = await network.attempt(0)
  first.frame(ready(3))
  t.same(reloads, ['refresh'])
  first.frame(notification(4))
  first.end({ code: 1006, reason: '', opened: true })
  const second = await network.attempt(1)
  second.frame(ready(1))
  second.frame({ type: 'synced', cursor: 'zz.1', seq: 1, reset: true })
  t.same(reloads, ['refresh', 'reset'], 'a resumed connection needs no refresh; a reset does')
})

t.test('state frames in rev order: each is told once with its changes, and sets unread and unseen; a skipped rev resyncs', async (t) => {
  const { feed, network, counts } = client(t)
  const states: StateEvent[] = []
  const unseen: number[] = []
  feed.on('state', (event) => states.push(event))
  feed.on('unseen', (count) => unseen.push(count))
  feed.start()
  const first = await network.attempt(0)
  first.frame({ ...ready(2, { unread: 2, rev: 4 }), unseen: 2 })
  const archive: StateFrame = { type: 'state', rev: 5, seq: 2, changes: [{ op: 'archive', ids: ['n-1'] }], unread: 1, unseen: 1, cursor: `${EPOCH}.2.5` }
  first.frame(archive)
  first.frame({ type: 'unread', unread: 1, rev: 5 })
  first.frame(archive)
  t.same(states, [{ rev: 5, changes: [{ op: 'archive', ids: ['n-1'] }], live: true }], 'the repeat is dropped')
  t.same(counts, [2, 1, 1], 'the unread frame of the same rev changes nothing')
  t.same(unseen, [2, 1])
  t.same(feed.since, { cursor: `${EPOCH}.2.5`, seq: 2, rev: 5 })

  first.frame({ ...archive, rev: 7, cursor: `${EPOCH}.2.7` })
  const second = await network.attempt(1)
  t.equal(first.closed, true, 'rev 6 missing: the connection is dropped')
  t.same(second.dial.since, { cursor: `${EPOCH}.2.5`, seq: 2, rev: 5 }, 'and resumes from the last rev applied')
  t.equal(states.length, 1, 'rev 7 not applied before rev 6')
})

t.test('a live notification carries its group, and counts one more unseen; a replayed one neither', async (t) => {
  const { feed, network, shown } = client(t, at(1))
  const unseen: number[] = []
  feed.on('unseen', (count) => unseen.push(count))
  feed.start()
  const first = await network.attempt(0)
  first.frame({ ...ready(2, { unread: 2, rev: 0 }), unseen: 1 })
  first.frame(notification(2))
  first.frame({ type: 'synced', cursor: at(2).cursor, seq: 2, rev: 0 })
  const group = { id: 'n-2', key: 'follow', count: 2, actorCount: 2, actors: [{ id: '3', name: 'Rick' }, { id: '2', name: 'Bruno' }] }
  first.frame({ ...notification(3, { unread: 3, rev: 0 }), group })
  t.same(shown.map(({ seq, live, group }) => [seq, live, group]), [[2, false, undefined], [3, true, group]])
  t.same(unseen, [1, 2])
  t.equal(feed.unseen, 2)
})

t.test('the preferences frame is told as is', async (t) => {
  const { feed, network } = client(t)
  const muted: unknown[] = []
  feed.on('preferences', (lists) => muted.push(lists))
  feed.start()
  const first = await network.attempt(0)
  first.frame(ready(0))
  first.frame({ type: 'preferences', muted: { types: ['follow'], actors: ['2'] } })
  t.same(muted, [{ types: ['follow'], actors: ['2'] }])
})

/** A fetch that answers every request with `answer`, recording method, path and body. */
function recordingFetch (answer: unknown): { fetch: typeof fetch, asked: Array<[string, string, unknown]> } {
  const asked: Array<[string, string, unknown]> = []
  return {
    asked,
    fetch: async (input, init) => {
      const url = new URL(String(input))
      asked.push([init?.method ?? 'GET', `${url.pathname}${url.search}`, init?.body === undefined ? undefined : JSON.parse(String(init.body))])
      return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } })
    }
  }
}

t.test('the state calls: each route and body, and the counts of the answer taken in rev order', async (t) => {
  noJitter(t)
  const network = new FakeNetwork()
  const { fetch, asked } = recordingFetch({ unread: 1, unseen: 0, rev: 3, muted: { types: [], actors: [] }, items: [item(4)], nextCursor: null })
  const feed = new NotifyClient({ baseUrl: 'http://127.0.0.1:1', token: () => 'token', fetch, transports: { websocket: network.transport('websocket') } })
  t.teardown(() => feed.stop())
  t.equal(await feed.markSeen(), null, 'nothing seen yet: nothing to mark')
  t.equal(await feed.archiveAll(), null)
  await feed.groups(null, 20, { archived: true })
  await feed.history(null, 20)
  await feed.markSeen()
  await feed.archiveAll()
  await feed.change('unread', { ids: ['n-4'] })
  await feed.change('archive', { groups: ['g-1'] })
  await feed.delete('n-4')
  await feed.delete('g 1', true)
  await feed.preferences()
  await feed.setPreferences({ types: ['follow'], actors: [] })
  t.same(asked, [
    ['GET', '/api/notifications?limit=20&archived=true&grouped=true', undefined],
    ['GET', '/api/notifications?limit=20', undefined],
    ['POST', '/api/notifications/seen', { upTo: at(4).cursor }],
    ['POST', '/api/notifications/archive', { upTo: at(4).cursor }],
    ['POST', '/api/notifications/unread', { ids: ['n-4'] }],
    ['POST', '/api/notifications/archive', { groups: ['g-1'] }],
    ['DELETE', '/api/notifications/n-4', undefined],
    ['DELETE', '/api/notifications/groups/g%201', undefined],
    ['GET', '/api/preferences', undefined],
    ['PUT', '/api/preferences', { muted: { types: ['follow'], actors: [] } }]
  ])
  t.same([feed.unread, feed.unseen], [1, 0])
  t.same(feed.since, at(4), 'the archive\'s page is no resume point; the inbox\'s is')
})
