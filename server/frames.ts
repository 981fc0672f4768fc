import type { User } from './directory.js'
import type { Notification } from './notification.js'

/**
 * The WebSocket frames the gateway sends (server → client only), serialized once and shared by
 * every tab of a user. docs/protocol.md describes them for clients.
 */
/** `cursor`: the user's newest notification when the socket opened ("0" if none), to resume from. */
export function readyFrame (user: User, unread: number, newestSeq: number): string {
  return JSON.stringify({ type: 'ready', user: { id: user.id, name: user.name }, unread, cursor: encodeCursor(newestSeq) })
}

export function notificationFrame (notification: Notification, seq: number): string {
  return JSON.stringify({ type: 'notification', notification, cursor: encodeCursor(seq) })
}

/** `reset: true` tells the client its cursor could not be caught up from: reload history. */
export function syncedFrame (seq: number, reset: boolean): string {
  return JSON.stringify(reset ? { type: 'synced', cursor: encodeCursor(seq), reset: true } : { type: 'synced', cursor: encodeCursor(seq) })
}

export function unreadFrame (unread: number): string {
  return JSON.stringify({ type: 'unread', unread })
}

/** Cursors are opaque to clients; today they are the inbox sequence number in decimal. */
export const CURSOR_PATTERN = '^[0-9]{1,15}$'

export function encodeCursor (seq: number): string {
  return String(seq)
}

export function decodeCursor (cursor: string): number {
  return Number(cursor)
}
