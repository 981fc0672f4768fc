import type { Notification } from '../notification.js'

/** A notification as the inbox keeps it: `seq` orders a user's notifications and is the cursor. */
export interface StoredNotification {
  seq: number
  notification: Notification
  read: boolean
}

export interface AppendedNotification {
  seq: number
  notification: Notification
}

export interface HistoryPage {
  items: StoredNotification[]
  /** Pass as `before` for the next (older) page; null when there is nothing older. */
  nextBefore: number | null
}

export type CatchUpStart =
  | { ok: true }
  /** The cursor is unknown here, or older than what retention kept: the client must reload history. */
  | { ok: false }

export interface RetentionPolicy {
  maxPerUser: number
  maxAgeMs: number
}

/**
 * The durable store of every user's notifications and read state. The consumer appends before it
 * commits offsets; the API and catch-up read from it. Methods are async so that a shared store
 * (PostgreSQL, for several gateways) can stand behind the same interface.
 */
export interface Inbox {
  /** Stores a batch atomically, skipping ids already stored; returns only the new ones, in order. */
  append (notifications: Notification[]): Promise<AppendedNotification[]>
  /** Newest first, `seq < before` when given. */
  history (userId: string, limit: number, before?: number): Promise<HistoryPage>
  /** Oldest first, `seq > after`, at most `limit`. */
  after (userId: string, after: number, limit: number): Promise<StoredNotification[]>
  /** Whether catch-up from this cursor can be complete. */
  checkCursor (userId: string, after: number): Promise<CatchUpStart>
  unread (userId: string): Promise<number>
  /** Marks read what the user owns among `ids`, or every item with `seq <= upTo`; returns the new unread count. */
  markRead (userId: string, selection: { upTo: number } | { ids: string[] }): Promise<number>
  /** Makes every append so far durable (fsync); called before consumer offsets are committed. */
  flush (): Promise<void>
  /** Deletes what the retention policy no longer keeps, a bounded chunk at a time; returns how many rows went. */
  prune (now?: number): Promise<number>
  close (): Promise<void>
}
