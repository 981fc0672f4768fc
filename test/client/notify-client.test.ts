import t, { type Test } from 'tap'
import { NotifyClient, type NotificationEvent } from '../../client/notify-client.js'
import type { Position } from '../../client/feed-sync.js'
import type { NotificationFrame, ReadyFrame } from '../../client/types.js'
import { FakeNetwork, noJitter } from '../helpers/fake-transport.js'

const EPOCH = 'k3j9x2'
const at = (seq: number): Position => ({ cursor: `${EPOCH}.${seq}`, seq })

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
  t.same(second.dial.since, at(4), 'resumes after the last contiguous one')
  t.same(shown.map(({ seq, live }) => [seq, live]), [[4, true]], 'neither 6 nor 7 shown before the gap is filled')

  second.frame(ready(7))
  for (const seq of [5, 6, 7]) second.frame(notification(seq))
  second.frame({ type: 'synced', cursor: at(7).cursor, seq: 7 })
  second.frame(notification(8))
  t.same(shown.map(({ seq, live }) => [seq, live]), [[4, true], [5, false], [6, false], [7, false], [8, true]], 'the catch-up fills it, then live again')
  t.same(feed.since, at(8))
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
  t.same(positions, [at(11)])
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
