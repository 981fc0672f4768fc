import { randomBytes } from 'node:crypto'
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTVerifyGetKey, type JWTPayload } from 'jose'
import { within } from '../lifecycle.js'
import { LRUCache } from 'lru-cache'
import { wallClock, type Clock } from '../clock.js'
import type { Config } from '../config.js'
import { USER_ID_PATTERN, type Directory, type User } from '../directory.js'
import { ErrorCode, NotifyError } from '../errors.js'

/** Who a verified token speaks for. */
export interface Principal {
  user: User
  /**
   * A backend (claim `scope` contains `notify:service`): it may publish notifications to anyone and
   * follow on anyone's behalf, and has no feed of its own.
   */
  service: boolean
  /** Seconds since epoch; the socket is closed with 4001 at this time. */
  expiresAt: number | undefined
}

export type TokenSettings = Config['auth']

/** A token that speaks for nobody: invalid, or expired (a new one helps, the same one never does). */
export class AuthError extends NotifyError<typeof ErrorCode.UNAUTHORIZED | typeof ErrorCode.TOKEN_EXPIRED> {
  constructor (code: AuthError['code'], message: string, options: { cause?: unknown } = {}) {
    super(code, message, { canRetry: false, cause: options.cause })
  }
}

/**
 * The identity service's keys (AUTH_JWKS_URL) could not be had: its endpoint failed, was slow, or
 * answered no key set, or the request's deadline came first. The token may be good: retry.
 */
export class KeysUnavailableError extends NotifyError<typeof ErrorCode.AUTH_UNAVAILABLE> {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.AUTH_UNAVAILABLE, message, { canRetry: true, cause: options.cause })
  }
}

/** jose's errors of a key fetch (not of a token): a timeout, a key set that is not one, an answer other than 200 OK. */
const KEY_FETCH_ERRORS = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC'])

export interface TokensOptions {
  /** How many verified tokens are remembered (default 50,000); the least recently used go first. */
  cacheSize?: number
  /** What `iat`, `exp` and the cache's TTLs are read against: a token's times are dates (wallClock when absent). */
  clock?: Clock
}

export const SERVICE_SCOPE = 'notify:service'
const DEV_ISSUER = 'kafka-notify-dev'
const VERIFIED_CACHE_SIZE = 50_000
const USER_ID = new RegExp(USER_ID_PATTERN)
const MAX_NAME_LENGTH = 200
/**
 * A verified token is remembered at most this long: each entry has a purge timer, and a timer past
 * setTimeout's ceiling (~24.8 days, e.g. a long-lived service token) would fire every millisecond.
 */
const VERIFIED_MAX_TTL_MS = 24 * 60 * 60 * 1000

/**
 * Signs (dev mode) and verifies bearer tokens. Both modes are JWTs checked by jose with an explicit
 * algorithm list, so `alg: none` and algorithm confusion are refused by construction.
 */
export class Tokens {
  readonly #mode: 'dev' | 'jwt'
  readonly #directory: Directory
  readonly #ttl: number
  readonly #secret: Uint8Array | undefined
  readonly #jwks: JWTVerifyGetKey | undefined
  readonly #issuer: string | undefined
  readonly #audience: string | undefined
  readonly #clock: Clock
  /** Tokens already verified, each until its exp; bounded. */
  readonly #verified: LRUCache<string, Principal>
  /** Cancels the timer that takes a cached token out at its exp, by token; one per cache entry. */
  readonly #purges = new Map<string, () => void>()

  constructor (settings: TokenSettings, directory: Directory, options: TokensOptions = {}) {
    this.#clock = options.clock ?? wallClock
    this.#verified = new LRUCache({
      max: options.cacheSize ?? VERIFIED_CACHE_SIZE,
      ttlResolution: 0,
      // exp is wall-clock time, and so is the TTL derived from it.
      perf: this.#clock,
      // Whichever way an entry leaves (its exp, the LRU bound, a new verify), its timer goes too.
      dispose: (_principal, token) => {
        this.#purges.get(token)?.()
        this.#purges.delete(token)
      }
    })
    this.#mode = settings.mode
    this.#directory = directory
    this.#ttl = settings.sessionTtlSeconds
    if (settings.mode === 'dev') {
      this.#secret = settings.secret === undefined ? randomBytes(32) : new TextEncoder().encode(settings.secret)
      this.#issuer = DEV_ISSUER
    } else {
      this.#secret = settings.secret === undefined ? undefined : new TextEncoder().encode(settings.secret)
      this.#jwks = settings.jwksUrl === undefined ? undefined : remoteKeys(new URL(settings.jwksUrl))
      this.#issuer = settings.issuer
    }
    this.#audience = settings.audience
  }

  /** Dev sign-in: a short-lived token for a directory user, or (`service`) for a backend named `user.id`. */
  async sign (user: User, options: { service?: boolean } = {}): Promise<{ token: string, expiresAt: string }> {
    if (this.#mode !== 'dev' || this.#secret === undefined) throw new Error('Only dev mode signs tokens')
    const issuedAt = Math.floor(this.#clock.now() / 1000)
    const expiresAt = issuedAt + this.#ttl
    let jwt = new SignJWT(options.service === true ? { scope: SERVICE_SCOPE } : {}).setProtectedHeader({ alg: 'HS256' }).setSubject(user.id)
      .setIssuedAt(issuedAt).setExpirationTime(expiresAt).setIssuer(DEV_ISSUER)
    if (this.#audience !== undefined) jwt = jwt.setAudience(this.#audience)
    return { token: await jwt.sign(this.#secret), expiresAt: new Date(expiresAt * 1000).toISOString() }
  }

  /**
   * Throws an AuthError (UNAUTHORIZED or TOKEN_EXPIRED) for anything but a valid token of a user:
   * in jwt mode any `sub` that is an id, in dev mode a directory user; or of a service. Throws
   * KeysUnavailableError when the identity service's keys cannot be had, or not by `deadline`
   * (`performance.now()` milliseconds): a key fetch counts inside a request's deadline.
   */
  async verify (token: string, deadline?: number): Promise<Principal> {
    const cached = this.#verified.get(token)
    if (cached !== undefined) return cached
    const verifying = this.#verifyUncached(token)
    const principal = deadline === undefined || this.#jwks === undefined
      ? await verifying
      : await within(verifying, deadline - performance.now(), () => {
        throw new KeysUnavailableError('the identity service\'s keys did not arrive before the request\'s deadline')
      })
    // Clients send the same token with every request: checking a signature through WebCrypto
    // each time cost a sixth of the gateway's CPU under load. A verified token stays valid
    // until its exp, so remembering the answer until then changes nothing but the cost.
    // (jose refuses a token from its exp second on: it is served until just before.)
    const ttl = Math.min(VERIFIED_MAX_TTL_MS, principal.expiresAt === undefined ? Infinity : principal.expiresAt * 1000 - this.#clock.now() - 1)
    if (ttl > 0) this.#remember(token, principal, ttl)
    return principal
  }

  /** Caches a verified token for `ttl` ms: it leaves then, looked up again or not, and makes room for live ones. */
  #remember (token: string, principal: Principal, ttl: number): void {
    this.#verified.set(token, principal, { ttl })
    // One past the TTL: the cache counts an entry stale only once more than its TTL has passed.
    this.#purges.set(token, this.#clock.schedule(() => { this.#verified.delete(token) }, ttl + 1))
  }

  async #verifyUncached (token: string): Promise<Principal> {
    let payload: JWTPayload
    try {
      payload = await this.#verifyJwt(token)
    } catch (error) {
      if (error instanceof KeysUnavailableError) throw error
      if ((error as { code?: string }).code === 'ERR_JWT_EXPIRED') {
        throw new AuthError(ErrorCode.TOKEN_EXPIRED, 'The token has expired: get a new one')
      }
      throw new AuthError(ErrorCode.UNAUTHORIZED, 'The token is invalid', { cause: error })
    }
    // Dev mode verifies only what it signed itself (its issuer and secret), service tokens included.
    const scope = typeof payload['scope'] === 'string' ? payload['scope'].split(' ') : []
    const service = scope.includes(SERVICE_SCOPE)
    const subject = typeof payload.sub === 'string' ? payload.sub : ''
    return { user: this.#userOf(subject, payload['name'], service), service, expiresAt: payload.exp }
  }

  /**
   * Who the subject is. The identity service vouches for its users: in jwt mode any `sub` that is an
   * id is a user, named by the token's `name` claim, else by the directory, else by the id. Dev mode
   * knows only the directory's users. A backend's subject names the service: it has no feed.
   */
  #userOf (subject: string, nameClaim: unknown, service: boolean): User {
    const name = typeof nameClaim === 'string' && nameClaim.trim() !== '' ? nameClaim.trim().slice(0, MAX_NAME_LENGTH) : undefined
    const listed = this.#directory.get(subject)
    if (service && subject !== '') return { id: subject, name: name ?? listed?.name ?? subject }
    if (this.#mode === 'dev') {
      if (listed === undefined) throw new AuthError(ErrorCode.UNAUTHORIZED, 'The token\'s subject is not a known user')
      return listed
    }
    if (!USER_ID.test(subject)) throw new AuthError(ErrorCode.UNAUTHORIZED, `The token's subject is not a user id (${USER_ID_PATTERN})`)
    return { id: subject, name: name ?? listed?.name ?? subject }
  }

  async #verifyJwt (token: string): Promise<JWTPayload> {
    const options = {
      ...(this.#issuer === undefined ? {} : { issuer: this.#issuer }),
      ...(this.#audience === undefined ? {} : { audience: this.#audience }),
      requiredClaims: ['sub', 'exp'],
      currentDate: new Date(this.#clock.now())
    }
    if (this.#secret !== undefined && (this.#jwks === undefined || isHmac(token))) {
      return (await jwtVerify(token, this.#secret, { ...options, algorithms: ['HS256'] })).payload
    }
    if (this.#jwks !== undefined) {
      return (await jwtVerify(token, this.#jwks, { ...options, algorithms: ['RS256', 'ES256'] })).payload
    }
    throw new Error('No key to verify tokens with')
  }
}

/** jose's remote key set, its fetch failures told apart from tokens it has no key for. */
function remoteKeys (url: URL): JWTVerifyGetKey {
  const keys = createRemoteJWKSet(url)
  return async (header, token) => {
    try {
      return await keys(header, token)
    } catch (error) {
      const code = (error as { code?: unknown }).code
      // A network failure is fetch's own TypeError, without a jose code.
      if (typeof code !== 'string' || KEY_FETCH_ERRORS.has(code)) throw new KeysUnavailableError('the identity service\'s keys (AUTH_JWKS_URL) could not be fetched', { cause: error })
      throw error
    }
  }
}

function isHmac (token: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg?: unknown }
    return header.alg === 'HS256'
  } catch {
    return false
  }
}
