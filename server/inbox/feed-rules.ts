import type { Actor, Notification } from '../notification.js'
import type { DeletedNotification, GroupSummary, Muted, StateChange } from '../state-change.js'
import type { GroupedItem, StateRequest, StoredNotification } from './types.js'

/** Up to this many distinct actors a group shows, newest first. */
export const GROUP_ACTORS_SHOWN = 3

/**
 * What a notification groups by, with others of its user and type: the producer's `groupKey`;
 * else, for a follow, its type (every follow of a user groups); else nothing (it stands alone).
 */
export function groupKeyOf (notification: Notification): string | undefined {
  return notification.groupKey ?? (notification.type === 'follow' ? notification.type : undefined)
}

/** Whether a notification created at `createdAt` (ms) joins a group begun at `startedAt`: within the window (0: never), by event time, so a re-read of the topic groups alike. */
export function joinsGroup (startedAt: number, createdAt: number, windowMs: number): boolean {
  return windowMs > 0 && createdAt - startedAt < windowMs
}

/** A group's shown actors once `actor` caused its newest notification. */
export function withActor (actors: GroupSummary['actors'], actor: Actor | null): GroupSummary['actors'] {
  if (actor === null) return actors
  return [actorRef(actor), ...actors.filter(({ id }) => id !== actor.id)].slice(0, GROUP_ACTORS_SHOWN)
}

function actorRef ({ id, name, avatarUrl }: Actor): GroupSummary['actors'][number] {
  return avatarUrl === undefined ? { id, name } : { id, name, avatarUrl }
}

export function isMuted ({ types, actors }: Muted, notification: Notification): boolean {
  return types.includes(notification.type) || (notification.actor !== null && actors.includes(notification.actor.id))
}

/** What a deleted notification leaves in its seq's place. */
export function tombstone ({ id, type, userId, createdAt }: Pick<Notification, 'id' | 'type' | 'userId' | 'createdAt'>): DeletedNotification {
  return { id, type, userId, createdAt, actor: null, message: '', deleted: true }
}

/**
 * A change "up to a seq" stops at the feed's newest notification: a client may send a cursor from
 * ahead of a lagging store (or a seq past any, meaning "everything"), and the change is logged with
 * the seq it covered, so that a client replaying it later never applies it to notifications stored
 * after it. Other requests are as asked.
 */
export function withinFeed (request: StateRequest, newestSeq: number): StateRequest {
  if (!('upToSeq' in request)) return request
  return { ...request, upToSeq: Math.min(request.upToSeq, newestSeq) }
}

/** The change to log for a request that changed `ids` (changes "up to a seq" are logged as such, however many rows they moved). */
export function loggedChange (request: StateRequest, ids: string[]): StateChange {
  if ('upToSeq' in request && request.op !== 'unread' && request.op !== 'unarchive' && request.op !== 'delete') return { op: request.op, upToSeq: request.upToSeq }
  if (request.op === 'seen') throw new Error('seen takes upToSeq only')
  return { op: request.op, ids }
}

/** A group of a grouped page from its members, newest first. */
export function groupedItem (members: StoredNotification[]): GroupedItem {
  const actors = new Map<string, GroupSummary['actors'][number]>()
  let unread = 0
  for (const { notification, read } of members) {
    if (!read) unread++
    if (notification.actor !== null && !actors.has(notification.actor.id)) actors.set(notification.actor.id, actorRef(notification.actor))
  }
  return { newest: members[0]!, count: members.length, actorCount: actors.size, actors: [...actors.values()].slice(0, GROUP_ACTORS_SHOWN), unread }
}

/** The mute list as stored (JSON), or the empty one. */
export function parseMuted (json: string | undefined): Muted {
  return json === undefined ? { types: [], actors: [] } : JSON.parse(json) as Muted
}
