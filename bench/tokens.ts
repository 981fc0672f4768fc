import { SignJWT } from 'jose'
import { SERVICE_SCOPE } from '../server/auth/tokens.js'
import { signIn } from '../test/helpers/clients.js'

/**
 * Where bench tokens come from: signed here with the gateway's AUTH_SECRET (the bench starts the
 * gateway with a fixed one), or asked of a running gateway's dev sign-in route.
 */
export type TokenSource =
  | { kind: 'secret', secret: string }
  | { kind: 'sessions', url: string }

/** The issuer of the gateway's dev-mode tokens (server/auth/tokens.ts). */
const DEV_ISSUER = 'kafka-notify-dev'
/** Longer than any run, so no socket is closed for an expired token mid-run. */
const TOKEN_TTL_SECONDS = 4 * 60 * 60
const CONCURRENCY = 32

/** Tokens for `userIds`, or with `service` service tokens (scope notify:service) whose subjects they are. */
export async function mintTokens (source: TokenSource, userIds: readonly string[], { service = false } = {}): Promise<string[]> {
  const tokens = new Array<string>(userIds.length)
  const mint = source.kind === 'secret' ? signer(source.secret, service) : sessions(source.url, service)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < userIds.length) {
      const index = next++
      tokens[index] = await mint(userIds[index]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, userIds.length) }, worker))
  return tokens
}

function signer (secret: string, service: boolean): (userId: string) => Promise<string> {
  const key = new TextEncoder().encode(secret)
  const expiresAt = Math.floor(Date.now() / 1000) + TOKEN_TTL_SECONDS
  return (userId) => new SignJWT(service ? { scope: SERVICE_SCOPE } : {}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId)
    .setIssuedAt().setExpirationTime(expiresAt).setIssuer(DEV_ISSUER).sign(key)
}

function sessions (url: string, service: boolean): (userId: string) => Promise<string> {
  return async (userId) => await signIn(url, userId, { service }).catch((error: unknown) => {
    // Thousands of sign-ins from one address meet the gateway's rate limit first.
    throw new Error(`${(error as Error).message} (if rate-limited: give the bench the gateway's AUTH_SECRET, or start the gateway with RATE_LIMIT_PER_IP=0)`)
  })
}
