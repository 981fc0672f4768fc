/**
 * One change of a user's feed state, as the inbox logs it (with its `rev`) and as `state` frames
 * carry it. Every change names the notifications it changed: by id, or, for "all up to here"
 * changes, by the highest seq it covers. This file imports nothing: the page's compiler reads it
 * through server/feed/frames.ts.
 */
export type StateChange =
  | { op: 'read' | 'unread' | 'archive' | 'unarchive' | 'delete', ids: string[] }
  | { op: 'read' | 'archive' | 'seen', upToSeq: number }

export type StateOp = StateChange['op']

/** What a user does not want: notifications of these types, or caused by these actors, are not stored for them. */
export interface Muted {
  types: string[]
  actors: string[]
}

/** A group as it stands after its newest notification: its id, the key it groups by, its size, and up to three of its actors, newest first. */
export interface GroupSummary {
  id: string
  key: string
  count: number
  actorCount: number
  actors: Array<{ id: string, name: string, avatarUrl?: string }>
}

/**
 * What is left of a deleted notification (a tombstone): who it was for, its type and time, and
 * nothing it said. Its seq stays taken, so a replay stays contiguous; `actor` and `message` are
 * there, empty, for clients written before tombstones existed.
 */
export interface DeletedNotification {
  id: string
  type: string
  userId: string
  createdAt: string
  actor: null
  message: ''
  deleted: true
}
