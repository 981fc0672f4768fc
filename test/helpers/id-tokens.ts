import { SignJWT } from 'jose'

/** What an identity service hands out in `AUTH_MODE=jwt`, signed here with HS256. */
export interface IdentityService {
  secret: string
  audience: string
}

/** The gateway's settings for tokens of `identity`. */
export function jwtMode ({ secret, audience }: IdentityService): Record<string, string> {
  return { AUTH_MODE: 'jwt', AUTH_SECRET: secret, AUTH_AUDIENCE: audience }
}

/** A token for `sub`, valid 10 minutes: a user's, or with `scope: 'notify:service'` a backend's. */
export async function idToken ({ secret, audience }: IdentityService, sub: string, claims: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setAudience(audience).setIssuedAt().setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret))
}
