import t from 'tap'
import { FeedSync, type Position } from '../../client/feed-sync.js'
import type { HistoryItem, NotificationFrame, ReadyFrame, StateFrame, SyncedFrame } from '../../client/types.js'

const EPOCH = 'k3j9x2'
const cursor = (seq: number, epoch = EPOCH): string => `${epoch}.${seq}`
const at = (seq: number, epoch = EPOCH): Position => ({ cursor: cursor(seq, epoch), seq })

function ready (seq: number, unread = 0): ReadyFrame {
  return { type: 'ready', user: { id: '1', name: 'Emma' }, unread, cursor: cursor(seq), seq }
}

function notification (seq: number, createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString()): NotificationFrame {
  return {
    type: 'notification',
    cursor: cursor(seq),
    seq,
    notification: { id: `0193${String(seq).padStart(4, '0')}-0000-7000-8000-000000000000`, type: 'follow', userId: '1', actor: { id: '2', name: 'Bruno' }, message: 'Bruno started following you.', createdAt }
  }
}

function item (seq: number, createdAt: string, epoch = EPOCH): HistoryItem {
  return { ...notification(seq, createdAt).notification, read: false, cursor: cursor(seq, epoch), seq }
}

function synced (seq: number, reset = false, epoch = EPOCH): SyncedFrame {
  return reset ? { type: 'synced', cursor: cursor(seq, epoch), seq, reset: true } : { type: 'synced', cursor: cursor(seq, epoch), seq }
}

t.test('a live frame that skips a seq is a hole: resync from the last contiguous position', async (t) => {
  const sync = new FeedSync()
  sync.ready(ready(3), null)
  t.equal(sync.notification(notification(4)), 'live')
  t.equal(sync.notification(notification(6)), 'hole', 'seq 5 was never seen')
  t.same(sync.since, at(4), 'resume from the last position the page has everything up to')
  t.equal(sync.notification(notification(7)), 'ignored', 'nothing after the hole is shown before the resync')

  sync.ready(ready(7), sync.since)
  t.equal(sync.notification(notification(5)), 'catch-up', 'the catch-up fills the hole')
  t.equal(sync.notification(notification(6)), 'catch-up')
  t.equal(sync.notification(notification(7)), 'catch-up')
  t.equal(sync.synced(synced(7)), 'ok')
  t.equal(sync.notification(notification(8)), 'live')
  t.same(sync.since, at(8))
})

t.test('a hole right after ready (no since) is judged against ready\'s seq', async (t) => {
  const sync = new FeedSync()
  sync.ready(ready(10), null)
  t.equal(sync.notification(notification(12)), 'hole')
})

t.test('a catch-up that starts past since, or a synced past the last frame, is a hole', async (t) => {
  const sync = new FeedSync()
  sync.ready(ready(9), at(4))
  t.equal(sync.notification(notification(6)), 'hole', 'seq 5 missing from the replay')

  const short = new FeedSync()
  short.ready(ready(9), at(4))
  t.equal(short.notification(notification(5)), 'catch-up')
  t.equal(short.synced(synced(9)), 'hole', 'synced says 9 was sent, the page has only up to 5')
})

t.test('a frame at or below the last seen seq is a duplicate and dropped', async (t) => {
  const sync = new FeedSync()
  sync.ready(ready(2), null)
  t.equal(sync.notification(notification(3)), 'live')
  t.equal(sync.notification(notification(3)), 'duplicate', 'the same frame again')
  t.equal(sync.notification(notification(2)), 'duplicate', 'an older one (already in history)')
  t.equal(sync.notification(notification(4)), 'live', 'and the stream goes on')
  t.same(sync.since, at(4))
})

t.test('catch-up frames are not mistaken for duplicates of ready\'s newest seq', async (t) => {
  const sync = new FeedSync()
  // ready names the newest (8); the replay from since=5 sends 6, 7, 8.
  sync.ready(ready(8), at(5))
  t.equal(sync.notification(notification(6)), 'catch-up')
  t.equal(sync.notification(notification(7)), 'catch-up')
  t.equal(sync.notification(notification(8)), 'catch-up')
  t.equal(sync.synced(synced(8)), 'ok')
  t.equal(sync.notification(notification(9)), 'live')
})

t.test('synced with reset asks for a history reload and continues from the frame\'s cursor', async (t) => {
  const positions: Position[] = []
  const sync = new FeedSync({ onPosition: (position) => positions.push(position) })
  sync.history([item(40, '2026-01-01T00:00:40.000Z', 'old')], true)
  t.same(sync.upTo, at(40, 'old'))

  sync.ready(ready(3), sync.since)
  t.equal(sync.synced(synced(3, true, 'new')), 'reset')
  t.same(sync.since, at(3, 'new'), 'the next connection resumes from the cursor in the frame')
  t.same(positions.at(-1), at(3, 'new'), 'and that is the position persisted')
  t.equal(sync.upTo, null, 'nothing from the old epoch is marked read')
  t.equal(sync.notification(notification(4)), 'live', 'live frames go on after the reset cursor')
  t.equal(sync.notification(notification(6)), 'hole', 'and are checked from there')
})

t.test('ready without since asks for a history refresh; with since it does not', async (t) => {
  t.same(new FeedSync().ready(ready(0), null), { refreshHistory: true })
  t.same(new FeedSync().ready(ready(5), at(5)), { refreshHistory: false })
})

t.test('upTo is the highest seq seen, not the item with the newest createdAt', async (t) => {
  const sync = new FeedSync()
  // History is newest first by feed order; a late-landing follow (seq 3) carries the oldest createdAt.
  sync.history([
    item(3, '2026-01-01T08:00:00.000Z'),
    item(2, '2026-01-01T10:00:00.000Z'),
    item(1, '2026-01-01T09:00:00.000Z')
  ], true)
  t.same(sync.upTo, at(3))
  t.same(sync.since, at(3))

  sync.ready(ready(3), sync.since)
  sync.synced(synced(3))
  // An external producer with clock skew: seq 4 claims to be from a year ago.
  t.equal(sync.notification(notification(4, '2025-01-01T00:00:00.000Z')), 'live')
  t.same(sync.upTo, at(4))

  sync.history([item(2, '2026-01-01T10:00:00.000Z'), item(1, '2026-01-01T09:00:00.000Z')], false)
  t.same(sync.upTo, at(4), 'an older page does not lower it')
})

t.test('upTo takes the highest seq of a page whatever its order', async (t) => {
  const sync = new FeedSync()
  sync.history([item(5, '2026-01-01T00:00:00.000Z'), item(7, '2026-01-01T00:00:00.000Z'), item(6, '2026-01-01T00:00:00.000Z')], true)
  t.same(sync.upTo, at(7))
  t.same(sync.since, at(7))
})

t.test('a stored resume point is used only when history gave none', async (t) => {
  const empty = new FeedSync()
  empty.history([], true)
  empty.resumeFrom(at(12))
  t.same(empty.since, at(12))

  const loaded = new FeedSync()
  loaded.history([item(14, '2026-01-01T00:00:00.000Z')], true)
  loaded.resumeFrom(at(12))
  t.same(loaded.since, at(14))
})

t.test('stale() forgets upTo until history is loaded again', async (t) => {
  const sync = new FeedSync()
  sync.history([item(2, '2026-01-01T00:00:00.000Z')], true)
  sync.stale()
  t.equal(sync.upTo, null)
  sync.history([item(1, '2026-01-01T00:00:00.000Z', 'new')], true)
  t.same(sync.upTo, at(1, 'new'))
})

t.test('a ping past the last seq is a hole (the last frames were lost); at or below it, or without a seq, all is well', async (t) => {
  const sync = new FeedSync()
  sync.ready(ready(3), null)
  t.equal(sync.ping({ type: 'ping', seq: 3, rev: 0, unread: 0 }), 'ok')
  t.equal(sync.notification(notification(4)), 'live')
  t.equal(sync.ping({ type: 'ping', seq: 4, rev: 0, unread: 0 }), 'ok')
  t.equal(sync.ping({ type: 'ping' }), 'ok', 'the gateway could not read the inbox')
  t.equal(sync.ping({ type: 'ping', seq: 5, rev: 0, unread: 0 }), 'hole', 'seq 5 never came, and nothing after it would tell')
  t.same(sync.since, at(4), 'resume from the last position the page has everything up to')
  t.equal(sync.ping({ type: 'ping', seq: 6, rev: 0, unread: 0 }), 'ignored', 'until the next ready')

  const catchingUp = new FeedSync()
  catchingUp.ready(ready(9), at(4))
  t.equal(catchingUp.ping({ type: 'ping', seq: 9, rev: 0, unread: 0 }), 'ok', 'during a catch-up the feed is ahead by design')
})

function state (rev: number, seq: number): StateFrame {
  return { type: 'state', rev, seq, changes: [{ op: 'archive', ids: ['a'] }], unread: 0, unseen: 0, cursor: `${EPOCH}.${seq}.${rev}` }
}

t.test('state frames follow rev as notifications follow seq: a repeat is dropped, a skipped rev is a hole', async (t) => {
  const sync = new FeedSync()
  sync.ready({ ...ready(3), rev: 5 }, null)
  t.equal(sync.state(state(6, 3)), 'live')
  t.same(sync.since, { cursor: `${EPOCH}.3.6`, seq: 3, rev: 6 }, 'the resume point carries the rev applied')
  t.equal(sync.state(state(6, 3)), 'duplicate')
  t.equal(sync.notification(notification(4)), 'live')
  t.same(sync.since, { cursor: cursor(4), seq: 4, rev: 6 }, 'a notification keeps the rev applied so far')
  t.equal(sync.state(state(8, 4)), 'hole', 'rev 7 was never seen')
  t.equal(sync.state(state(9, 4)), 'ignored', 'nothing after the hole until the resync')
})

t.test('a catch-up counts revs from since\'s rev, or from ready\'s when since has none (no state is replayed then)', async (t) => {
  const withRev = new FeedSync()
  withRev.ready({ ...ready(4), rev: 9 }, { cursor: `${EPOCH}.4.6`, seq: 4, rev: 6 })
  t.equal(withRev.state(state(7, 4)), 'catch-up')
  t.equal(withRev.synced({ ...synced(4), rev: 9 }), 'hole', 'synced at rev 9, only 7 replayed')

  const complete = new FeedSync()
  complete.ready({ ...ready(4), rev: 7 }, { cursor: `${EPOCH}.4.6`, seq: 4, rev: 6 })
  t.equal(complete.state(state(7, 4)), 'catch-up')
  t.equal(complete.synced({ ...synced(4), rev: 7 }), 'ok')
  t.equal(complete.state(state(8, 4)), 'live')

  const fromHistory = new FeedSync()
  fromHistory.ready({ ...ready(4), rev: 9 }, at(4))
  t.equal(fromHistory.synced({ ...synced(4), rev: 9 }), 'ok', 'ready\'s rev is where the state starts')
  t.equal(fromHistory.state(state(10, 4)), 'live')
})

t.test('a ping past the last rev is a hole: a state frame was lost on the way', async (t) => {
  const sync = new FeedSync()
  sync.ready({ ...ready(3), rev: 2 }, null)
  t.equal(sync.ping({ type: 'ping', seq: 3, rev: 2, unread: 0 }), 'ok')
  t.equal(sync.ping({ type: 'ping', seq: 3, rev: 3, unread: 0 }), 'hole')
})

t.test('synced with reset takes its rev: the next state frame follows it', async (t) => {
  const sync = new FeedSync()
  sync.ready({ ...ready(4), rev: 9 }, { cursor: 'old.4.2', seq: 4, rev: 2 })
  t.equal(sync.synced({ ...synced(4, true), rev: 9 }), 'reset')
  t.equal(sync.state(state(10, 4)), 'live')
})
