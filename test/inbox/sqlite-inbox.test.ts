import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sqliteDriver } from '../../server/inbox/sqlite-driver.js'
import { SqliteInbox } from '../../server/inbox/sqlite-inbox.js'
import { tempDir } from '../helpers/gateway.js'
import { fed, inboxContract, KEEP_ALL, notificationFor } from './contract.js'

const BOOT = 'boot-1'

/** A store in a dir that does not exist yet (the inbox creates it), opened on one boot. */
function sqliteStore (t: Test, file = join(tempDir(t), 'data', 'inbox.sqlite')): { file: string, open: (retention?: typeof KEEP_ALL, bootId?: string) => Promise<SqliteInbox> } {
  return { file, open: async (retention = KEEP_ALL, bootId = BOOT) => new SqliteInbox(file, retention, { bootId }) }
}

inboxContract(t, async (t) => sqliteStore(t))

t.test('a clean close keeps the epoch, even across a reboot', async (t) => {
  const store = sqliteStore(t)
  const first = await store.open()
  await fed(first).append([notificationFor('1')])
  await first.close()
  const inbox = await store.open(KEEP_ALL, 'another boot')
  t.teardown(() => inbox.close())
  t.equal(inbox.epoch, first.epoch)
  t.equal(inbox.newEpochReason, undefined)
  t.equal((await inbox.feed('1')).newestSeq, 1)
})

t.test('a store of the first schema (one global sequence) is migrated: each feed renumbered 1, 2, 3…, unread counted, a new epoch', async (t) => {
  const file = join(tempDir(t), 'inbox.sqlite')
  const v1 = sqliteDriver().open(file)
  v1.exec(`
    CREATE TABLE notifications (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
      body TEXT NOT NULL, created_at INTEGER NOT NULL, read INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX notifications_by_user ON notifications (user_id, seq);
    CREATE INDEX notifications_unread ON notifications (user_id) WHERE read = 0;
    CREATE INDEX notifications_by_age ON notifications (created_at);
    CREATE TABLE pruned (user_id TEXT PRIMARY KEY, up_to_seq INTEGER NOT NULL);`)
  const old = [notificationFor('1'), notificationFor('2'), notificationFor('1'), notificationFor('1')]
  const insert = v1.prepare<[string, string, string, number, number]>('INSERT INTO notifications (id, user_id, body, created_at, read) VALUES (?, ?, ?, ?, ?)')
  old.forEach((notification, i) => insert.run(notification.id, notification.userId, JSON.stringify(notification), Date.parse(notification.createdAt), i === 0 ? 1 : 0))
  v1.close()

  const inbox = await sqliteStore(t, file).open()
  t.teardown(() => inbox.close())
  const { append } = fed(inbox)
  t.equal(inbox.newEpochReason, 'a new store')
  t.same((await inbox.history('1', 10)).items.map(({ seq, notification, read }) => [seq, notification.id, read]),
    [[3, old[3]!.id, false], [2, old[2]!.id, false], [1, old[0]!.id, true]])
  t.same(await inbox.feed('1'), { newestSeq: 3, unread: 2, rev: 0 })
  t.same(await inbox.feed('2'), { newestSeq: 1, unread: 1, rev: 0 })
  t.same((await append([notificationFor('1')])).map(({ seq }) => seq), [4], 'the feed goes on')
  t.same(await append([old[1]!]), [], 'migrated ids are still deduplicated')
})

/** Takes a store of the current schema back to the fourth (before the indexes of unread and in-inbox rows). */
const TO_VERSION_4 = 'DROP INDEX notifications_unread; DROP INDEX notifications_in_inbox'

/** Takes a store of the current schema back to the third (before archive, delete, groups, seen, the state log and mute lists). */
const TO_VERSION_3 = `${TO_VERSION_4};
  DROP TABLE groups; DROP TABLE group_actors; DROP TABLE state_changes; DROP TABLE preferences;
  ALTER TABLE notifications DROP COLUMN archived; ALTER TABLE notifications DROP COLUMN deleted; ALTER TABLE notifications DROP COLUMN group_id;
  ALTER TABLE feeds DROP COLUMN seen_seq; ALTER TABLE feeds DROP COLUMN state_floor`

t.test('a store of the third schema is migrated: nothing archived or deleted, each notification a group of its own, no state log, the epoch kept', async (t) => {
  const store = sqliteStore(t)
  const first = await store.open()
  const [one] = await fed(first).append([notificationFor('1'), notificationFor('1')])
  await first.markRead('1', { upTo: 1 })
  await first.close()
  const v3 = sqliteDriver().open(store.file)
  v3.exec(`${TO_VERSION_3}; PRAGMA user_version = 3`)
  v3.close()

  const inbox = await store.open()
  t.teardown(() => inbox.close())
  t.equal(inbox.epoch, first.epoch, 'cursors issued before stay valid')
  t.same(await inbox.snapshot('1'), { newestSeq: 2, unread: 1, rev: 1, unseen: 2 }, 'the rev kept, nothing seen yet')
  const { items } = await inbox.grouped('1', 10, undefined, { archived: false })
  t.same(items.map(({ newest, count }) => [newest.seq, count]), [[2, 1], [1, 1]], 'each of the old notifications is a group of its own')
  t.same(await inbox.stateAfter('1', 0, 10), { changes: [], floor: 0 }, 'changes of before were not logged: a cursor at rev 0 finds none to replay')
  const { feed } = await inbox.changeState('1', { op: 'archive', ids: [one!.notification.id] })
  t.same(feed, { newestSeq: 2, unread: 1, rev: 2, unseen: 1 }, 'state changes go on from the kept rev')
  t.same((await inbox.preferences('1')), { types: [], actors: [] })
})

t.test('a store of the fourth schema is migrated: the indexes of unread and in-inbox rows built, counts and states kept', async (t) => {
  const store = sqliteStore(t)
  const first = await store.open()
  const [one] = await fed(first).append([notificationFor('1'), notificationFor('1'), notificationFor('1')])
  await first.changeState('1', { op: 'archive', ids: [one!.notification.id] })
  await first.close()
  const v4 = sqliteDriver().open(store.file)
  v4.exec(`${TO_VERSION_4}; PRAGMA user_version = 4`)
  v4.close()

  const inbox = await store.open()
  t.equal(inbox.epoch, first.epoch, 'cursors issued before stay valid')
  t.same(await inbox.snapshot('1'), { newestSeq: 3, unread: 2, rev: 1, unseen: 2 })
  t.same((await inbox.changeState('1', { op: 'read', upToSeq: 3 })).feed, { newestSeq: 3, unread: 0, rev: 2, unseen: 2 }, 'a mark-all-read goes on from there')
  await inbox.close()
  const db = sqliteDriver().open(store.file)
  t.teardown(() => db.close())
  const indexes = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('notifications_unread', 'notifications_in_inbox') ORDER BY name").all()
  t.same(indexes.map(({ name }) => name), ['notifications_in_inbox', 'notifications_unread'])
  t.equal(db.prepare<[], { user_version: number }>('PRAGMA user_version').get()?.user_version, 5)
})

t.test('a store of the second schema (no read-state rev) is migrated: every feed at rev 0, the epoch kept', async (t) => {
  const store = sqliteStore(t)
  const first = await store.open()
  await fed(first).append([notificationFor('1'), notificationFor('1')])
  await first.close()
  const v2 = sqliteDriver().open(store.file)
  v2.exec(`${TO_VERSION_3}; ALTER TABLE feeds DROP COLUMN rev; PRAGMA user_version = 2`)
  v2.close()

  const inbox = await store.open()
  t.teardown(() => inbox.close())
  t.equal(inbox.epoch, first.epoch, 'cursors issued before stay valid')
  t.same(await inbox.feed('1'), { newestSeq: 2, unread: 2, rev: 0 })
  t.same(await inbox.markRead('1', { upTo: 1 }), { newestSeq: 2, unread: 1, rev: 1 }, 'read marks count from there')
})

t.test('a store of a newer schema than this gateway knows is refused, and left as it was', async (t) => {
  const store = sqliteStore(t)
  const first = await store.open()
  await fed(first).append([notificationFor('1')])
  await first.close()
  const newer = sqliteDriver().open(store.file)
  newer.exec('PRAGMA user_version = 99')
  newer.close()

  await t.rejects(store.open(), /schema version 99, this gateway knows only versions up to 5/)
  const db = sqliteDriver().open(store.file)
  t.teardown(() => db.close())
  t.equal(db.prepare<[], { user_version: number }>('PRAGMA user_version').get()?.user_version, 99, 'not marked as this version')
  t.equal(db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM notifications').get()?.n, 1)
})
