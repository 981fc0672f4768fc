import { join } from 'node:path'
import t from 'tap'
import { openFeed } from '../../server/feed/catch-up.js'
import { decodeCursor, encodeCursor } from '../../server/feed/cursor.js'
import type { Frame } from '../../server/feed/frames.js'
import { Tab } from '../../server/feed/tab.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import type { Inbox } from '../../server/inbox/types.js'
import { followNotification, type Notification } from '../../server/notification.js'
import { BOUND } from '../helpers/delivery-path.js'
import { fakeHubSocket } from '../helpers/fake-socket.js'
import { tempDir } from '../helpers/gateway.js'
import { consumedRecords } from '../helpers/records.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
/** What `ready` tells the client of the pings (no relay pings here). */
const PING_MS = 30_000

async function inboxWith (t: { teardown: (fn: () => unknown) => void }, count: number, retention = { maxPerUser: 1_000_000, maxAgeMs: 365 * 86_400_000 }): Promise<SqliteInbox> {
  const inbox = new SqliteInbox(join(tempDir(t), 'inbox.sqlite'), retention)
  t.teardown(() => inbox.close())
  await inbox.append(consumedRecords(Array.from({ length: count }, () => followNotification(bruno, emma))))
  return inbox
}

/** A tab of Emma's holding its live frames, as a socket's feed opens. */
function open (): { tab: Tab, frames: () => Array<Frame<Notification>> } {
  const { webSocket, socket } = fakeHubSocket('1', BOUND)
  const tab = new Tab(socket)
  tab.hold()
  return { tab, frames: () => webSocket.frames }
}

function seqsOf (frames: Array<Frame<Notification>>): number[] {
  return frames.flatMap((frame) => frame.type === 'notification' ? [frame.seq] : [])
}

t.test('a replay sends every notification after the cursor, seq after seq, then synced', async (t) => {
  const inbox = await inboxWith(t, 1200) // more than two pages
  const { tab, frames } = open()
  await openFeed(tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 100)), PING_MS)
  const sent = frames()
  t.match(sent[0], { type: 'ready', seq: 1200, rev: 0, pingMs: PING_MS }, 'ready: where the feed stands, and how often pings come')
  t.same(seqsOf(sent), Array.from({ length: 1100 }, (_, i) => 101 + i))
  t.same(sent.at(-1), { type: 'synced', cursor: encodeCursor(inbox.epoch, 1200, 0), seq: 1200, rev: 0 })
})

t.test('retention pruning rows ahead of a slow replay, after the cursor was checked, gets synced with reset', async (t) => {
  const inbox = await inboxWith(t, 1200, { maxPerUser: 300, maxAgeMs: 365 * 86_400_000 })
  // Retention runs while the replay is between its first and second page.
  let pages = 0
  const after: Inbox['after'] = async (userId, from, limit) => {
    if (pages++ === 1) t.equal(await inbox.prune(), 900, 'retention deleted the 900 oldest rows mid-replay')
    return await inbox.after(userId, from, limit)
  }
  const racing = new Proxy(inbox, {
    get: (target, name) => {
      if (name === 'after') return after
      const value: unknown = Reflect.get(target, name)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const { tab, frames } = open()
  await openFeed(tab, racing, emma, decodeCursor('0'), PING_MS)
  const sent = frames()
  t.same(seqsOf(sent), Array.from({ length: 500 }, (_, i) => 1 + i), 'the first page went out')
  t.same(sent.at(-1), { type: 'synced', cursor: encodeCursor(inbox.epoch, 1200, 0), seq: 1200, rev: 0, reset: true },
    'the hole is not skipped silently: reset, and live from the newest')
})

t.test('a cursor older than what retention kept gets reset; one at the edge of it does not', async (t) => {
  const inbox = await inboxWith(t, 10, { maxPerUser: 4, maxAgeMs: 365 * 86_400_000 })
  await inbox.prune()
  const before = open()
  await openFeed(before.tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 5)), PING_MS)
  t.match(before.frames().at(-1), { type: 'synced', seq: 10, reset: true })
  t.same(seqsOf(before.frames()), [], 'nothing replayed across the hole')
  const edge = open()
  await openFeed(edge.tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 6)), PING_MS)
  t.same(seqsOf(edge.frames()), [7, 8, 9, 10])
  t.same(edge.frames().at(-1), { type: 'synced', cursor: encodeCursor(inbox.epoch, 10, 0), seq: 10, rev: 0 })
})

t.test('live frames held during the replay go out after synced, without what the replay sent', async (t) => {
  const inbox = await inboxWith(t, 3)
  const { tab, frames } = open()
  const opening = openFeed(tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 1)), PING_MS)
  // A notification appended (and pushed live) while the feed opens: it is both replayed and held.
  const [late] = (await inbox.append(consumedRecords([followNotification(bruno, emma)], { firstOffset: 3 }))).appended
  const text = JSON.stringify({ type: 'notification', seq: late!.seq })
  t.equal(tab.offer({ text, bytes: text.length, seq: late!.seq }), 'held')
  await opening
  t.same(seqsOf(frames()), [2, 3, 4], 'each once, in order')
})

t.test('a cursor with a rev gets the state changes after it, in rev order, after the notifications; one without a rev gets none', async (t) => {
  const inbox = await inboxWith(t, 4)
  const [first, second, third] = (await inbox.after('1', 0, 3)).map(({ notification }) => notification.id)
  await inbox.changeState('1', { op: 'read', ids: [first!] }) // rev 1: the client has it
  await inbox.changeState('1', { op: 'archive', ids: [second!] })
  await inbox.changeState('1', { op: 'seen', upToSeq: 4 })
  await inbox.changeState('1', { op: 'delete', ids: [third!] })
  const resumed = open()
  await openFeed(resumed.tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 2, 1)), PING_MS)
  const sent = resumed.frames()
  t.same(sent.map((frame) => frame.type === 'notification' ? frame.seq : frame.type === 'state' ? `rev ${frame.rev}` : frame.type),
    ['ready', 3, 4, 'rev 2', 'rev 3', 'rev 4', 'synced'], 'notifications, then state changes, then synced')
  t.match(sent[1], { type: 'notification', cursor: encodeCursor(inbox.epoch, 3, 1) }, 'a replayed notification\'s cursor keeps the client\'s rev: it skips no state change')
  t.match(sent[1], { notification: { id: third, deleted: true, message: '', actor: null } }, 'a deleted notification replays as a tombstone, keeping its seq')
  t.same(sent[3], { type: 'state', rev: 2, seq: 4, changes: [{ op: 'archive', ids: [second] }], unread: 2, unseen: 3, cursor: encodeCursor(inbox.epoch, 4, 2) })
  t.same(sent.at(-1), { type: 'synced', cursor: encodeCursor(inbox.epoch, 4, 4), seq: 4, rev: 4 })
  t.equal(resumed.tab.lastRev, 4, 'the tab is at the last rev replayed')
  const old = open()
  await openFeed(old.tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 4)), PING_MS)
  t.same(old.frames().map((frame) => frame.type), ['ready', 'synced'], 'a cursor of before revs: no state replay, ready\'s counts are its start')
  t.same(old.frames().at(-1), { type: 'synced', cursor: encodeCursor(inbox.epoch, 4, 4), seq: 4, rev: 4 })
})

t.test('a cursor whose rev is older than what retention kept of the state log, or newer than the feed\'s, gets reset', async (t) => {
  const inbox = await inboxWith(t, 3, { maxPerUser: 2, maxAgeMs: 365 * 86_400_000 })
  const ids = (await inbox.after('1', 0, 3)).map(({ notification }) => notification.id)
  for (const id of ids) await inbox.changeState('1', { op: 'read', ids: [id] })
  await inbox.prune()
  t.same((await inbox.stateAfter('1', 0, 10)).floor, 1, 'the log keeps the newest 2 changes')
  const pruned = open()
  await openFeed(pruned.tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 3, 0)), PING_MS)
  t.same(pruned.frames().map((frame) => frame.type), ['ready', 'synced'])
  t.match(pruned.frames().at(-1), { type: 'synced', seq: 3, rev: 3, reset: true })
  const edge = open()
  await openFeed(edge.tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 3, 1)), PING_MS)
  t.same(edge.frames().map((frame) => frame.type === 'state' ? frame.rev : frame.type), ['ready', 2, 3, 'synced'], 'at the floor: replayed')
  const future = open()
  await openFeed(future.tab, inbox, emma, decodeCursor(encodeCursor(inbox.epoch, 3, 9)), PING_MS)
  t.match(future.frames().at(-1), { type: 'synced', seq: 3, rev: 3, reset: true })
})
