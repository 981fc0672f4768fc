/**
 * The WebSocket frames the gateway sends (server → client only), serialized once and shared by
 * every tab of a user. docs/protocol.md describes them for clients. `cursor` is opaque to
 * clients (see cursor.ts); `seq` is the notification's place in the user's feed (1, 2, 3…), so a
 * client can tell a hole (seq ≠ last + 1) from "nothing happened".
 *
 * The types are the one description of the frames for the page (web/), the tests and the bench.
 * This file imports nothing: the page's compiler reads it too, without Node's types.
 */

/** `cursor`/`seq`: the user's newest notification when the socket opened (seq 0 if none), to resume from. */
export interface ReadyFrame {
  type: 'ready'
  user: { id: string, name: string }
  unread: number
  cursor: string
  seq: number
}

/**
 * One notification of the feed. Live frames carry the recipient's `unread` count after it;
 * replayed ones do not (`ready` had it). `N` is the notification's type where the frame is read:
 * server/notification.ts's `Notification` (which needs Node), or the page's own.
 */
export interface NotificationFrame<N> {
  type: 'notification'
  notification: N
  cursor: string
  seq: number
  unread?: number
}

/** The end of a catch-up; `reset: true` tells the client its cursor could not be caught up from: reload history. */
export interface SyncedFrame {
  type: 'synced'
  cursor: string
  seq: number
  reset?: true
}

/** The user's unread count after a read mark. */
export interface UnreadFrame {
  type: 'unread'
  unread: number
}

export type Frame<N> = ReadyFrame | NotificationFrame<N> | SyncedFrame | UnreadFrame

export function readyFrame (user: ReadyFrame['user'], unread: number, cursor: string, seq: number): string {
  const frame: ReadyFrame = { type: 'ready', user: { id: user.id, name: user.name }, unread, cursor, seq }
  return JSON.stringify(frame)
}

/**
 * `notificationJson` is the notification's JSON as stored (the Kafka record's value, validated
 * on the way in): it is spliced in as is, not parsed and written again.
 */
export function notificationFrame (notificationJson: string, cursor: string, seq: number, unread?: number): string {
  const tail = unread === undefined ? '' : `,"unread":${unread}`
  return `{"type":"notification","notification":${notificationJson},"cursor":${JSON.stringify(cursor)},"seq":${seq}${tail}}`
}

export function syncedFrame (cursor: string, seq: number, reset: boolean): string {
  const frame: SyncedFrame = reset ? { type: 'synced', cursor, seq, reset: true } : { type: 'synced', cursor, seq }
  return JSON.stringify(frame)
}

export function unreadFrame (unread: number): string {
  const frame: UnreadFrame = { type: 'unread', unread }
  return JSON.stringify(frame)
}
