import { copyFileSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { decodeCursor, encodeCursor, resumeAfter } from '../../server/feed/cursor.js'
import { decodeRewoundAt, encodeRewoundAt, judgeLastRun, newlyBehind } from '../../server/inbox/epoch.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import type { ConsumedRecord } from '../../server/kafka/types.js'
import { followNotification, type Notification } from '../../server/notification.js'
import { tempDir } from '../helpers/gateway.js'
import { consumedRecords } from '../helpers/records.js'

const KEEP_ALL = { maxPerUser: 1_000_000, maxAgeMs: 365 * 24 * 60 * 60 * 1000 }
const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }
const run = { epoch: 'e1', runId: 'r1', bootId: 'b1' }

t.test('judgeLastRun: only a store known to hold every acknowledged write keeps its epoch', async (t) => {
  t.same(judgeLastRun(undefined, undefined, 'b1'), { keep: false, why: 'a new store' })
  t.same(judgeLastRun({ ...run, clean: true }, 'r1', 'b2'), { keep: true }, 'closed cleanly: kept, even after a reboot')
  t.same(judgeLastRun({ ...run, clean: false }, 'r1', 'b1'), { keep: true }, 'the process died, the machine did not: the kernel kept the log')
  t.match(judgeLastRun({ ...run, clean: false }, 'r1', 'b2'), { keep: false, why: /machine restarted/ }, 'died across a reboot: the log tail may be gone')
  t.match(judgeLastRun({ ...run, clean: false }, 'r1', undefined), { keep: false }, 'no boot id to compare: assume the worst')
  t.match(judgeLastRun({ ...run, clean: true }, 'r0', 'b1'), { keep: false, why: /restored or copied/ }, 'another store than the one last run here')
  t.match(judgeLastRun({ ...run, clean: true }, undefined, 'b1'), { keep: false, why: /restored or copied/ }, 'no run marker beside it')
})

t.test('newlyBehind: a stored position behind the committed offset is a loss, once', async (t) => {
  const committed = new Map([[0, 10n], [1, -1n], [2, 7n], [3, 5n]])
  const stored = new Map([[0, 12n], [2, 4n]])
  t.same(newlyBehind(committed, stored, new Map()), [{ partition: 2, stored: 4n, committed: 7n }, { partition: 3, stored: 0n, committed: 5n }],
    'ahead (the inbox is ahead of the commits by up to a second) or never committed: fine; behind, or no position at all: lost')
  t.same(newlyBehind(committed, stored, new Map([[2, 7n], [3, 5n]])), [], 'found behind at those offsets before: the same loss, being made good')
  t.same(newlyBehind(new Map([[2, 9n]]), stored, new Map([[2, 7n]])), [{ partition: 2, stored: 4n, committed: 9n }], 'committed past it since: another loss')
  const rewoundAt = new Map([[0, 10n], [5, 2n ** 62n]])
  t.same(decodeRewoundAt(encodeRewoundAt(rewoundAt)), rewoundAt, 'kept as text and read back, 64-bit offsets included')
  t.same(decodeRewoundAt(undefined), new Map())
})

/** Copies the store's files as a crash would leave them on disk (the store stays open). */
function crashImage (file: string, into: string): string {
  const copy = join(into, 'inbox.sqlite')
  for (const suffix of ['', '-wal', '.run']) {
    if (existsSync(`${file}${suffix}`)) copyFileSync(`${file}${suffix}`, `${copy}${suffix}`)
  }
  return copy
}

function record (notification: Notification, offset: number): ConsumedRecord {
  return consumedRecords([notification], { firstOffset: offset })[0]!
}

t.test('a power cut that loses the log tail starts a new epoch: the lost cursor can never name another notification', async (t) => {
  const file = join(tempDir(t), 'inbox.sqlite')
  const inbox = new SqliteInbox(file, KEEP_ALL, { bootId: 'before the cut' })
  t.teardown(() => inbox.close())
  await inbox.append([record(followNotification(bruno, emma), 0), record(followNotification(bruno, emma), 1)])
  await inbox.flush()
  const syncedBytes = readFileSync(`${file}-wal`).length
  const lost = followNotification(bruno, emma)
  const [pushed] = (await inbox.append([record(lost, 2)])).appended
  // The client saw this notification (it is pushed before the WAL is synced) and keeps its cursor.
  const clientCursor = decodeCursor(encodeCursor(inbox.epoch, pushed!.seq))
  t.equal(pushed!.seq, 3)

  const image = crashImage(file, tempDir(t))
  truncateSync(`${image}-wal`, syncedBytes) // what the disk still has after the cut
  const after = new SqliteInbox(image, KEEP_ALL, { bootId: 'after the cut' })
  t.teardown(() => after.close())
  t.equal(await after.history('1', 10).then((page) => page.items.length), 2, 'the unsynced tail is gone')
  t.not(after.epoch, inbox.epoch, 'a new epoch')
  t.match(after.newEpochReason, /machine restarted/)
  const other = followNotification(emma, { id: '1', name: 'Emma' })
  const [reissued] = (await after.append([record(other, 2)])).appended
  t.equal(reissued!.seq, 3, 'the same seq goes to another notification…')
  t.equal(resumeAfter(clientCursor, after.epoch, (await after.feed('1')).newestSeq), undefined,
    '…but the client\'s cursor names the old epoch, so it gets a reset, not a silent skip')
})

t.test('a process crash (same boot) keeps the epoch: nothing acknowledged was lost', async (t) => {
  const file = join(tempDir(t), 'inbox.sqlite')
  const inbox = new SqliteInbox(file, KEEP_ALL, { bootId: 'b' })
  t.teardown(() => inbox.close())
  await inbox.append([record(followNotification(bruno, emma), 0)])
  const image = crashImage(file, tempDir(t))
  const after = new SqliteInbox(image, KEEP_ALL, { bootId: 'b' })
  t.teardown(() => after.close())
  t.equal(after.epoch, inbox.epoch)
  t.equal((await after.feed('1')).newestSeq, 1)
})

t.test('a store put back from a backup starts a new epoch', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'inbox.sqlite')
  const inbox = new SqliteInbox(file, KEEP_ALL, { bootId: 'b' })
  await inbox.append([record(followNotification(bruno, emma), 0)])
  const backup = join(tempDir(t), 'backup.sqlite')
  copyFileSync(file, backup)
  copyFileSync(`${file}-wal`, `${backup}-wal`)
  await inbox.append([record(followNotification(bruno, emma), 1)])
  await inbox.close()
  // The operator restores the backup over the store (the run marker beside it stays).
  copyFileSync(backup, file)
  copyFileSync(`${backup}-wal`, `${file}-wal`)
  const restored = new SqliteInbox(file, KEEP_ALL, { bootId: 'b' })
  t.teardown(() => restored.close())
  t.not(restored.epoch, inbox.epoch)
  t.match(restored.newEpochReason, /restored or copied/)
})

t.test('a fresh store has an epoch of its own, and a crash between the meta write and the marker is read as a loss', async (t) => {
  const dir = tempDir(t)
  const first = new SqliteInbox(join(dir, 'a.sqlite'), KEEP_ALL, { bootId: 'b' })
  const second = new SqliteInbox(join(dir, 'b.sqlite'), KEEP_ALL, { bootId: 'b' })
  t.not(first.epoch, second.epoch)
  t.equal(first.newEpochReason, 'a new store')
  await first.close()
  await second.close()
  writeFileSync(join(dir, 'a.sqlite.run'), 'some other run\n')
  const reopened = new SqliteInbox(join(dir, 'a.sqlite'), KEEP_ALL, { bootId: 'b' })
  t.teardown(() => reopened.close())
  t.not(reopened.epoch, first.epoch)
})
