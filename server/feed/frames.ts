import type { User } from '../directory.js'

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

/**
 * `notificationJson` is the notification's JSON as stored (the Kafka record's value, validated
 * on the way in): it is spliced in as is, not parsed and written again. Live frames carry the
 * recipient's `unread` count after this notification; replayed ones do not (`ready` had it).
 */
export function notificationFrame (notificationJson: string, cursor: string, seq: number, unread?: number): string {
  const tail = unread === undefined ? '' : `,"unread":${unread}`
  return `{"type":"notification","notification":${notificationJson},"cursor":${JSON.stringify(cursor)},"seq":${seq}${tail}}`
}

/** `reset: true` tells the client its cursor could not be caught up from: reload history. */
export function syncedFrame (cursor: string, seq: number, reset: boolean): string {
  return JSON.stringify(reset ? { type: 'synced', cursor, seq, reset: true } : { type: 'synced', cursor, seq })
}

export function unreadFrame (unread: number): string {
  return JSON.stringify({ type: 'unread', unread })
}
