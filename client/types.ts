/**
 * Shapes of the gateway's public API (docs/protocol.md), as clients read them. The frames' one
 * description is server/feed/frames.ts, imported for its types only: nothing of the server ships
 * with the client.
 */
import type * as Frames from '../server/feed/frames.js'

export interface User {
  id: string
  name: string
}

/**
 * A notification as the gateway sends it (server/notification.ts has its schema; docs/protocol.md):
 * `follow`, `message`, or any app's own lowercase type. Not called `Notification`: that is the
 * browser's Notification API.
 */
export interface FeedNotification {
  id: string
  type: string
  userId: string
  actor: (User & { avatarUrl?: string }) | null
  message: string
  createdAt: string
  title?: string
  url?: string
  data?: Record<string, unknown>
  groupKey?: string
}

/**
 * `seq` is the item's place in the user's feed (1, 2, 3… within one epoch); `groupId` the group it
 * belongs to (its own id when it groups with nothing; absent from older gateways).
 */
export interface HistoryItem extends FeedNotification {
  read: boolean
  cursor: string
  seq: number
  archived?: boolean
  groupId?: string
}

/**
 * An item of grouped history (`grouped=true`): the group's newest notification, with the group's
 * `count` of notifications, its `actorCount` distinct actors, up to three `actors` (newest first)
 * and how many of its notifications are `unread` (a number here, where `read` is the newest one's).
 */
export interface GroupedItem extends Omit<HistoryItem, 'groupId'> {
  groupId: string
  count: number
  actorCount: number
  actors: Array<User & { avatarUrl?: string }>
  unread: number
}

/** `unseen` and `rev` are absent from older gateways. */
export interface HistoryPage<I = HistoryItem> {
  items: I[]
  nextCursor: string | null
  unread: number
  unseen?: number
  rev?: number
}

/** The counts after a state change, and the feed's `rev` it made. */
export interface FeedCounts {
  unread: number
  unseen: number
  rev: number
}

/** Which notifications a state change acts on: some by id, or every one of some groups (1–100 ids). */
export type Selection = { ids: string[] } | { groups: string[] }

export type { GroupSummary, Muted, StateChange } from '../server/feed/frames.js'

/** The answer of `POST /api/sessions` (dev sign-in): a token for `user`, until `expiresAt`. */
export interface IssuedToken {
  token: string
  user: User
  expiresAt: string
}

/**
 * The gateway's frames (server/feed/frames.ts), as a client also reads them from an older gateway:
 * without `rev` or `ping` frames, and `ready` without `pingMs` or `unseen`. (Every gateway this client works with
 * sends `seq`, and `ready` its `cursor`.)
 */
type FromOlderGateway<F, K extends keyof F> = Omit<F, K> & Partial<Pick<F, K>>

export type ReadyFrame = FromOlderGateway<Frames.ReadyFrame, 'rev' | 'pingMs' | 'unseen'>
export type NotificationFrame = Frames.NotificationFrame<FeedNotification>
export type StateFrame = Frames.StateFrame
export type PreferencesFrame = Frames.PreferencesFrame
export type SyncedFrame = FromOlderGateway<Frames.SyncedFrame, 'rev'>
export type UnreadFrame = FromOlderGateway<Frames.UnreadFrame, 'rev'>
export type PingFrame = Frames.PingFrame
/** The last event of an event stream (GET /sse) only: the close code a WebSocket would have had. */
export type CloseFrame = Frames.CloseFrame

export type ServerFrame = ReadyFrame | NotificationFrame | SyncedFrame | UnreadFrame | PingFrame | StateFrame | PreferencesFrame
