import { retryWithSameKey } from '../../client/api.js'

export function newIdempotencyKey (): string {
  // randomUUID exists only in secure contexts; a page served over plain http elsewhere than localhost is not one.
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`
}

/**
 * One Idempotency-Key per followee until that follow is settled: a retry after a 503, a 5xx, a
 * timeout or no answer at all sends the same key, so the gateway produces the same notification
 * at most once. A 2xx or a 4xx settles it; the next follow gets a new key.
 */
export class FollowKeys {
  readonly #pending = new Map<string, string>()
  readonly #newKey: () => string

  constructor (newKey: () => string = newIdempotencyKey) {
    this.#newKey = newKey
  }

  keyFor (followeeId: string): string {
    let key = this.#pending.get(followeeId)
    if (key === undefined) {
      key = this.#newKey()
      this.#pending.set(followeeId, key)
    }
    return key
  }

  succeeded (followeeId: string): void {
    this.#pending.delete(followeeId)
  }

  failed (followeeId: string, error: unknown): void {
    if (!retryWithSameKey(error)) this.#pending.delete(followeeId)
  }
}
