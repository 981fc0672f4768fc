import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { ConsumedRecord, PartitionPosition } from '../kafka/types.js'
import type { Notification } from '../notification.js'
import { SqliteCheckpointer, type CheckpointResult } from './sqlite-checkpointer.js'
import { refusalCode, sqliteDriver, type SqliteDatabase } from './sqlite-driver.js'
import { currentBootId, decodeRewoundAt, describeBehind, encodeRewoundAt, judgeLastRun, newEpoch, newlyBehind, newRunId, type LastRun } from './epoch.js'
import { InboxRefusedError, type AppendedNotification, type AppendResult, type FeedState, type HistoryPage, type Inbox, type Reconciliation, type RetentionPolicy, type StoredNotification } from './types.js'
import type { Unready } from '../lifecycle.js'

const PRUNE_CHUNK = 2000
/** How often the log is copied into the database file, off the event loop (sqlite-checkpointer.ts). */
const CHECKPOINT_EVERY_MS = 1000
const SCHEMA_VERSION = 3

const SCHEMA = `
CREATE TABLE IF NOT EXISTS notifications (
  user_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  read INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, seq)
);
CREATE INDEX IF NOT EXISTS notifications_by_age ON notifications (created_at);
CREATE TABLE IF NOT EXISTS feeds (
  user_id TEXT PRIMARY KEY,
  newest_seq INTEGER NOT NULL,
  unread INTEGER NOT NULL,
  stored INTEGER NOT NULL,
  rev INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumed (
  topic TEXT NOT NULL,
  partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`

/** Version 1 numbered all users' rows with one global sequence; version 2 numbers each feed 1, 2, 3… */
const MIGRATE_FROM_V1 = `
DROP INDEX IF EXISTS notifications_by_user;
DROP INDEX IF EXISTS notifications_unread;
DROP INDEX IF EXISTS notifications_by_age;
ALTER TABLE notifications RENAME TO notifications_v1;
${SCHEMA}
INSERT INTO notifications (user_id, seq, id, body, created_at, read)
  SELECT user_id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY seq), id, body, created_at, read FROM notifications_v1;
INSERT INTO feeds (user_id, newest_seq, unread, stored)
  SELECT user_id, MAX(seq), SUM(read = 0), COUNT(*) FROM notifications GROUP BY user_id;
DROP TABLE notifications_v1;
DROP TABLE IF EXISTS pruned;
`

/** Version 3 counts each feed's read-state changes (`rev`); a store from before has made none that count. */
const MIGRATE_FROM_V2 = 'ALTER TABLE feeds ADD COLUMN rev INTEGER NOT NULL DEFAULT 0'

interface Row { seq: number, body: string, read: number }
/** `stored`: rows the user has now, so retention finds who is over the cap without counting rows. */
interface Feed { newestSeq: number, unread: number, stored: number, rev: number }
interface Position { topic: string, partition: number, next: number }

export interface SqliteInboxHost {
  /** The kernel's boot id; read from /proc when not given (tests pass their own). */
  bootId?: string | undefined
}

/**
 * The embedded inbox: one SQLite file under DATA_DIR, in WAL mode. Each user's feed is numbered
 * 1, 2, 3… (`feeds.newest_seq`), with its unread count kept beside it in the same transaction as
 * the rows. `consumed` holds, per Kafka partition, the offset after the last record applied, in
 * the same transaction too: a record consumed again (after a crash, a rebalance, a new group id)
 * is skipped even when retention has deleted its row. The epoch (see epoch.ts) is judged at open
 * from what the last run recorded in `meta` and in the run marker file beside the store, and again
 * by `reconcile` against the consumer group's committed offsets: a snapshot of DATA_DIR taken
 * while the gateway ran (run marker included) looks like a crash to the marker, not to the offsets.
 */
export class SqliteInbox implements Inbox {
  #epoch: string
  /** Why this open began a new epoch; undefined when it continues the last one. */
  readonly newEpochReason: string | undefined
  readonly #db: SqliteDatabase
  readonly #retention: RetentionPolicy
  /** Users that received notifications since the last prune; only they can be over the cap. */
  readonly #grown = new Set<string>()
  /** The first prune after opening also finds users over a cap that was lowered since. */
  #checkedAllUsers = false
  readonly #statements
  readonly #walFile: string | undefined
  readonly #markerFile: string | undefined
  readonly #bootId: string | undefined
  readonly #checkpointer: SqliteCheckpointer | undefined
  #closed = false

  constructor (file: string, retention: RetentionPolicy, host: SqliteInboxHost = {}) {
    const inMemory = file === ':memory:'
    if (!inMemory) mkdirSync(dirname(file), { recursive: true })
    this.#db = sqliteDriver().open(file)
    this.#db.exec('PRAGMA journal_mode = WAL')
    // NORMAL: an append survives a crash of the process at once, and a power cut after `flush`,
    // which runs before the consumer commits the batch's offsets. An fsync per append would block
    // the event loop for every batch. What a power cut can cost is caught by the epoch.
    this.#db.exec('PRAGMA synchronous = NORMAL')
    // Checkpoints run in a worker (below), never inside a commit on the event loop.
    if (!inMemory) this.#db.exec('PRAGMA wal_autocheckpoint = 0')
    this.#migrate()
    this.#walFile = inMemory ? undefined : `${file}-wal`
    this.#markerFile = inMemory ? undefined : `${file}.run`
    this.#bootId = 'bootId' in host ? host.bootId : currentBootId()
    this.#retention = retention
    const db = this.#db
    this.#statements = {
      insert: db.prepare<[string, number, string, string, number]>(
        'INSERT INTO notifications (user_id, seq, id, body, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING'),
      feed: db.prepare<[string], { newest_seq: number, unread: number, stored: number, rev: number }>('SELECT newest_seq, unread, stored, rev FROM feeds WHERE user_id = ?'),
      saveFeed: db.prepare<[string, number, number, number]>(
        'INSERT INTO feeds (user_id, newest_seq, unread, stored) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET newest_seq = excluded.newest_seq, unread = excluded.unread, stored = excluded.stored'),
      readMarked: db.prepare<[number, string]>('UPDATE feeds SET unread = unread - ?, rev = rev + 1 WHERE user_id = ?'),
      pruned: db.prepare<[number, number, string]>('UPDATE feeds SET unread = unread - ?, stored = stored - ? WHERE user_id = ?'),
      position: db.prepare<[string, number], { next_offset: number }>('SELECT next_offset FROM consumed WHERE topic = ? AND partition = ?'),
      savePosition: db.prepare<[string, number, number]>(
        'INSERT INTO consumed (topic, partition, next_offset) VALUES (?, ?, ?) ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset'),
      newest: db.prepare<[string, number], Row>(
        'SELECT seq, body, read FROM notifications WHERE user_id = ? ORDER BY seq DESC LIMIT ?'),
      newestBefore: db.prepare<[string, number, number], Row>(
        'SELECT seq, body, read FROM notifications WHERE user_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
      after: db.prepare<[string, number, number], Row>(
        'SELECT seq, body, read FROM notifications WHERE user_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?'),
      readUpTo: db.prepare<[string, number]>(
        'UPDATE notifications SET read = 1 WHERE user_id = ? AND seq <= ? AND read = 0'),
      readId: db.prepare<[string, string]>(
        'UPDATE notifications SET read = 1 WHERE user_id = ? AND id = ? AND read = 0'),
      expired: db.prepare<[number, number], { user_id: string, read: number }>(
        'DELETE FROM notifications WHERE rowid IN (SELECT rowid FROM notifications WHERE created_at < ? ORDER BY created_at LIMIT ?) RETURNING user_id, read'),
      capSeq: db.prepare<[string, number], { seq: number }>(
        'SELECT seq FROM notifications WHERE user_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?'),
      usersOverCap: db.prepare<[number], { user_id: string }>('SELECT user_id FROM feeds WHERE stored > ?'),
      overCap: db.prepare<[string, string, number, number], { read: number }>(
        'DELETE FROM notifications WHERE user_id = ? AND seq IN (SELECT seq FROM notifications WHERE user_id = ? AND seq <= ? ORDER BY seq LIMIT ?) RETURNING read'),
      meta: db.prepare<[], { key: string, value: string }>('SELECT key, value FROM meta'),
      saveMeta: db.prepare<[string, string]>(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
    }
    const lastRun = this.#lastRun()
    const verdict = judgeLastRun(lastRun, this.#readMarker(), this.#bootId)
    this.#epoch = verdict.keep && lastRun !== undefined ? lastRun.epoch : newEpoch()
    this.newEpochReason = verdict.keep ? undefined : verdict.why
    this.#recordRun(false)
    // Should the worker die, commits checkpoint again as SQLite does by default: a log that is
    // never copied would grow without end.
    this.#checkpointer = inMemory ? undefined : new SqliteCheckpointer(file, CHECKPOINT_EVERY_MS, () => { if (!this.#closed) this.#db.exec('PRAGMA wal_autocheckpoint = 1000') })
  }

  get epoch (): string {
    return this.#epoch
  }

  /** Copies the log into the database file now, in the checkpoint worker (it also does so every second). */
  async checkpoint (): Promise<CheckpointResult | undefined> {
    return await this.#checkpointer?.checkpoint()
  }

  #migrate (): void {
    const version = this.#db.prepare<[], { user_version: number }>('PRAGMA user_version').get()?.user_version
    if (version === SCHEMA_VERSION) return
    const hasV1 = version === 0 && this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'notifications'").get() !== undefined
    this.#db.transaction(() => {
      this.#db.exec(version === 2 ? MIGRATE_FROM_V2 : hasV1 ? MIGRATE_FROM_V1 : SCHEMA)
      this.#db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
    })
  }

  #lastRun (): LastRun | undefined {
    const meta = new Map(this.#statements.meta.all().map(({ key, value }) => [key, value]))
    const epoch = meta.get('epoch')
    if (epoch === undefined) return undefined
    return { epoch, runId: meta.get('run_id') ?? '', bootId: meta.get('boot_id') ?? '', clean: meta.get('clean') === '1' }
  }

  #readMarker (): string | undefined {
    if (this.#markerFile === undefined) return undefined
    try {
      return readFileSync(this.#markerFile, 'utf8').trim()
    } catch {
      return undefined
    }
  }

  /**
   * Records this run in `meta` (synced), then in the marker (synced). A crash between the two
   * leaves them disagreeing, which the next open reads as "maybe lost writes": a new epoch.
   */
  #recordRun (clean: boolean): void {
    const runId = newRunId()
    this.#db.exec('PRAGMA synchronous = FULL')
    this.#db.transaction(() => {
      this.#statements.saveMeta.run('epoch', this.epoch)
      this.#statements.saveMeta.run('run_id', runId)
      this.#statements.saveMeta.run('boot_id', this.#bootId ?? '')
      this.#statements.saveMeta.run('clean', clean ? '1' : '0')
    })
    this.#db.exec('PRAGMA synchronous = NORMAL')
    if (this.#markerFile === undefined) return
    const fd = openSync(this.#markerFile, 'w')
    try {
      writeSync(fd, `${runId}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  }

  readonly #appendBatch = (records: ConsumedRecord[], ends: PartitionPosition[]): AppendResult =>
    this.#db.transaction(() => {
      const appended: AppendedNotification[] = []
      const feeds = new Map<string, Feed>()
      const positions = new Map<string, Position>()
      const positionOf = (topic: string, partition: number): Position => {
        const where = `${partition}\u0000${topic}`
        let position = positions.get(where)
        if (position === undefined) {
          position = { topic, partition, next: this.#statements.position.get(topic, partition)?.next_offset ?? 0 }
          positions.set(where, position)
        }
        return position
      }
      for (const { notification, json, topic, partition, offset } of records) {
        const position = positionOf(topic, partition)
        const at = Number(offset)
        if (at < position.next) continue // applied before: its row may be gone, but it must not come back
        position.next = at + 1
        const feed = feeds.get(notification.userId) ?? this.#loadFeed(notification.userId)
        feeds.set(notification.userId, feed)
        const { changes } = this.#statements.insert.run(
          notification.userId, feed.newestSeq + 1, notification.id, json, Date.parse(notification.createdAt))
        if (changes === 0) continue // this id is stored already (the same follow produced twice)
        feed.newestSeq++
        feed.unread++
        feed.stored++
        appended.push({ seq: feed.newestSeq, notification, json, unread: feed.unread, rev: feed.rev })
      }
      for (const { topic, partition, nextOffset } of ends) {
        const position = positionOf(topic, partition)
        position.next = Math.max(position.next, Number(nextOffset))
      }
      const unread = new Map<string, number>()
      for (const { notification } of appended) unread.set(notification.userId, feeds.get(notification.userId)!.unread)
      for (const [userId, feed] of feeds) this.#statements.saveFeed.run(userId, feed.newestSeq, feed.unread, feed.stored)
      for (const { topic, partition, next } of positions.values()) this.#statements.savePosition.run(topic, partition, next)
      return { appended, unread }
    })

  #loadFeed (userId: string): Feed {
    const row = this.#statements.feed.get(userId)
    return { newestSeq: row?.newest_seq ?? 0, unread: row?.unread ?? 0, stored: row?.stored ?? 0, rev: row?.rev ?? 0 }
  }

  async append (records: ConsumedRecord[], positions: PartitionPosition[] = []): Promise<AppendResult> {
    let result: AppendResult
    try {
      result = this.#appendBatch(records, positions)
    } catch (error) {
      const code = refusalCode(error)
      if (code === undefined) throw error
      throw new InboxRefusedError(`the inbox (SQLite) refused it: ${code} ${(error as Error).message}`, { cause: error })
    }
    for (const userId of result.unread.keys()) this.#grown.add(userId)
    return result
  }

  async reconcile (topic: string, committed: ReadonlyMap<number, bigint>): Promise<Reconciliation> {
    return this.#db.transaction(() => {
      const stored = new Map([...committed.keys()].map((partition) => [partition, BigInt(this.#statements.position.get(topic, partition)?.next_offset ?? 0)]))
      const rewoundKey = `rewound_at:${topic}`
      const rewoundAt = decodeRewoundAt(this.#statements.meta.all().find(({ key }) => key === rewoundKey)?.value)
      const behind = newlyBehind(committed, stored, rewoundAt)
      if (behind.length === 0) return { stored }
      this.#epoch = newEpoch()
      this.#statements.saveMeta.run('epoch', this.#epoch)
      for (const { partition, committed: offset } of behind) rewoundAt.set(partition, offset)
      this.#statements.saveMeta.run(rewoundKey, encodeRewoundAt(rewoundAt))
      return { stored, epochChanged: describeBehind(behind) }
    })
  }

  async feed (userId: string): Promise<FeedState> {
    return this.#feedState(userId)
  }

  async feeds (userIds: readonly string[]): Promise<Map<string, FeedState>> {
    return new Map(userIds.map((userId) => [userId, this.#feedState(userId)]))
  }

  #feedState (userId: string): FeedState {
    const { newestSeq, unread, rev } = this.#loadFeed(userId)
    return { newestSeq, unread, rev }
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

  async unread (userId: string): Promise<number> {
    return this.#loadFeed(userId).unread
  }

  async markRead (userId: string, selection: { upTo: number } | { ids: string[] }): Promise<FeedState> {
    return this.#db.transaction(() => {
      let marked = 0
      if ('upTo' in selection) marked = this.#statements.readUpTo.run(userId, selection.upTo).changes
      else for (const id of selection.ids) marked += this.#statements.readId.run(userId, id).changes
      if (marked > 0) this.#statements.readMarked.run(marked, userId)
      return this.#feedState(userId)
    })
  }

  /** A file in this process: it is there as long as the inbox is open. */
  async unreadyReasons (): Promise<Unready[]> {
    return []
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
    const removedOf = new Map<string, { rows: number, unread: number }>()
    const note = (userId: string, read: number): void => {
      removed++
      const counts = removedOf.get(userId) ?? { rows: 0, unread: 0 }
      counts.rows++
      if (read === 0) counts.unread++
      removedOf.set(userId, counts)
    }
    this.#db.transaction(() => {
      for (const row of this.#statements.expired.all(now - this.#retention.maxAgeMs, PRUNE_CHUNK)) note(row.user_id, row.read)
      for (const userId of this.#grown) {
        if (removed >= PRUNE_CHUNK) break
        this.#grown.delete(userId)
        // Most users are under the cap: the counter says so without reading their rows.
        if (this.#loadFeed(userId).stored - (removedOf.get(userId)?.rows ?? 0) <= this.#retention.maxPerUser) continue
        const newestDropped = this.#statements.capSeq.get(userId, this.#retention.maxPerUser)
        if (newestDropped === undefined) continue
        const room = PRUNE_CHUNK - removed
        const rows = this.#statements.overCap.all(userId, userId, newestDropped.seq, room)
        for (const row of rows) note(userId, row.read)
        // A whole excess in one statement could hold the event loop for seconds: the rest waits for the next chunk.
        if (rows.length === room) this.#grown.add(userId)
      }
      for (const [userId, counts] of removedOf) this.#statements.pruned.run(counts.unread, counts.rows, userId)
    })
    return removed
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#checkpointer?.close()
    this.#recordRun(true)
    this.#db.close()
  }
}

function toStored (row: Row): StoredNotification {
  return { seq: row.seq, notification: JSON.parse(row.body) as Notification, read: row.read === 1 }
}
