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

export interface HistoryItem extends Notification {
  read: boolean
  cursor: string
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

export type ServerFrame =
  | { type: 'ready', user: User, unread: number }
  | { type: 'notification', notification: Notification, cursor: string }
  | { type: 'synced', cursor: string, reset?: true }
  | { type: 'unread', unread: number }
