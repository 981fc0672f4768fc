/** Shapes of the gateway's public API (docs/protocol.md). */
import type * as Gateway from '../../server/feed/frames.js'

export interface User {
  id: string
  name: string
}

/**
 * A notification as the gateway sends it (server/notification.ts has its schema). Not called
 * `Notification`: that is the browser's Notification API.
 */
export interface FeedNotification {
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
export interface HistoryItem extends FeedNotification {
  read: boolean
  cursor: string
  seq?: number
}

export interface HistoryPage {
  items: HistoryItem[]
  nextCursor: string | null
  unread: number
}

/** The answer of `POST /api/sessions` (dev sign-in): a token for `user`, until `expiresAt`. */
export interface IssuedToken {
  token: string
  user: User
  expiresAt: string
}

/**
 * The gateway's frames (server/feed/frames.ts), as the page also reads them from an older gateway:
 * without `seq`, `rev` or `ping` frames, and `ready` without `cursor` or `pingMs`.
 */
type FromOlderGateway<F, K extends keyof F> = Omit<F, K> & Partial<Pick<F, K>>

export type ReadyFrame = FromOlderGateway<Gateway.ReadyFrame, 'cursor' | 'seq' | 'rev' | 'pingMs'>
export type NotificationFrame = FromOlderGateway<Gateway.NotificationFrame<FeedNotification>, 'seq'>
export type SyncedFrame = FromOlderGateway<Gateway.SyncedFrame, 'seq'>
export type UnreadFrame = FromOlderGateway<Gateway.UnreadFrame, 'rev'>
export type PingFrame = Gateway.PingFrame

export type ServerFrame = ReadyFrame | NotificationFrame | SyncedFrame | UnreadFrame | PingFrame
