/**
 * The WebSocket frames the gateway sends (server → client only), serialized once and shared by
 * every tab of a user. docs/protocol.md describes them for clients. `cursor` is opaque to
 * clients (see cursor.ts); `seq` is the notification's place in the user's feed (1, 2, 3…), so a
 * client can tell a hole (seq ≠ last + 1) from "nothing happened".
 *
 * The types are the one description of the frames for the page (web/), the tests and the bench.
 * This file imports nothing: the page's compiler reads it too, without Node's types.
 *
 * An unread count is stamped with where the feed stood when it was read: its `rev` (read-state
 * changes so far) and, where the frame has one, its newest `seq`. Counts of one user that travel
 * apart (through different gateways) can arrive out of order; the stamp says which is newer
 * (docs/protocol.md).
 */

import type { DeletedNotification, GroupSummary, Muted, StateChange } from '../state-change.js'

export type { DeletedNotification, GroupSummary, Muted, StateChange }

/** Where a user's feed stood at one moment: its newest seq, its rev, and the unread count then. */
export interface FeedTail {
  seq: number
  rev: number
  unread: number
}

/**
 * `cursor`/`seq`/`rev`: where the user's feed stood when the socket opened (seq 0 if no
 * notification yet, rev 0 if no state change), to resume from; `unseen`: notifications after the
 * seen mark that are neither archived nor deleted; `pingMs`: how often `ping` frames come.
 */
export interface ReadyFrame {
  type: 'ready'
  user: { id: string, name: string }
  unread: number
  unseen: number
  cursor: string
  seq: number
  rev: number
  pingMs: number
}

/**
 * One notification of the feed. Live frames carry the recipient's `unread` count after it, the
 * feed's `rev` then, and the notification's `group` when it joined one; replayed ones carry none
 * of them (`ready` had the counts). `N` is the notification's type where the frame is read:
 * server/notification.ts's `Notification` (which needs Node), or the page's `FeedNotification`.
 * A deleted notification replays as a tombstone (`DeletedNotification`): its seq stays taken.
 */
export interface NotificationFrame<N> {
  type: 'notification'
  notification: N | DeletedNotification
  cursor: string
  seq: number
  unread?: number
  rev?: number
  group?: GroupSummary
}

/**
 * The end of a catch-up; `reset: true` tells the client its cursor could not be caught up from:
 * reload history (and the counts of `ready`). `rev`: the feed's state revision the client is at now.
 */
export interface SyncedFrame {
  type: 'synced'
  cursor: string
  seq: number
  rev: number
  reset?: true
}

/**
 * One change of the feed's state (read, unread, seen, archive, unarchive, delete), live or
 * replayed: its `rev` (contiguous per user, like `seq`), what changed, the counts after it, and
 * the cursor to resume from once it is applied (`seq`: the feed's newest notification then, which
 * the client has whenever it gets this frame).
 */
export interface StateFrame {
  type: 'state'
  rev: number
  seq: number
  changes: StateChange[]
  unread: number
  unseen: number
  cursor: string
}

/** The user's mute list changed (in any tab): it is not a state change of the feed (no `rev`). */
export interface PreferencesFrame {
  type: 'preferences'
  muted: Muted
}

/** The user's unread count after the read mark that made the feed's `rev` this one. */
export interface UnreadFrame {
  type: 'unread'
  unread: number
  rev: number
}

/**
 * Sent every `pingMs` to every tab: the connection is alive, and this is where the feed stands (a
 * `seq` past the client's last one means notifications it never got). Without `seq`, `rev` and
 * `unread` when the inbox could not be read.
 */
export interface PingFrame extends Partial<FeedTail> {
  type: 'ping'
}

export type Frame<N> = ReadyFrame | NotificationFrame<N> | SyncedFrame | UnreadFrame | PingFrame | StateFrame | PreferencesFrame

/**
 * The last event of an event stream (GET /sse), which has no close frame of its own: the close
 * code and reason a WebSocket would have been closed with (server/hub/close-codes.ts).
 */
export interface CloseFrame {
  type: 'close'
  code: number
  reason: string
}

export function readyFrame (user: ReadyFrame['user'], cursor: string, { seq, rev, unread }: FeedTail, unseen: number, pingMs: number): string {
  const frame: ReadyFrame = { type: 'ready', user: { id: user.id, name: user.name }, unread, unseen, cursor, seq, rev, pingMs }
  return JSON.stringify(frame)
}

/**
 * `notificationJson` is the notification's JSON as stored (the Kafka record's value, validated
 * on the way in): it is spliced in as is, not parsed and written again.
 */
export function notificationFrame (notificationJson: string, cursor: string, seq: number, count?: { unread: number, rev: number }, group?: GroupSummary): string {
  const counts = count === undefined ? '' : `,"unread":${count.unread},"rev":${count.rev}`
  const grouped = group === undefined ? '' : `,"group":${JSON.stringify(group)}`
  return `{"type":"notification","notification":${notificationJson},"cursor":${JSON.stringify(cursor)},"seq":${seq}${counts}${grouped}}`
}

export function syncedFrame (cursor: string, seq: number, rev: number, reset: boolean): string {
  const frame: SyncedFrame = reset ? { type: 'synced', cursor, seq, rev, reset: true } : { type: 'synced', cursor, seq, rev }
  return JSON.stringify(frame)
}

export function stateFrame (frame: Omit<StateFrame, 'type'>): string {
  const { rev, seq, changes, unread, unseen, cursor } = frame
  const state: StateFrame = { type: 'state', rev, seq, changes, unread, unseen, cursor }
  return JSON.stringify(state)
}

export function preferencesFrame (muted: Muted): string {
  const frame: PreferencesFrame = { type: 'preferences', muted }
  return JSON.stringify(frame)
}

export function unreadFrame (unread: number, rev: number): string {
  const frame: UnreadFrame = { type: 'unread', unread, rev }
  return JSON.stringify(frame)
}

export function closeFrame (code: number, reason: string): string {
  const frame: CloseFrame = { type: 'close', code, reason }
  return JSON.stringify(frame)
}

const TYPE_PREFIX = '{"type":"'
const CURSOR_KEY = ',"cursor":"'

/**
 * The `type` of a frame written here, and its `cursor` when it has one, read from the text without
 * parsing it (an event stream needs both for every frame it sends, and a notification can be
 * large). Every writer above puts `type` first; a notification's `cursor` comes after the
 * notification, and inside a string value every `"` is escaped, so the last unescaped `,"cursor":"`
 * is the frame's own.
 */
export function frameHead (text: string): { type: string, cursor: string | undefined } {
  const type = text.startsWith(TYPE_PREFIX) ? text.slice(TYPE_PREFIX.length, text.indexOf('"', TYPE_PREFIX.length)) : ''
  const key = text.lastIndexOf(CURSOR_KEY)
  const cursor = key === -1 ? undefined : text.slice(key + CURSOR_KEY.length, text.indexOf('"', key + CURSOR_KEY.length))
  return { type, cursor }
}

export function pingFrame (tail: FeedTail | undefined): string {
  const frame: PingFrame = tail === undefined ? { type: 'ping' } : { type: 'ping', seq: tail.seq, rev: tail.rev, unread: tail.unread }
  return JSON.stringify(frame)
}
