import { ApiError, type GatewayApi } from '../../client/api.js'
import type { User } from '../../client/types.js'
import { describeError } from './describe-error.js'
import { forget, rememberToken, rememberUser } from './storage.js'

export interface Auth {
  token: string
  /** Null for a pasted token until the socket's `ready` frame names its user. */
  user: User | null
  issuedAt: number
  expiresAt: number | null
  /** Signed in through the dev sessions route, so a fresh token is one request away. */
  renewable: boolean
}

export async function signIn (api: GatewayApi, userId: string): Promise<Auth> {
  const session = await api.createSession(userId)
  rememberUser(session.user.id)
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
  rememberToken(token)
  return { token, user: null, issuedAt: Date.now(), expiresAt: null, renewable: false }
}

/** Milliseconds until the token should be renewed: a fifth of its life, at most a minute, before it expires. */
export function renewalDelay (auth: Auth): number | null {
  if (!auth.renewable || auth.expiresAt === null) return null
  const lead = Math.min(60_000, (auth.expiresAt - auth.issuedAt) / 5)
  // setTimeout fires at once for delays past 2^31 - 1 ms.
  return Math.min(2 ** 31 - 1, Math.max(1_000, auth.expiresAt - lead - Date.now()))
}

export interface SessionOptions {
  /** The gateway's API, for the dev sign-in that renews a token. */
  api: GatewayApi
  /** A fresh token replaced the current one ahead of expiry: the socket should switch to it. */
  onRenewed: () => void
  /** The session cannot go on (token refused and not renewable, user gone): why, for the sign-in form. */
  onLost: (message: string) => void
}

/** The signed-in user and their token: sign-in, renewal before expiry, and API calls that renew on 401. */
export class Session {
  readonly #options: SessionOptions
  #auth: Auth | null = null
  #renewTimer: ReturnType<typeof setTimeout> | undefined
  #renewing: Promise<boolean> | null = null

  constructor (options: SessionOptions) {
    this.#options = options
  }

  get auth (): Auth | null {
    return this.#auth
  }

  get user (): User | null {
    return this.#auth?.user ?? null
  }

  /** The current token ('' when signed out, which the server refuses). */
  get token (): string {
    return this.#auth?.token ?? ''
  }

  begin (auth: Auth): void {
    this.#auth = auth
    this.#scheduleRenewal()
  }

  /** Signs out: forgets the tab's sign-in; answers still in flight for this session are ignored. */
  end (): void {
    clearTimeout(this.#renewTimer)
    forget(this.#auth?.user?.id ?? null)
    this.#auth = null
  }

  /** A pasted token's user, once the socket's `ready` names it. */
  nameUser (user: User): boolean {
    if (this.#auth === null || this.#auth.user !== null) return false
    this.#auth.user = user
    return true
  }

  /** Calls the API with the current token, renewing it once if the server says it expired. */
  async authed<T> (call: (token: string) => Promise<T>): Promise<T> {
    const current = this.#auth
    if (current === null) throw new ApiError(401, 'UNAUTHORIZED', 'Not signed in')
    try {
      return await call(current.token)
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error
      if (!(await this.renew()) || this.#auth === null) {
        if (this.#auth === current) this.#options.onLost(describeError(error))
        throw error
      }
      return await call(this.#auth.token)
    }
  }

  /** Resolves true with a fresh token in place, false if this session cannot renew; rejects on a transient failure. */
  renew (): Promise<boolean> {
    const current = this.#auth
    if (current === null || !current.renewable || current.user === null) return Promise.resolve(false)
    const userId = current.user.id
    this.#renewing ??= signIn(this.#options.api, userId).then((next) => {
      if (this.#auth !== current) return false
      this.#auth = next
      this.#scheduleRenewal()
      return true
    }, (error: unknown) => {
      if (error instanceof ApiError && error.status === 404) {
        if (this.#auth === current) {
          this.#options.onLost(error.code === 'UNKNOWN_USER' ? 'Your user is no longer in the directory.' : describeError(error))
        }
        return false
      }
      throw error
    }).finally(() => { this.#renewing = null })
    return this.#renewing
  }

  #scheduleRenewal (): void {
    clearTimeout(this.#renewTimer)
    const delay = this.#auth === null ? null : renewalDelay(this.#auth)
    if (delay === null) return
    this.#renewTimer = setTimeout(() => {
      this.renew().then((renewed) => { if (renewed) this.#options.onRenewed() }, () => {
        this.#renewTimer = setTimeout(() => this.#scheduleRenewal(), 5_000)
      })
    }, delay)
  }
}
