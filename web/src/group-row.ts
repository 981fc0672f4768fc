import type { User } from '../../client/types.js'
import { el } from './dom.js'

/** A row's group: its id (the notification's own id when it groups with nothing), size, actors and unread members. */
export interface RowGroup {
  id: string
  count: number
  actorCount: number
  /** Up to three, newest first. */
  actors: Array<User & { avatarUrl?: string }>
  unread: number
}

/** "Bruno", "Bruno and Rick", "Bruno, Rick and Lena", "Bruno, Rick and 2 others". */
export function actorNames (names: readonly string[], actorCount: number): string {
  const [first = '', second = '', third = ''] = names
  if (actorCount <= 1 || names.length < 2) return first
  if (actorCount === 2) return `${first} and ${second}`
  if (actorCount === 3 && names.length >= 3) return `${first}, ${second} and ${third}`
  const others = actorCount - 2
  return `${first}, ${second} and ${others} ${others === 1 ? 'other' : 'others'}`
}

/**
 * What a row of several notifications says: follows by their actors ("Bruno, Rick and 2 others
 * started following you."); any other type its newest notification's text, with how many more.
 * A row of one notification says what the notification says (null here).
 */
export function groupSummary (type: string, group: RowGroup, text: string): string | null {
  if (group.count <= 1) return null
  if (type === 'follow') return `${actorNames(group.actors.map((actor) => actor.name), group.actorCount)} started following you.`
  return `${text} (+${group.count - 1} more)`
}

/** Stacked initials of the group's actors, newest on top; null for a row of one actor (feed-item.ts draws that one). */
export function stackedAvatars (group: RowGroup): HTMLElement | null {
  if (group.actorCount <= 1 || group.actors.length < 2) return null
  return el('span', { class: 'avatars', 'aria-hidden': 'true', 'data-testid': 'avatars' },
    ...group.actors.slice(0, 3).map((actor) => el('span', { class: 'avatar' }, (Array.from(actor.name)[0] ?? '').toUpperCase())))
}
