import { mkdirSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { Notification } from '../notification.js'
import type { AppendedNotification, CatchUpStart, HistoryPage, Inbox, RetentionPolicy, StoredNotification } from './types.js'

const PRUNE_CHUNK = 2000

const SCHEMA = `
CREATE TABLE IF NOT EXISTS notifications (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  read INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, seq);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id) WHERE read = 0;
CREATE INDEX IF NOT EXISTS notifications_by_age ON notifications (created_at);
CREATE TABLE IF NOT EXISTS pruned (
  user_id TEXT PRIMARY KEY,
  up_to_seq INTEGER NOT NULL
);
`

interface Row { seq: number, body: string, read: number }

/**
 * The embedded inbox: one SQLite file under DATA_DIR, in WAL mode. AUTOINCREMENT keeps `seq`
 * from ever being reused after deletes, so a cursor never points at someone else's row. The
 * `pruned` table remembers, per user, the newest seq retention deleted: a cursor older than that
 * cannot be caught up without a hole.
 */
export class SqliteInbox implements Inbox {
  readonly #db: Database.Database
  readonly #retention: RetentionPolicy
  /** Users that received notifications since the last prune; only they can be over the cap. */
  readonly #grown = new Set<string>()
  /** The first prune after opening also finds users over a cap that was lowered since. */
  #checkedAllUsers = false
  readonly #statements
  readonly #walFile: string | undefined

  constructor (file: string, retention: RetentionPolicy) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
    this.#db = new Database(file)
    this.#db.pragma('journal_mode = WAL')
    // NORMAL: an append survives a crash of the process at once, and a power cut after `flush`,
    // which runs before the consumer commits the batch's offsets. An fsync per append would block
    // the event loop for every batch.
    this.#db.pragma('synchronous = NORMAL')
    this.#db.exec(SCHEMA)
    this.#walFile = file === ':memory:' ? undefined : `${file}-wal`
    this.#retention = retention
    const db = this.#db
    this.#statements = {
      insert: db.prepare<[string, string, string, number], { seq: number }>(
        'INSERT INTO notifications (id, user_id, body, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq'),
      newest: db.prepare<[string, number], Row>(
        'SELECT seq, body, read FROM notifications WHERE user_id = ? ORDER BY seq DESC LIMIT ?'),
      newestBefore: db.prepare<[string, number, number], Row>(
        'SELECT seq, body, read FROM notifications WHERE user_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
      after: db.prepare<[string, number, number], Row>(
        'SELECT seq, body, read FROM notifications WHERE user_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?'),
      unread: db.prepare<[string], { n: number }>(
        'SELECT COUNT(*) AS n FROM notifications WHERE user_id = ? AND read = 0'),
      readUpTo: db.prepare<[string, number]>(
        'UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0 AND seq <= ?'),
      readId: db.prepare<[string, string]>(
        'UPDATE notifications SET read = 1 WHERE user_id = ? AND id = ? AND read = 0'),
      sequence: db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'notifications'"),
      prunedUpTo: db.prepare<[string], { up_to_seq: number }>('SELECT up_to_seq FROM pruned WHERE user_id = ?'),
      notePruned: db.prepare<[string, number]>(
        'INSERT INTO pruned (user_id, up_to_seq) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET up_to_seq = MAX(up_to_seq, excluded.up_to_seq)'),
      expired: db.prepare<[number, number], { seq: number, user_id: string }>(
        'DELETE FROM notifications WHERE seq IN (SELECT seq FROM notifications WHERE created_at < ? ORDER BY created_at LIMIT ?) RETURNING seq, user_id'),
      capSeq: db.prepare<[string, number], { seq: number }>(
        'SELECT seq FROM notifications WHERE user_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?'),
      usersOverCap: db.prepare<[number], { user_id: string }>(
        'SELECT user_id FROM notifications GROUP BY user_id HAVING COUNT(*) > ?'),
      overCap: db.prepare<[string, number], { seq: number }>(
        'DELETE FROM notifications WHERE user_id = ? AND seq <= ? RETURNING seq')
    }
  }

  readonly #appendBatch = (notifications: Notification[]): AppendedNotification[] =>
    this.#db.transaction(() => {
      const appended: AppendedNotification[] = []
      for (const notification of notifications) {
        const row = this.#statements.insert.get(
          notification.id, notification.userId, JSON.stringify(notification), Date.parse(notification.createdAt))
        if (row !== undefined) appended.push({ seq: row.seq, notification })
      }
      return appended
    })()

  async append (notifications: Notification[]): Promise<AppendedNotification[]> {
    const appended = this.#appendBatch(notifications)
    for (const { notification } of appended) this.#grown.add(notification.userId)
    return appended
  }

  async history (userId: string, limit: number, before?: number): Promise<HistoryPage> {
    const rows = before === undefined
      ? this.#statements.newest.all(userId, limit + 1)
      : this.#statements.newestBefore.all(userId, before, limit + 1)
    const more = rows.length > limit
    const items = rows.slice(0, limit).map(toStored)
    return { items, nextBefore: more ? items[items.length - 1]!.seq : null }
  }

  async after (userId: string, after: number, limit: number): Promise<StoredNotification[]> {
    return this.#statements.after.all(userId, after, limit).map(toStored)
  }

  async checkCursor (userId: string, after: number): Promise<CatchUpStart> {
    const issued = this.#statements.sequence.get()?.seq ?? 0
    if (after > issued) return { ok: false }
    const pruned = this.#statements.prunedUpTo.get(userId)?.up_to_seq ?? 0
    return { ok: after >= pruned }
  }

  async unread (userId: string): Promise<number> {
    return this.#statements.unread.get(userId)?.n ?? 0
  }

  async markRead (userId: string, selection: { upTo: number } | { ids: string[] }): Promise<number> {
    if ('upTo' in selection) {
      this.#statements.readUpTo.run(userId, selection.upTo)
    } else {
      this.#db.transaction(() => {
        for (const id of selection.ids) this.#statements.readId.run(userId, id)
      })()
    }
    return this.unread(userId)
  }

  async flush (): Promise<void> {
    // With synchronous=NORMAL a commit is in the WAL but not yet synced; syncing the WAL makes
    // every commit so far durable. (A checkpoint would sync it only when it can copy frames,
    // which a reader, such as a backup, can prevent.)
    // Async: an fsync can take tens of milliseconds, which must not stall the event loop.
    if (this.#walFile === undefined) return
    const wal = await open(this.#walFile, 'r').catch(() => undefined)
    if (wal === undefined) return // no WAL yet: nothing was written
    try {
      await wal.sync()
    } finally {
      await wal.close()
    }
  }

  async prune (now = Date.now()): Promise<number> {
    if (!this.#checkedAllUsers) {
      this.#checkedAllUsers = true
      for (const row of this.#statements.usersOverCap.all(this.#retention.maxPerUser)) this.#grown.add(row.user_id)
    }
    let removed = 0
    const deletedUpTo = new Map<string, number>()
    const note = (userId: string, seq: number): void => {
      deletedUpTo.set(userId, Math.max(seq, deletedUpTo.get(userId) ?? 0))
    }
    this.#db.transaction(() => {
      for (const row of this.#statements.expired.all(now - this.#retention.maxAgeMs, PRUNE_CHUNK)) {
        note(row.user_id, row.seq)
        removed++
      }
      for (const userId of this.#grown) {
        if (removed >= PRUNE_CHUNK) break
        this.#grown.delete(userId)
        const newestDropped = this.#statements.capSeq.get(userId, this.#retention.maxPerUser)
        if (newestDropped === undefined) continue
        for (const row of this.#statements.overCap.all(userId, newestDropped.seq)) {
          note(userId, row.seq)
          removed++
        }
      }
      for (const [userId, seq] of deletedUpTo) this.#statements.notePruned.run(userId, seq)
    })()
    return removed
  }

  async close (): Promise<void> {
    this.#db.close()
  }
}

function toStored (row: Row): StoredNotification {
  return { seq: row.seq, notification: JSON.parse(row.body) as Notification, read: row.read === 1 }
}
