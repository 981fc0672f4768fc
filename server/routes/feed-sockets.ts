import type { Principal } from '../auth/tokens.js'
import { TICKET_PATTERN } from '../auth/tickets.js'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Cursor } from '../feed/cursor.js'
import type { FeedRelay } from '../feed/relay.js'
import { CloseCode } from '../hub/close-codes.js'
import type { Hub } from '../hub/hub.js'
import type { HubSocket } from '../hub/socket.js'
import { addressKey } from './client-address.js'
import { cursorSchema } from './schemas.js'

/** A timer's ceiling; a token living longer than ~24 days is re-armed at that point. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** The query of a streaming endpoint (/ws, /sse): how it authenticates, and where it resumes. */
export const feedQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ticket: { type: 'string', pattern: TICKET_PATTERN }, token: { type: 'string', maxLength: 4096 }, since: cursorSchema }
} as const

/**
 * The open sockets of the live feed, whatever carries them (a WebSocket on /ws, an event stream on
 * /sse): each joins the hub and the relay, counts against the connection limits (per user, per
 * client address: both transports together) and is closed when its token expires.
 */
export class FeedSockets {
  readonly #hub: Hub
  readonly #relay: FeedRelay
  readonly #config: Config['ws']
  readonly #clock: Clock
  readonly #perIp = new Map<string, number>()

  /** `clock`: the wall clock a token's `exp` is read on. */
  constructor (hub: Hub, relay: FeedRelay, config: Config['ws'], clock: Clock) {
    this.#hub = hub
    this.#relay = relay
    this.#config = config
    this.#clock = clock
  }

  /**
   * Opens the feed on a socket whose connection has just been made: `ready`, the catch-up from
   * `since`, then live frames. A socket over a limit is closed at once with 4029. Returns what the
   * route calls once the connection closed (whichever side closed it).
   */
  open (socket: HubSocket, { user, expiresAt }: Principal, ip: string, since: Cursor | undefined): () => void {
    const { maxConnectionsPerUser, maxConnectionsPerIp } = this.#config
    const address = addressKey(ip)
    const fromIp = this.#perIp.get(address) ?? 0
    if (maxConnectionsPerUser > 0 && this.#hub.connectionsOf(user.id) >= maxConnectionsPerUser) {
      socket.close(CloseCode.TOO_MANY_CONNECTIONS, `too many connections for this user (at most ${maxConnectionsPerUser})`)
      return () => {}
    }
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) {
      socket.close(CloseCode.TOO_MANY_CONNECTIONS, `too many connections from this address (at most ${maxConnectionsPerIp})`)
      return () => {}
    }
    this.#perIp.set(address, fromIp + 1)
    this.#hub.add(socket)

    let cancelExpiry: (() => void) | undefined
    const closeAtExpiry = (): void => {
      if (expiresAt === undefined) return
      const left = expiresAt * 1000 - this.#clock.now()
      if (left <= 0) socket.close(CloseCode.TOKEN_EXPIRED, 'token expired')
      else cancelExpiry = this.#clock.schedule(closeAtExpiry, Math.min(MAX_TIMER_MS, left))
    }
    closeAtExpiry()
    // Refused by the hub (the gateway is shutting down), or the token expired: no feed.
    if (socket.open) void this.#relay.open(socket, user, since)

    let closed = false
    return () => {
      if (closed) return
      closed = true
      cancelExpiry?.()
      this.#relay.close(socket)
      this.#hub.remove(socket)
      const left = (this.#perIp.get(address) ?? 1) - 1
      if (left === 0) this.#perIp.delete(address)
      else this.#perIp.set(address, left)
    }
  }
}
