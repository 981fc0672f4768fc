import { NotifyError } from '../errors.js'
import type { ConsumedRecord, PartitionPosition } from '../kafka/types.js'
import type { Notification } from '../notification.js'
import type { Unready } from '../lifecycle.js'
import type { DeletedNotification, GroupSummary, Muted, StateChange } from '../state-change.js'

/** How long after a group's first notification (by event time, `createdAt`) others of its key still join it. */
export const DEFAULT_GROUP_WINDOW_MS = 24 * 60 * 60 * 1000
/** The most types and actors a user may mute, each. */
export const MAX_MUTED = 100

/**
 * A notification as the inbox keeps it: `seq` is its place in its user's feed (1, 2, 3…), `groupId`
 * the group it belongs to (its own id when it groups with none). A deleted one is a tombstone.
 */
export interface StoredNotification {
  seq: number
  notification: Notification | DeletedNotification
  read: boolean
  archived: boolean
  groupId: string
}

/** What the inbox appended: a consumed notification with its new seq and the recipient's unread count. */
export interface AppendedNotification {
  seq: number
  notification: Notification
  /** The notification's JSON, as stored. */
  json: string
  /** The recipient's unread count right after this notification was stored… */
  unread: number
  /** …and their feed's `rev` then (see FeedState): the two say how new that count is. */
  rev: number
  /** The group it joined or began, as it stands with it; undefined when its type and key group with nothing. */
  group?: GroupSummary
}

export interface AppendResult {
  /** The notifications stored by this call, in the order given, each with its new seq. */
  appended: AppendedNotification[]
  /** Each recipient of `appended`: their unread count after the batch. */
  unread: Map<string, number>
}

/**
 * Where a user's feed stands. `newestSeq` and `rev` only grow, and every change of the feed moves
 * one of them, in the same transaction: so of two counts of one user, the one with the higher
 * `rev`, or the same `rev` and a higher seq, is the newer.
 */
export interface FeedState {
  /** The newest seq issued to this user (0: none yet); contiguous, never reused in an epoch. */
  newestSeq: number
  unread: number
  /** State changes so far (0: none yet), contiguous: each read, unread, seen, archive, unarchive or delete that changed something adds one. */
  rev: number
}

/** A feed's state with its unseen count: notifications after the seen mark, neither archived nor deleted, counted exactly when asked. */
export interface FeedSnapshot extends FeedState {
  unseen: number
}

/** Which notifications a state change acts on: these ids, the members of these groups, or every one up to a seq. */
export type Selection = { ids: readonly string[] } | { groups: readonly string[] } | { upToSeq: number }

/** A state change asked for; `seen` takes only `upToSeq`. */
export type StateRequest = Selection & { op: StateChange['op'] }

/** A state change as logged: its rev, the feed's newest seq when it was made, what it changed, and the counts after it. */
export interface LoggedChange {
  rev: number
  seq: number
  changes: StateChange[]
  unread: number
  unseen: number
}

/** What a state change did: the feed after it, and the change when it changed anything (a no-op takes no rev). */
export interface StateResult {
  feed: FeedSnapshot
  change: LoggedChange | undefined
}

/** The state log after a rev: the changes, oldest first, and `floor`: the newest rev retention deleted (0: none). */
export interface StateLog {
  changes: LoggedChange[]
  floor: number
}

/** One group of a grouped history page: its newest notification, how many it has, who caused them, how many are unread. */
export interface GroupedItem {
  newest: StoredNotification
  count: number
  actorCount: number
  actors: GroupSummary['actors']
  unread: number
}

export interface GroupedPage {
  items: GroupedItem[]
  /** Pass as `before` for the next (older) page: the newest seq of this page's last group; null at the end. */
  nextBefore: number | null
}

/** Which part of the history: the inbox (what is not archived) or the archive. Deleted notifications are in neither. */
export interface HistoryView {
  archived: boolean
}

export interface HistoryPage {
  items: StoredNotification[]
  /** Pass as `before` for the next (older) page; null when there is nothing older. */
  nextBefore: number | null
}

export interface RetentionPolicy {
  maxPerUser: number
  maxAgeMs: number
}

/**
 * The store cannot be reached now (its server is down, restarting or out of connections): the same
 * call may succeed later, so callers answer "try again" instead of failing for good. Any other
 * error from an inbox is a bug or a broken store.
 */
export class InboxUnavailableError extends NotifyError<'INBOX_UNAVAILABLE'> {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super('INBOX_UNAVAILABLE', message, { canRetry: true, cause: options.cause })
  }
}

/**
 * The store refused records as they are (PostgreSQL's data exceptions and integrity violations,
 * SQLite's constraint errors), and would refuse them again: nothing of the call was stored, and
 * the same records stored one at a time tell which of them it refuses.
 */
export class InboxRefusedError extends NotifyError<'INBOX_REFUSED'> {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super('INBOX_REFUSED', message, { canRetry: false, cause: options.cause })
  }
}

/**
 * The store is behind a position this process stored in it: it lost writes it had acknowledged
 * (a failover to a standby that lagged) while the gateway ran. Nothing of the call was stored. The
 * consumer must start over from the group, whose next assignment checks the positions
 * (`Inbox.reconcile`), consumes again what was lost and begins a new epoch.
 */
export class InboxRewoundError extends NotifyError<'INBOX_REWOUND'> {
  constructor (message: string) {
    super('INBOX_REWOUND', message, { canRetry: false })
  }
}

/** What `Inbox.reconcile` found. */
export interface Reconciliation {
  /** Each partition's stored position (0 when the store has none): where to consume it from when it is behind the group's. */
  stored: Map<number, bigint>
  /** Why the epoch this process used is over (this call began a new one, or another gateway did); undefined when it goes on. */
  epochChanged?: string
}

/**
 * The durable store of every user's notifications and read state. The consumer appends before it
 * commits offsets; the API and catch-up read from it. Methods are async so that a shared store
 * (PostgreSQL, for several gateways) can stand behind the same interface.
 */
export interface Inbox {
  /**
   * Names this store's life: it changes whenever the store may have lost writes (a fresh store, a
   * restore, a crash that may have cost the tail of the log, a failover found by `reconcile`), so
   * cursors of before never match. Read it each time: `reconcile` may change it.
   */
  readonly epoch: string
  /** Why this open began a new epoch (a new store, a restore…); undefined when it continues the last one. */
  readonly newEpochReason: string | undefined
  /**
   * Stores a batch atomically: each record at most once, whatever the consumer's committed
   * offsets say (records at or below the stored position of their partition are skipped), and
   * each notification id at most once. `positions` move the stored positions on to where the
   * consumer is (past records it dead-lettered), never back. Rejects with InboxUnavailableError
   * while the store is unreachable, with InboxRefusedError when it refuses a record as it is, and
   * with InboxRewoundError when it is behind a position this process stored there; either way
   * nothing of the call was stored.
   */
  append (records: ConsumedRecord[], positions?: PartitionPosition[]): Promise<AppendResult>
  /**
   * Checks the stored positions of `topic` against the consumer group's committed offsets of every
   * partition (-1: none), at start-up and at each assignment. A position behind its committed offset
   * means the store lost acknowledged writes: it begins a new epoch then (once per loss, whichever
   * gateway sees it first; PostgreSQL's also when the database server is another one or on another
   * timeline), and returns the stored positions, from which the consumer applies the lost records
   * again. Every later check, on any gateway, takes the new epoch.
   */
  reconcile (topic: string, committed: ReadonlyMap<number, bigint>): Promise<Reconciliation>
  feed (userId: string): Promise<FeedState>
  /** `feed` of each of these users, in one read. */
  feeds (userIds: readonly string[]): Promise<Map<string, FeedState>>
  /** `feed` with the unseen count. */
  snapshot (userId: string): Promise<FeedSnapshot>
  /** Newest first, `seq < before` when given; the inbox's (not archived) or the archive's, never deleted ones. */
  history (userId: string, limit: number, before?: number, view?: HistoryView): Promise<HistoryPage>
  /** One item per group, the group with the newest notification first, groups whose newest seq is `< before` when given. */
  grouped (userId: string, limit: number, before: number | undefined, view: HistoryView): Promise<GroupedPage>
  /** Oldest first, `seq > after`, at most `limit`: every seq, tombstones and archived ones included. */
  after (userId: string, after: number, limit: number): Promise<StoredNotification[]>
  unread (userId: string): Promise<number>
  /**
   * Marks read what the user owns among `ids`, or every item with `seq <= upTo`, and moves the
   * feed's `rev` on when that changed anything; returns the feed after it.
   */
  markRead (userId: string, selection: { upTo: number } | { ids: string[] }): Promise<FeedState>
  /**
   * Makes one state change in one transaction: the rows, the counts, the feed's `rev` (one more
   * when anything changed) and the change in the state log. Ids and groups the user does not own
   * are ignored.
   */
  changeState (userId: string, request: StateRequest): Promise<StateResult>
  /** The state log after `rev`, oldest first, at most `limit` changes. */
  stateAfter (userId: string, rev: number, limit: number): Promise<StateLog>
  /** The user's mute list (empty lists when never set). */
  preferences (userId: string): Promise<Muted>
  /** Replaces the mute list: notifications appended after it that it mutes are skipped before they get a seq. */
  setPreferences (userId: string, muted: Muted): Promise<Muted>
  /**
   * Why the store cannot serve now (empty when it can), for readiness: a shared store checks that
   * it answers, within a bound. Never throws.
   */
  unreadyReasons (): Promise<Unready[]>
  /** Makes every append so far durable (fsync); called before consumer offsets are committed. */
  flush (): Promise<void>
  /** Deletes what the retention policy no longer keeps, a bounded chunk at a time; returns how many rows went. */
  prune (now?: number): Promise<number>
  close (): Promise<void>
}
