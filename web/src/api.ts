import type { FeedNotification, HistoryPage, IssuedToken, User } from './types.js'

/** A failed API call; `status` 0 means the request never got an answer. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly retryAfter: number | null

  constructor (status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.retryAfter = retryAfter
  }
}

interface RequestOptions {
  token?: string | undefined
  body?: unknown
  headers?: Record<string, string>
}

/**
 * Longer than the gateway's own Kafka send timeout (KAFKA_SEND_TIMEOUT_MS, 5 s by default), so a
 * follow that waits for Kafka gets the gateway's 503 rather than our timeout.
 */
const REQUEST_TIMEOUT_MS = 15_000

async function request<T> (method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  const init: RequestInit = { method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json'
    init.body = JSON.stringify(options.body)
  }

  let response: Response
  try {
    response = await fetch(path, init)
  } catch (error) {
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      throw new ApiError(0, 'TIMEOUT', 'The server did not answer in time')
    }
    throw new ApiError(0, 'NETWORK', 'No answer from the server')
  }
  const payload: unknown = await response.json().catch(() => null)
  if (response.ok) return payload as T

  const error = (payload ?? {}) as { code?: unknown, message?: unknown }
  const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10)
  throw new ApiError(
    response.status,
    typeof error.code === 'string' ? error.code : `HTTP_${response.status}`,
    typeof error.message === 'string' ? error.message : response.statusText,
    Number.isNaN(retryAfter) ? null : retryAfter
  )
}

export async function listUsers (): Promise<User[]> {
  const { users } = await request<{ users: User[] }>('GET', '/api/users')
  return users
}

export function createSession (userId: string): Promise<IssuedToken> {
  return request('POST', '/api/sessions', { body: { userId } })
}

export function follow (token: string, followeeId: string, idempotencyKey: string): Promise<{ notification: FeedNotification }> {
  return request('POST', '/api/follows', {
    token,
    body: { followeeId },
    headers: { 'idempotency-key': idempotencyKey }
  })
}

export function listNotifications (token: string, before: string | null, limit = 50): Promise<HistoryPage> {
  const query = new URLSearchParams({ limit: String(limit) })
  if (before !== null) query.set('before', before)
  return request('GET', `/api/notifications?${query}`, { token })
}

/** `rev`: the read state's version after the mark (absent from older gateways). */
export function markRead (token: string, upTo: string): Promise<{ unread: number, rev?: number }> {
  return request('POST', '/api/notifications/read', { token, body: { upTo } })
}

/**
 * True when a retry must reuse the request's idempotency key: the request may have taken effect
 * (no answer, a timeout, any 5xx, 503 KAFKA_UNAVAILABLE included). A 4xx is a definite refusal.
 */
export function retryWithSameKey (error: unknown): boolean {
  return !(error instanceof ApiError && error.status >= 400 && error.status < 500)
}

/** 409 STALE_CURSOR: the cursor is from another epoch of the inbox; reload history. */
export function staleCursor (error: unknown): boolean {
  return error instanceof ApiError && error.status === 409 && error.code === 'STALE_CURSOR'
}

/** A short sentence for the user; the server's own message when there is nothing better to say. */
export function describeError (error: unknown): string {
  if (!(error instanceof ApiError)) return 'Something went wrong'
  const later = error.retryAfter === null ? 'later' : `in ${error.retryAfter} s`
  switch (error.code) {
    case 'NETWORK': return 'No connection to the server'
    case 'TIMEOUT': return 'The server did not answer in time, try again'
    case 'SELF_FOLLOW': return 'You cannot follow yourself'
    case 'UNKNOWN_USER': return 'That user does not exist'
    case 'UNAUTHORIZED':
    case 'TOKEN_EXPIRED': return 'Your session expired, sign in again'
  }
  if (error.status === 429) return `Too many requests, try again ${later}`
  if (error.status === 503) return `Service unavailable, try again ${later}`
  if (error.status >= 500) return 'Server error, try again'
  return error.message
}
