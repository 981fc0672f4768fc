import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { ConsumedRecord, PartitionPosition } from '../kafka/types.js'
import type { Notification } from '../notification.js'
import { SqliteCheckpointer, type CheckpointResult } from './sqlite-checkpointer.js'
import { refusalCode, sqliteDriver, type SqliteDatabase } from './sqlite-driver.js'
import { currentBootId, decodeRewoundAt, describeBehind, encodeRewoundAt, judgeLastRun, newEpoch, newlyBehind, newRunId, type LastRun } from './epoch.js'
import { groupedItem, groupKeyOf, isMuted, joinsGroup, loggedChange, parseMuted, withinFeed, tombstone, withActor } from './feed-rules.js'
import { DEFAULT_GROUP_WINDOW_MS, InboxRefusedError, type AppendedNotification, type AppendResult, type FeedSnapshot, type FeedState, type GroupedPage, type HistoryPage, type HistoryView, type Inbox, type Reconciliation, type RetentionPolicy, type LoggedChange, type StateLog, type StateRequest, type StateResult, type StoredNotification } from './types.js'
import type { GroupSummary, Muted } from '../state-change.js'
import type { Unready } from '../lifecycle.js'

const PRUNE_CHUNK = 2000
/** How often the log is copied into the database file, off the event loop (sqlite-checkpointer.ts). */
const CHECKPOINT_EVERY_MS = 1000
const SCHEMA_VERSION = 5

/**
 * `groups`: each user's groups as they stand (the live frames' summary), an open one taking
 * notifications of its type and key within the window; archiving or deleting a member, or
 * retention deleting one, closes it (its summary no longer matches what the history shows), and
 * the next such notification begins a new group. `group_actors`: who is in a group, for its
 * actor count. `state_changes`: the state log, for catch-up. `preferences`: mute lists.
 */
const V4_TABLES = `
CREATE TABLE IF NOT EXISTS groups (
  user_id TEXT NOT NULL,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  key TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  count INTEGER NOT NULL,
  actor_count INTEGER NOT NULL,
  actors TEXT NOT NULL,
  open INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS groups_by_key ON groups (user_id, type, key, first_seq);
CREATE INDEX IF NOT EXISTS groups_by_age ON groups (started_at);
CREATE TABLE IF NOT EXISTS group_actors (
  user_id TEXT NOT NULL,
  group_id TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  PRIMARY KEY (user_id, group_id, actor_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state_changes (
  user_id TEXT NOT NULL,
  rev INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  change TEXT NOT NULL,
  unread INTEGER NOT NULL,
  unseen INTEGER NOT NULL,
  PRIMARY KEY (user_id, rev)
);
CREATE INDEX IF NOT EXISTS state_changes_by_age ON state_changes (at);
CREATE TABLE IF NOT EXISTS preferences (
  user_id TEXT PRIMARY KEY,
  muted TEXT NOT NULL
) WITHOUT ROWID;
`

/**
 * The rows a state change "up to a seq" can move, and the unseen count reads: a user's unread rows,
 * and the rows in the inbox (not archived, not deleted). A mark-all-read or a clear-all then visits
 * only the rows it changes, and the unseen count only the index, however long the feed.
 */
const V5_INDEXES = `
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id, seq) WHERE read = 0 AND deleted = 0;
CREATE INDEX IF NOT EXISTS notifications_in_inbox ON notifications (user_id, seq) WHERE archived = 0 AND deleted = 0;
`

const SCHEMA = `
CREATE TABLE IF NOT EXISTS notifications (
  user_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  read INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  group_id TEXT,
  PRIMARY KEY (user_id, seq)
);
CREATE INDEX IF NOT EXISTS notifications_by_age ON notifications (created_at);
${V5_INDEXES}
CREATE TABLE IF NOT EXISTS feeds (
  user_id TEXT PRIMARY KEY,
  newest_seq INTEGER NOT NULL,
  unread INTEGER NOT NULL,
  stored INTEGER NOT NULL,
  rev INTEGER NOT NULL DEFAULT 0,
  seen_seq INTEGER NOT NULL DEFAULT 0,
  state_floor INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
${V4_TABLES}
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
const MIGRATE_FROM_V2 = 'ALTER TABLE feeds ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;'

/**
 * Version 4: archive, delete (tombstones), groups, the seen mark, the state log and its retention
 * floor, mute lists. A store from before has archived and deleted nothing, and each of its
 * notifications is a group of its own (`group_id` NULL reads as the row's own id).
 */
const MIGRATE_FROM_V3 = `
ALTER TABLE notifications ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN group_id TEXT;
ALTER TABLE feeds ADD COLUMN seen_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN state_floor INTEGER NOT NULL DEFAULT 0;
${V4_TABLES}`

/** What brings a store of version N up to N + 1, run one after another from the store's own version. */
const UPGRADES: Readonly<Record<number, string>> = { 2: MIGRATE_FROM_V2, 3: MIGRATE_FROM_V3, 4: V5_INDEXES }

interface Row { seq: number, body: string, read: number, archived: number, group_id: string | null, id: string }
const ROW = 'seq, body, read, archived, group_id, id'
/** A row as a state change reads it: its flags, not its content. */
type StateRow = Omit<Row, 'body'>
const STATE_ROW = 'seq, read, archived, group_id, id'
/** What a state change may touch: a user's rows that are not tombstones. */
const LIVE = 'user_id = ? AND deleted = 0'
/** The flag each of these changes sets on a row, and to what. */
const FLAGS = { read: ['read', 1], unread: ['read', 0], archive: ['archived', 1], unarchive: ['archived', 0] } as const
/** How a change names its rows, bound as one parameter: ids and groups as a JSON array, or the highest seq. */
const SELECTED = { ids: 'id IN (SELECT value FROM json_each(?))', groups: 'COALESCE(group_id, id) IN (SELECT value FROM json_each(?))', upTo: 'seq <= ?' } as const
type Selected = keyof typeof SELECTED
/** A row's part of the unread count. */
const counted = ({ read, archived }: Pick<StateRow, 'read' | 'archived'>): number => read === 0 && archived === 0 ? 1 : 0
interface GroupRow { id: string, started_at: number, count: number, actor_count: number, actors: string }
/** What a state change did to a feed's rows: the ids it changed, and how it moved the unread count. */
interface Changed { ids: string[], unreadMoved: number }
/** `stored`: rows the user has now, so retention finds who is over the cap without counting rows. */
interface Feed { newestSeq: number, unread: number, stored: number, rev: number }
interface Position { topic: string, partition: number, next: number }

export interface SqliteInboxHost {
  /** The kernel's boot id; read from /proc when not given (tests pass their own). */
  bootId?: string | undefined
  /** GROUP_WINDOW: DEFAULT_GROUP_WINDOW_MS when not given. */
  groupWindowMs?: number
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
  readonly #groupWindowMs: number
  /** Users whose state log grew since the last prune; only they can be over the cap. */
  readonly #changed = new Set<string>()
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
    this.#groupWindowMs = host.groupWindowMs ?? DEFAULT_GROUP_WINDOW_MS
    const db = this.#db
    this.#statements = {
      insert: db.prepare<[string, number, string, string, number, string]>(
        'INSERT INTO notifications (user_id, seq, id, body, created_at, group_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING'),
      feed: db.prepare<[string], { newest_seq: number, unread: number, stored: number, rev: number }>('SELECT newest_seq, unread, stored, rev FROM feeds WHERE user_id = ?'),
      saveFeed: db.prepare<[string, number, number, number]>(
        'INSERT INTO feeds (user_id, newest_seq, unread, stored) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET newest_seq = excluded.newest_seq, unread = excluded.unread, stored = excluded.stored'),
      readMarked: db.prepare<[number, string]>('UPDATE feeds SET unread = unread - ?, rev = rev + 1 WHERE user_id = ?'),
      pruned: db.prepare<[number, number, string]>('UPDATE feeds SET unread = unread - ?, stored = stored - ? WHERE user_id = ?'),
      position: db.prepare<[string, number], { next_offset: number }>('SELECT next_offset FROM consumed WHERE topic = ? AND partition = ?'),
      savePosition: db.prepare<[string, number, number]>(
        'INSERT INTO consumed (topic, partition, next_offset) VALUES (?, ?, ?) ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset'),
      history: db.prepare<[string, number, number, number], Row>(
        `SELECT ${ROW} FROM notifications WHERE user_id = ? AND seq < ? AND archived = ? AND deleted = 0 ORDER BY seq DESC LIMIT ?`),
      groupsBefore: db.prepare<[string, number, number, number], { group_id: string }>(
        `SELECT COALESCE(group_id, id) AS group_id, MAX(seq) AS newest FROM notifications WHERE user_id = ? AND archived = ? AND deleted = 0
         GROUP BY COALESCE(group_id, id) HAVING newest < ? ORDER BY newest DESC LIMIT ?`),
      groupMembers: db.prepare<[string, number, string], Row>(
        `SELECT ${ROW} FROM notifications WHERE user_id = ? AND archived = ? AND deleted = 0 AND COALESCE(group_id, id) IN (SELECT value FROM json_each(?)) ORDER BY seq DESC`),
      after: db.prepare<[string, number, number], Row>(
        `SELECT ${ROW} FROM notifications WHERE user_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?`),
      unseenCount: db.prepare<[string, number], { n: number }>(
        'SELECT COUNT(*) AS n FROM notifications WHERE user_id = ? AND seq > ? AND archived = 0 AND deleted = 0'),
      marks: db.prepare<[string], { seen_seq: number, state_floor: number }>('SELECT seen_seq, state_floor FROM feeds WHERE user_id = ?'),
      see: db.prepare<[number, string, number]>('UPDATE feeds SET seen_seq = ? WHERE user_id = ? AND seen_seq < ?'),
      // One statement per flag change and selection, moving only the rows that are not that way
      // yet (up to a seq, read and archive go through the V5 indexes), returning them as they are after.
      setFlag: mapObject(FLAGS, ([flag, value]) => mapObject(SELECTED, (selected) =>
        db.prepare<[string, string | number], StateRow>(`UPDATE notifications SET ${flag} = ${value} WHERE ${LIVE} AND ${flag} = ${1 - value} AND ${selected} RETURNING ${STATE_ROW}`))),
      toDelete: mapObject(SELECTED, (selected) => db.prepare<[string, string | number], Row>(`SELECT ${ROW} FROM notifications WHERE ${LIVE} AND ${selected}`)),
      setDeleted: db.prepare<[string, string, number]>('UPDATE notifications SET deleted = 1, read = 1, archived = 0, body = ? WHERE user_id = ? AND seq = ?'),
      closeGroup: db.prepare<[string, string]>('UPDATE groups SET open = 0 WHERE user_id = ? AND id = ?'),
      stateChanged: db.prepare<[number, number, string]>('UPDATE feeds SET rev = ?, unread = ? WHERE user_id = ?'),
      logChange: db.prepare<[string, number, number, number, string, number, number]>('INSERT INTO state_changes (user_id, rev, seq, at, change, unread, unseen) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      stateAfter: db.prepare<[string, number, number], { rev: number, seq: number, change: string, unread: number, unseen: number }>(
        'SELECT rev, seq, change, unread, unseen FROM state_changes WHERE user_id = ? AND rev > ? ORDER BY rev LIMIT ?'),
      expiredChanges: db.prepare<[number, number], { user_id: string, rev: number }>(
        'DELETE FROM state_changes WHERE rowid IN (SELECT rowid FROM state_changes WHERE at < ? ORDER BY at LIMIT ?) RETURNING user_id, rev'),
      changesOverCap: db.prepare<[string, number]>('DELETE FROM state_changes WHERE user_id = ? AND rev <= ?'),
      raiseFloor: db.prepare<[number, string]>('UPDATE feeds SET state_floor = MAX(state_floor, ?) WHERE user_id = ?'),
      expiredGroups: db.prepare<[number, number], { user_id: string, id: string }>(
        'DELETE FROM groups WHERE (user_id, id) IN (SELECT user_id, id FROM groups WHERE started_at < ? ORDER BY started_at LIMIT ?) RETURNING user_id, id'),
      dropGroupActors: db.prepare<[string, string]>('DELETE FROM group_actors WHERE user_id = ? AND group_id = ?'),
      openGroup: db.prepare<[string, string, string], GroupRow>(
        'SELECT id, started_at, count, actor_count, actors FROM groups WHERE user_id = ? AND type = ? AND key = ? AND open = 1 ORDER BY first_seq DESC LIMIT 1'),
      newGroup: db.prepare<[string, string, string, string, number, number, number, string]>(
        'INSERT INTO groups (user_id, id, type, key, first_seq, started_at, count, actor_count, actors) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)'),
      growGroup: db.prepare<[number, number, string, string, string]>('UPDATE groups SET count = ?, actor_count = ?, actors = ? WHERE user_id = ? AND id = ?'),
      addGroupActor: db.prepare<[string, string, string]>('INSERT INTO group_actors (user_id, group_id, actor_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      preferences: db.prepare<[string], { muted: string }>('SELECT muted FROM preferences WHERE user_id = ?'),
      savePreferences: db.prepare<[string, string]>(
        'INSERT INTO preferences (user_id, muted) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET muted = excluded.muted'),
      expired: db.prepare<[number, number], { user_id: string, counted: number, group_id: string | null }>(
        'DELETE FROM notifications WHERE rowid IN (SELECT rowid FROM notifications WHERE created_at < ? ORDER BY created_at LIMIT ?) RETURNING user_id, read = 0 AND archived = 0 AND deleted = 0 AS counted, group_id'),
      capSeq: db.prepare<[string, number], { seq: number }>(
        'SELECT seq FROM notifications WHERE user_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?'),
      usersOverCap: db.prepare<[number], { user_id: string }>('SELECT user_id FROM feeds WHERE stored > ?'),
      overCap: db.prepare<[string, string, number, number], { counted: number, group_id: string | null }>(
        'DELETE FROM notifications WHERE user_id = ? AND seq IN (SELECT seq FROM notifications WHERE user_id = ? AND seq <= ? ORDER BY seq LIMIT ?) RETURNING read = 0 AND archived = 0 AND deleted = 0 AS counted, group_id'),
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
    if (version === undefined || version > SCHEMA_VERSION || (version !== 0 && UPGRADES[version] === undefined)) {
      throw new Error(`The inbox store has schema version ${version}, this gateway knows only versions up to ${SCHEMA_VERSION}: run a gateway at least as new as the one that wrote it`)
    }
    // Version 0: a new file, or the first schema, which set no version.
    const hasV1 = version === 0 && this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'notifications'").get() !== undefined
    const steps = version === 0
      ? hasV1 ? MIGRATE_FROM_V1 : SCHEMA
      : Array.from({ length: SCHEMA_VERSION - version }, (_, i) => UPGRADES[version + i]).join('\n')
    this.#db.transaction(() => {
      this.#db.exec(steps)
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
      const muted = new Map<string, Muted>()
      for (const { notification, json, topic, partition, offset } of records) {
        const position = positionOf(topic, partition)
        const at = Number(offset)
        if (at < position.next) continue // applied before: its row may be gone, but it must not come back
        position.next = at + 1
        const userId = notification.userId
        const mutes = muted.get(userId) ?? parseMuted(this.#statements.preferences.get(userId)?.muted)
        muted.set(userId, mutes)
        // Decided before a seq is given: a muted notification leaves no hole.
        if (isMuted(mutes, notification)) continue
        const feed = feeds.get(userId) ?? this.#loadFeed(userId)
        feeds.set(userId, feed)
        const seq = feed.newestSeq + 1
        const createdAt = Date.parse(notification.createdAt)
        const key = groupKeyOf(notification)
        const joined = key === undefined ? undefined : this.#statements.openGroup.get(userId, notification.type, key)
        const group = joined !== undefined && joinsGroup(joined.started_at, createdAt, this.#groupWindowMs) ? joined : undefined
        const { changes } = this.#statements.insert.run(userId, seq, notification.id, json, createdAt, group?.id ?? notification.id)
        if (changes === 0) continue // this id is stored already (the same follow produced twice)
        feed.newestSeq = seq
        feed.unread++
        feed.stored++
        const summary = key === undefined ? undefined : this.#grouped(notification, key, seq, createdAt, group)
        appended.push({ seq, notification, json, unread: feed.unread, rev: feed.rev, ...(summary === undefined ? {} : { group: summary }) })
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

  /** Adds a just stored notification to its open `group`, or begins one with it; returns the group as it stands. */
  #grouped (notification: Notification, key: string, seq: number, createdAt: number, group: GroupRow | undefined): GroupSummary {
    const { userId, actor } = notification
    const id = group?.id ?? notification.id
    const newActor = actor !== null && this.#statements.addGroupActor.run(userId, id, actor.id).changes === 1
    const actors = withActor(group === undefined ? [] : JSON.parse(group.actors) as GroupSummary['actors'], actor)
    const count = (group?.count ?? 0) + 1
    const actorCount = (group?.actor_count ?? 0) + (newActor ? 1 : 0)
    if (group === undefined) this.#statements.newGroup.run(userId, id, notification.type, key, seq, createdAt, actorCount, JSON.stringify(actors))
    else this.#statements.growGroup.run(count, actorCount, JSON.stringify(actors), userId, id)
    return { id, key, count, actorCount, actors }
  }

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

  async snapshot (userId: string): Promise<FeedSnapshot> {
    return this.#snapshot(userId)
  }

  #snapshot (userId: string): FeedSnapshot {
    return { ...this.#feedState(userId), unseen: this.#unseen(userId) }
  }

  #unseen (userId: string): number {
    return this.#statements.unseenCount.get(userId, this.#statements.marks.get(userId)?.seen_seq ?? 0)!.n
  }

  async history (userId: string, limit: number, before = Number.MAX_SAFE_INTEGER, view: HistoryView = { archived: false }): Promise<HistoryPage> {
    const rows = this.#statements.history.all(userId, before, view.archived ? 1 : 0, limit + 1)
    const more = rows.length > limit
    const items = rows.slice(0, limit).map(toStored)
    return { items, nextBefore: more ? items[items.length - 1]!.seq : null }
  }

  async grouped (userId: string, limit: number, before = Number.MAX_SAFE_INTEGER, view: HistoryView): Promise<GroupedPage> {
    const archived = view.archived ? 1 : 0
    const groups = this.#statements.groupsBefore.all(userId, archived, before, limit + 1).map(({ group_id: id }) => id)
    const page = groups.slice(0, limit)
    const members = new Map<string, StoredNotification[]>(page.map((id) => [id, []]))
    for (const row of this.#statements.groupMembers.all(userId, archived, JSON.stringify(page))) members.get(row.group_id ?? row.id)!.push(toStored(row))
    const items = page.map((id) => groupedItem(members.get(id)!))
    return { items, nextBefore: groups.length > limit ? items[items.length - 1]!.newest.seq : null }
  }

  async after (userId: string, after: number, limit: number): Promise<StoredNotification[]> {
    return this.#statements.after.all(userId, after, limit).map(toStored)
  }

  async unread (userId: string): Promise<number> {
    return this.#loadFeed(userId).unread
  }

  async markRead (userId: string, selection: { upTo: number } | { ids: string[] }): Promise<FeedState> {
    const { feed: { newestSeq, unread, rev } } = await this.changeState(userId, 'upTo' in selection ? { op: 'read', upToSeq: selection.upTo } : { op: 'read', ...selection })
    return { newestSeq, unread, rev }
  }

  async changeState (userId: string, request: StateRequest): Promise<StateResult> {
    const result = this.#db.transaction((): StateResult => {
      const feed = this.#loadFeed(userId)
      const effective = withinFeed(request, feed.newestSeq)
      const changed = effective.op === 'seen' ? this.#see(userId, effective) : this.#change(userId, effective)
      if (changed === undefined) return { feed: this.#snapshot(userId), change: undefined }
      const rev = feed.rev + 1
      const unread = feed.unread + changed.unreadMoved
      this.#statements.stateChanged.run(rev, unread, userId)
      const unseen = this.#unseen(userId)
      const change = { rev, seq: feed.newestSeq, changes: [loggedChange(effective, changed.ids)], unread, unseen }
      this.#statements.logChange.run(userId, rev, feed.newestSeq, Date.now(), JSON.stringify(change.changes), unread, unseen)
      return { feed: { newestSeq: feed.newestSeq, unread, rev, unseen }, change }
    })
    if (result.change !== undefined) this.#changed.add(userId)
    return result
  }

  /** Moves the seen mark on; undefined when it was there already. */
  #see (userId: string, request: StateRequest): Changed | undefined {
    if (!('upToSeq' in request)) throw new Error('seen takes upToSeq')
    return this.#statements.see.run(request.upToSeq, userId, request.upToSeq).changes === 1 ? { ids: [], unreadMoved: 0 } : undefined
  }

  /**
   * Applies a change to the rows it selects, visiting only those it moves; returns the ids it
   * changed and how the unread count moved, undefined when none changed.
   */
  #change (userId: string, request: StateRequest): Changed | undefined {
    if (request.op === 'seen') throw new Error('seen moves the seen mark, no row')
    const [selected, value]: [Selected, string | number] = 'ids' in request
      ? ['ids', JSON.stringify(request.ids)]
      : 'groups' in request ? ['groups', JSON.stringify(request.groups)] : ['upTo', request.upToSeq]
    let unreadMoved = 0
    let rows: StateRow[]
    if (request.op === 'delete') {
      const deleted = this.#statements.toDelete[selected].all(userId, value)
      rows = deleted
      for (const row of deleted) {
        this.#statements.setDeleted.run(JSON.stringify(tombstone(JSON.parse(row.body) as Notification)), userId, row.seq)
        unreadMoved -= counted(row)
      }
    } else {
      const [flag, set] = FLAGS[request.op]
      rows = this.#statements.setFlag[request.op][selected].all(userId, value)
      // Each row's flag was the other way before, and nothing else of it changed.
      for (const row of rows) unreadMoved += counted(row) - counted({ ...row, [flag]: 1 - set })
    }
    if (rows.length === 0) return undefined
    if (request.op === 'archive' || request.op === 'delete') {
      for (const groupId of new Set(rows.map((row) => row.group_id ?? row.id))) this.#statements.closeGroup.run(userId, groupId)
    }
    return { ids: rows.map(({ id }) => id), unreadMoved }
  }

  async stateAfter (userId: string, rev: number, limit: number): Promise<StateLog> {
    const floor = this.#statements.marks.get(userId)?.state_floor ?? 0
    const changes = this.#statements.stateAfter.all(userId, rev, limit).map(({ change, ...row }) => ({ ...row, changes: JSON.parse(change) as LoggedChange['changes'] }))
    return { changes, floor }
  }

  async preferences (userId: string): Promise<Muted> {
    return parseMuted(this.#statements.preferences.get(userId)?.muted)
  }

  async setPreferences (userId: string, muted: Muted): Promise<Muted> {
    this.#statements.savePreferences.run(userId, JSON.stringify(muted))
    return muted
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
    const note = (userId: string, counted: number, groupId: string | null): void => {
      removed++
      const counts = removedOf.get(userId) ?? { rows: 0, unread: 0 }
      counts.rows++
      if (counted === 1) counts.unread++
      removedOf.set(userId, counts)
      // Its summary would count a member the history no longer has.
      if (groupId !== null) this.#statements.closeGroup.run(userId, groupId)
    }
    this.#db.transaction(() => {
      for (const row of this.#statements.expired.all(now - this.#retention.maxAgeMs, PRUNE_CHUNK)) note(row.user_id, row.counted, row.group_id)
      for (const userId of this.#grown) {
        if (removed >= PRUNE_CHUNK) break
        this.#grown.delete(userId)
        // Most users are under the cap: the counter says so without reading their rows.
        if (this.#loadFeed(userId).stored - (removedOf.get(userId)?.rows ?? 0) <= this.#retention.maxPerUser) continue
        const newestDropped = this.#statements.capSeq.get(userId, this.#retention.maxPerUser)
        if (newestDropped === undefined) continue
        const room = PRUNE_CHUNK - removed
        const rows = this.#statements.overCap.all(userId, userId, newestDropped.seq, room)
        for (const row of rows) note(userId, row.counted, row.group_id)
        // A whole excess in one statement could hold the event loop for seconds: the rest waits for the next chunk.
        if (rows.length === room) this.#grown.add(userId)
      }
      for (const [userId, counts] of removedOf) this.#statements.pruned.run(counts.unread, counts.rows, userId)
      this.#pruneStateLog(now)
    })
    return removed
  }

  /**
   * Deletes state changes past the retention policy (by age, and each user's beyond the newest
   * `maxPerUser`), recording each user's floor so that a cursor older than it is reset, and groups
   * begun before the age limit, a chunk of each at a time.
   */
  #pruneStateLog (now: number): void {
    const cutoff = now - this.#retention.maxAgeMs
    const floors = new Map<string, number>()
    const expired = this.#statements.expiredChanges.all(cutoff, PRUNE_CHUNK)
    for (const { user_id: userId, rev } of expired) floors.set(userId, Math.max(rev, floors.get(userId) ?? 0))
    for (const userId of this.#changed) {
      this.#changed.delete(userId)
      const floor = this.#loadFeed(userId).rev - this.#retention.maxPerUser
      if (floor > 0 && this.#statements.changesOverCap.run(userId, floor).changes > 0) floors.set(userId, Math.max(floor, floors.get(userId) ?? 0))
    }
    for (const [userId, floor] of floors) this.#statements.raiseFloor.run(floor, userId)
    const groups = this.#statements.expiredGroups.all(cutoff, PRUNE_CHUNK)
    for (const { user_id: userId, id } of groups) this.#statements.dropGroupActors.run(userId, id)
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
  return { seq: row.seq, notification: JSON.parse(row.body) as StoredNotification['notification'], read: row.read === 1, archived: row.archived === 1, groupId: row.group_id ?? row.id }
}

/** `object` with each value mapped. */
function mapObject<K extends string, V, W> (object: Readonly<Record<K, V>>, map: (value: V) => W): Record<K, W> {
  return Object.fromEntries(Object.entries<V>(object).map(([key, value]) => [key, map(value)])) as Record<K, W>
}
