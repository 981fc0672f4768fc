import t from 'tap'
import type { ReadyFrame } from '../../server/feed/frames.js'
import { FeedClient, follow, signIn, type NotificationFrame } from '../helpers/clients.js'
import { eventually } from '../helpers/eventually.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'

const MISSED = 1000
const CONCURRENCY = 25

/** Bruno follows Emma `count` times, CONCURRENCY at a time; returns the accepted ids. */
async function followMany (gateway: Gateway, token: string, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let start = 0; start < count; start += CONCURRENCY) {
    const batch = Array.from({ length: Math.min(CONCURRENCY, count - start) }, async () => {
      const response = await follow(gateway.url, token, '1')
      if (response.status !== 202) throw new Error(`follow answered ${response.status}: ${await response.text()}`)
      return ((await response.json()) as { notification: { id: string } }).notification.id
    })
    ids.push(...await Promise.all(batch))
  }
  return ids
}

/** Waits (bounded) until the consumer has stored `count` unread notifications for the token's user. */
async function waitForUnread (gateway: Gateway, token: string, count: number): Promise<void> {
  const unread = async (): Promise<number> => {
    const response = await fetch(`${gateway.url}/api/notifications?limit=1`, { headers: { authorization: `Bearer ${token}` } })
    return (await response.json() as { unread: number }).unread
  }
  await eventually(`${count} notifications stored`, unread, (stored) => stored >= count, { timeoutMs: 60_000 })
}

async function readNotifications (client: FeedClient, count: number): Promise<NotificationFrame[]> {
  const frames: NotificationFrame[] = []
  while (frames.length < count) {
    const frame = await client.next()
    if (frame.type === 'notification') frames.push(frame)
  }
  return frames
}

t.test(`a user offline while ${MISSED} notifications arrive gets them all with since, in order, once, then synced`, async (t) => {
  const gateway = await startGateway(t)
  const [emma, bruno] = await Promise.all([signIn(gateway.url, '1'), signIn(gateway.url, '2')])

  const online = await FeedClient.connect(gateway.url, emma)
  t.equal((await online.next()).type, 'ready')
  const [first] = await followMany(gateway, bruno, 1)
  const seen = await online.nextOf('notification')
  t.equal(seen.notification.id, first)
  online.close()
  await online.closed

  const missed = await followMany(gateway, bruno, MISSED)
  await waitForUnread(gateway, emma, MISSED + 1)

  const back = await FeedClient.connect(gateway.url, emma, { since: seen.cursor })
  t.teardown(() => back.close())
  const ready = await back.next() as ReadyFrame
  t.match(ready, { type: 'ready', user: { id: '1', name: 'Emma' }, unread: MISSED + 1 })
  const replay: NotificationFrame[] = []
  for (let i = 0; i < MISSED; i++) replay.push(await back.next() as NotificationFrame)
  t.ok(replay.every((frame) => frame.type === 'notification'), 'the replay is notification frames only')
  const seqs = replay.map((frame) => frame.seq)
  t.same(seqs, Array.from({ length: MISSED }, (_, i) => seen.seq + 1 + i), 'in feed order, starting right after the cursor given, no hole')
  const ids = replay.map((frame) => frame.notification.id)
  t.equal(new Set(ids).size, MISSED, 'no duplicate')
  t.same([...ids].sort(), [...missed].sort(), 'exactly the missed ones')
  t.same(await back.next(), { type: 'synced', cursor: replay.at(-1)!.cursor, seq: replay.at(-1)!.seq, rev: 0 }, 'then synced, at the last cursor')
  t.equal(ready.cursor, replay.at(-1)!.cursor, 'ready named the newest cursor at connect')
})

t.test('a stream dropped mid-way and resumed from its last cursor has no gap and no duplicate, with live follows during catch-up', async (t) => {
  const gateway = await startGateway(t)
  const [emma, bruno] = await Promise.all([signIn(gateway.url, '1'), signIn(gateway.url, '2')])
  const before = await followMany(gateway, bruno, 600)
  await waitForUnread(gateway, emma, 600)

  const first = await FeedClient.connect(gateway.url, emma, { since: '0' })
  t.equal((await first.next()).type, 'ready')
  const part = await readNotifications(first, 250)
  first.close()

  // Resume while more follows keep arriving: the switch from replay to live must not lose or double any.
  const live = followMany(gateway, bruno, 200)
  const second = await FeedClient.connect(gateway.url, emma, { since: part.at(-1)!.cursor })
  t.teardown(() => second.close())
  t.equal((await second.next()).type, 'ready')
  const during = await live
  const rest: NotificationFrame[] = []
  let synced = false
  while (rest.length < before.length + during.length - part.length) {
    const frame = await second.next()
    if (frame.type === 'synced') synced = true
    else if (frame.type === 'notification') rest.push(frame)
  }
  t.ok(synced, 'synced came during the stream')
  const all = [...part, ...rest]
  const ids = all.map((frame) => frame.notification.id)
  t.equal(new Set(ids).size, ids.length, 'no duplicate across the two connections')
  t.same([...ids].sort(), [...before, ...during].sort(), 'no gap: every accepted follow arrived')
  const seqs = all.map((frame) => frame.seq)
  t.same(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'seq goes 1, 2, 3… across both connections: no hole, no repeat')
})

t.test('an unknown cursor gets synced with reset, not silence', async (t) => {
  const gateway = await startGateway(t)
  const emma = await signIn(gateway.url, '1')
  const client = await FeedClient.connect(gateway.url, emma, { since: '999999999' })
  t.teardown(() => client.close())
  const ready = await client.next() as ReadyFrame
  t.match(ready, { type: 'ready', seq: 0, cursor: /^[0-9a-f]{8}\.0\.0$/ })
  t.same(await client.next(), { type: 'synced', cursor: ready.cursor, seq: 0, rev: 0, reset: true })
})
