import type { User } from '../../client/types.js'

/**
 * What a row of grouped notifications says, as text only (no DOM: unit-tested in Node); feed-item.ts
 * draws it.
 */

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
