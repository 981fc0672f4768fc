import type { FeedCounts, FeedNotification, GroupedItem, HistoryItem, HistoryPage, IssuedToken, Muted, Selection, User } from './types.js'

/** The state changes a POST makes (docs/protocol.md, feed state); `read` and `archive` also take `{ upTo }`. */
export type StateRoute = 'read' | 'unread' | 'archive' | 'unarchive'

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

/**
 * The gateway's REST API (docs/protocol.md), for browsers and Node 20+. `baseUrl` is the gateway's
 * origin, e.g. `https://notify.example.com` ('' in a page the gateway serves itself).
 */
export class GatewayApi {
  readonly baseUrl: string
  readonly #fetch: typeof fetch

  constructor (baseUrl = '', fetchImpl: typeof fetch = (input, init) => fetch(input, init)) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    this.#fetch = fetchImpl
  }

  /** The people directory (USERS_FILE), for sign-in pickers. */
  async listUsers (): Promise<User[]> {
    const { users } = await this.#request<{ users: User[] }>('GET', '/api/users')
    return users
  }

  /** Dev sign-in (AUTH_MODE=dev only): a token for `userId`. */
  createSession (userId: string): Promise<IssuedToken> {
    return this.#request('POST', '/api/sessions', { body: { userId } })
  }

  /** A one-time ticket to open `/ws?ticket=…` or `/sse?ticket=…` where no header can be set. */
  createTicket (token: string): Promise<{ ticket: string, expiresAt: string }> {
    return this.#request('POST', '/api/tickets', { token })
  }

  follow (token: string, followeeId: string, idempotencyKey: string): Promise<{ notification: FeedNotification }> {
    return this.#request('POST', '/api/follows', {
      token,
      body: { followeeId },
      headers: { 'idempotency-key': idempotencyKey }
    })
  }

  /** One page of history, newest first; `before` is the previous page's `nextCursor`; `archived`: the archive. */
  listNotifications (token: string, before: string | null, limit = 50, archived = false): Promise<HistoryPage<HistoryItem>> {
    return this.#request('GET', `/api/notifications?${historyQuery(before, limit, archived, false)}`, { token })
  }

  /** One page of grouped history: one item per group, newest group first. */
  listGroups (token: string, before: string | null, limit = 50, archived = false): Promise<HistoryPage<GroupedItem>> {
    return this.#request('GET', `/api/notifications?${historyQuery(before, limit, archived, true)}`, { token })
  }

  /** Changes the feed's state: `upTo` a cursor (read, archive), or the selected notifications or groups. */
  changeState (token: string, route: StateRoute, target: { upTo: string } | Selection): Promise<FeedCounts> {
    return this.#request('POST', `/api/notifications/${route}`, { token, body: target })
  }

  /** Moves the seen mark (never back): `unseen` counts what came after it. */
  markSeen (token: string, upTo: string): Promise<FeedCounts> {
    return this.#request('POST', '/api/notifications/seen', { token, body: { upTo } })
  }

  /** Deletes a notification, or with `group` every notification of the group `id`. */
  delete (token: string, id: string, group = false): Promise<FeedCounts> {
    const path = group ? `/api/notifications/groups/${encodeURIComponent(id)}` : `/api/notifications/${encodeURIComponent(id)}`
    return this.#request('DELETE', path, { token })
  }

  async getPreferences (token: string): Promise<Muted> {
    const { muted } = await this.#request<{ muted: Muted }>('GET', '/api/preferences', { token })
    return muted
  }

  /** Replaces the mute lists. */
  async putPreferences (token: string, muted: Muted): Promise<Muted> {
    const answer = await this.#request<{ muted: Muted }>('PUT', '/api/preferences', { token, body: { muted } })
    return answer.muted
  }

  /** `rev`: the read state's version after the mark (absent from older gateways). */
  markRead (token: string, upTo: string): Promise<{ unread: number, rev?: number }> {
    return this.#request('POST', '/api/notifications/read', { token, body: { upTo } })
  }

  async #request<T> (method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      init.body = JSON.stringify(options.body)
    }

    let response: Response
    try {
      response = await this.#fetch(`${this.baseUrl}${path}`, init)
    } catch (error) {
      if ((error as { name?: unknown } | null)?.name === 'TimeoutError') {
        throw new ApiError(0, 'TIMEOUT', 'The server did not answer in time')
      }
      throw new ApiError(0, 'NETWORK', 'No answer from the server')
    }
    const payload: unknown = await response.json().catch(() => null)
    if (response.ok) return payload as T
    throw apiError(response, payload)
  }
}

function historyQuery (before: string | null, limit: number, archived: boolean, grouped: boolean): URLSearchParams {
  const query = new URLSearchParams({ limit: String(limit) })
  if (before !== null) query.set('before', before)
  if (archived) query.set('archived', 'true')
  if (grouped) query.set('grouped', 'true')
  return query
}

/** The ApiError of a refused answer: the gateway's `code` and `message` when its body has them. */
export function apiError (response: Response, payload: unknown): ApiError {
  const error = (payload ?? {}) as { code?: unknown, message?: unknown }
  const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10)
  return new ApiError(
    response.status,
    typeof error.code === 'string' ? error.code : `HTTP_${response.status}`,
    typeof error.message === 'string' ? error.message : response.statusText,
    Number.isNaN(retryAfter) ? null : retryAfter
  )
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
