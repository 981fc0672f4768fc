import type { User } from './directory.js'
import type { Notification } from './notification.js'

/**
 * The WebSocket frames the gateway sends (server → client only), serialized once and shared by
 * every tab of a user. docs/protocol.md describes them for clients. `cursor` is opaque to
 * clients (see cursor.ts); `seq` is the notification's place in the user's feed (1, 2, 3…), so a
 * client can tell a hole (seq ≠ last + 1) from "nothing happened".
 */
/** `cursor`/`seq`: the user's newest notification when the socket opened (seq 0 if none), to resume from. */
export function readyFrame (user: User, unread: number, cursor: string, seq: number): string {
  return JSON.stringify({ type: 'ready', user: { id: user.id, name: user.name }, unread, cursor, seq })
}

export function notificationFrame (notification: Notification, cursor: string, seq: number): string {
  return JSON.stringify({ type: 'notification', notification, cursor, seq })
}

/** `reset: true` tells the client its cursor could not be caught up from: reload history. */
export function syncedFrame (cursor: string, seq: number, reset: boolean): string {
  return JSON.stringify(reset ? { type: 'synced', cursor, seq, reset: true } : { type: 'synced', cursor, seq })
}

export function unreadFrame (unread: number): string {
  return JSON.stringify({ type: 'unread', unread })
}
