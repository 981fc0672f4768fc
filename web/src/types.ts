/** Shapes of the gateway's public API (docs in DESIGN.md and docs/protocol.md). */

export interface User {
  id: string
  name: string
}

export interface Notification {
  id: string
  type: 'follow' | 'message'
  userId: string
  actor: User | null
  message: string
  createdAt: string
}

/**
 * `seq` is the item's place in the user's feed (1, 2, 3… within one epoch). Optional so the
 * page still works against a gateway from before per-user sequences.
 */
export interface HistoryItem extends Notification {
  read: boolean
  cursor: string
  seq?: number
}

export interface HistoryPage {
  items: HistoryItem[]
  nextCursor: string | null
  unread: number
}

export interface Session {
  token: string
  user: User
  expiresAt: string
}

export type ReadyFrame = { type: 'ready', user: User, unread: number, cursor?: string, seq?: number }
/** `unread`: live frames carry the recipient's unread count after this notification. */
export type NotificationFrame = { type: 'notification', notification: Notification, cursor: string, seq?: number, unread?: number }
export type SyncedFrame = { type: 'synced', cursor: string, seq?: number, reset?: true }
export type UnreadFrame = { type: 'unread', unread: number }

export type ServerFrame = ReadyFrame | NotificationFrame | SyncedFrame | UnreadFrame
