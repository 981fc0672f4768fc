import { createSession } from './api.js'
import type { User } from './types.js'

const USER_KEY = 'kafka-notify.user'
const TOKEN_KEY = 'kafka-notify.token'

export interface Auth {
  token: string
  /** Null for a pasted token until the socket's `ready` frame names its user. */
  user: User | null
  issuedAt: number
  expiresAt: number | null
  /** Signed in through the dev sessions route, so a fresh token is one request away. */
  renewable: boolean
}

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

export async function signIn (userId: string): Promise<Auth> {
  const session = await createSession(userId)
  sessionStorage.setItem(USER_KEY, session.user.id)
  localStorage.setItem(USER_KEY, session.user.id)
  sessionStorage.removeItem(TOKEN_KEY)
  return {
    token: session.token,
    user: session.user,
    issuedAt: Date.now(),
    expiresAt: Date.parse(session.expiresAt),
    renewable: true
  }
}

/** Tokens from an identity service (AUTH_MODE=jwt) cannot be renewed by the page. */
export function useToken (token: string): Auth {
  sessionStorage.setItem(TOKEN_KEY, token)
  sessionStorage.removeItem(USER_KEY)
  return { token, user: null, issuedAt: Date.now(), expiresAt: null, renewable: false }
}

/** Forgets this tab's sign-in, and the last user for new tabs if that was this one. */
export function forget (userId: string | null): void {
  sessionStorage.removeItem(USER_KEY)
  sessionStorage.removeItem(TOKEN_KEY)
  if (userId !== null && localStorage.getItem(USER_KEY) === userId) localStorage.removeItem(USER_KEY)
}

/** Milliseconds until the token should be renewed: a fifth of its life, at most a minute, before it expires. */
export function renewalDelay (auth: Auth): number | null {
  if (!auth.renewable || auth.expiresAt === null) return null
  const lead = Math.min(60_000, (auth.expiresAt - auth.issuedAt) / 5)
  // setTimeout fires at once for delays past 2^31 - 1 ms.
  return Math.min(2 ** 31 - 1, Math.max(1_000, auth.expiresAt - lead - Date.now()))
}

const cursorKey = (userId: string): string => `kafka-notify.cursor.${userId}`

export function loadCursor (userId: string): string | null {
  return localStorage.getItem(cursorKey(userId))
}

export function saveCursor (userId: string, cursor: string): void {
  localStorage.setItem(cursorKey(userId), cursor)
}
