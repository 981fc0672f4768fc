import type { Position } from '../../client/feed-sync.js'

const USER_KEY = 'kafka-notify.user'
const TOKEN_KEY = 'kafka-notify.token'
const positionKey = (userId: string): string => `kafka-notify.cursor.${userId}`

/**
 * The user this tab is signed in as. sessionStorage keeps each tab its own user across
 * reloads; a new tab starts as whoever signed in last in any tab (localStorage).
 */
export function rememberedUserId (): string | null {
  return sessionStorage.getItem(USER_KEY) ?? localStorage.getItem(USER_KEY)
}

export function rememberedToken (): string | null {
  return sessionStorage.getItem(TOKEN_KEY)
}

export function rememberUser (userId: string): void {
  sessionStorage.setItem(USER_KEY, userId)
  localStorage.setItem(USER_KEY, userId)
  sessionStorage.removeItem(TOKEN_KEY)
}

export function rememberToken (token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token)
  sessionStorage.removeItem(USER_KEY)
}

/** Forgets this tab's sign-in, and the last user for new tabs if that was this one. */
export function forget (userId: string | null): void {
  sessionStorage.removeItem(USER_KEY)
  sessionStorage.removeItem(TOKEN_KEY)
  if (userId !== null && localStorage.getItem(USER_KEY) === userId) localStorage.removeItem(USER_KEY)
}

/**
 * The stored resume point. Anything else under the key (a bare cursor, or one without its seq,
 * as pages from before per-user sequences stored them) is no resume point: history gives one.
 */
export function loadPosition (userId: string): Position | null {
  const stored = localStorage.getItem(positionKey(userId))
  if (stored === null) return null
  try {
    const value: unknown = JSON.parse(stored)
    if (typeof value === 'object' && value !== null && 'cursor' in value && typeof value.cursor === 'string' &&
      'seq' in value && typeof value.seq === 'number') {
      // A rev (kept since state changes are replayed) is where the catch-up of state changes starts.
      const rev = 'rev' in value && typeof value.rev === 'number' ? { rev: value.rev } : {}
      return { cursor: value.cursor, seq: value.seq, ...rev }
    }
  } catch {
    // Not JSON: a bare cursor.
  }
  return null
}

export function savePosition (userId: string, position: Position): void {
  localStorage.setItem(positionKey(userId), JSON.stringify(position))
}
