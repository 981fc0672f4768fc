import { Redis } from 'ioredis'
import { CHANNEL_PREFIX, decodePayload } from '../server/fanout/redis-fanout.js'
import { now } from './clock.js'

const NOTIFICATION_PREFIX = '{"type":"notification","notification":{"id":"'
const ID_LENGTH = 36
const COMMAND_TIMEOUT_MS = 5000

/**
 * A listener on the gateways' Redis channels of a few users: when each of their notifications was
 * published (after the consuming gateway committed it to the inbox), on the clock the producer and
 * the clients use. Between the send and the frame it splits the time at the publish. It is one
 * more subscriber of those channels, so it watches a sample of the users, not all.
 */
export class RedisTap {
  readonly #client: Redis
  #publishedAt = new Map<string, number>()

  private constructor (client: Redis) {
    this.#client = client
    client.on('smessage', (_channel: string, payload: string) => {
      const at = now()
      const text = decodePayload('', payload)?.text
      if (text?.startsWith(NOTIFICATION_PREFIX) !== true) return
      const id = text.slice(NOTIFICATION_PREFIX.length, NOTIFICATION_PREFIX.length + ID_LENGTH)
      if (!this.#publishedAt.has(id)) this.#publishedAt.set(id, at)
    })
  }

  static async start (url: string, userIds: readonly string[]): Promise<RedisTap> {
    const client = new Redis(url, { lazyConnect: true, commandTimeout: COMMAND_TIMEOUT_MS, connectionName: 'kafka-notify-bench:tap' })
    client.on('error', () => {}) // a failed command rejects; the tap's figures are then missing
    await client.connect()
    await Promise.all(userIds.map(async (userId) => await client.ssubscribe(CHANNEL_PREFIX + userId)))
    return new RedisTap(client)
  }

  /** Publish times seen since the last take, by notification id (and forgets them). */
  take (): Map<string, number> {
    const seen = this.#publishedAt
    this.#publishedAt = new Map()
    return seen
  }

  stop (): void {
    this.#client.disconnect()
  }
}
