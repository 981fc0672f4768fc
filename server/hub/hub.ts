import type { CloseCode } from './close-codes.js'
import type { HubSocket } from './socket.js'

/**
 * Sockets pinged in one turn of the event loop. A ping is a write to the socket (tens of µs), so a
 * round over 10,000 sockets in one turn blocked the loop for a few hundred ms, live frames with
 * it: slices of this many let them through between.
 */
const HEARTBEAT_SLICE = 200

export interface HubOptions {
  heartbeatMs: number
  /** Told when a socket is dropped for being slow or dead (for metrics). */
  onDrop?: (why: 'slow' | 'dead') => void
  /** Told when a user's first socket is added (the fan-out then watches the user)… */
  onUserOnline?: (userId: string) => void
  /** …and when their last one left. */
  onUserOffline?: (userId: string) => void
}

/**
 * The open sockets, by user: who is online here, heartbeats, and closing them all. Empty user
 * sets are removed, so memory follows the number of open sockets. What each socket is sent is
 * decided above it (server/feed/).
 */
export class Hub {
  readonly #byUser = new Map<string, Set<HubSocket>>()
  readonly #options: HubOptions
  #count = 0
  #timer: NodeJS.Timeout | undefined
  /** The next slice of a round of pings that is still going. */
  #nextSlice: NodeJS.Immediate | undefined
  /** Set by `closeAll`: how sockets added from then on are closed. */
  #closing: { code: CloseCode, reason: string } | undefined

  constructor (options: HubOptions) {
    this.#options = options
  }

  get connectionCount (): number {
    return this.#count
  }

  connectionsOf (userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0
  }

  /**
   * Adds an open socket. Once `closeAll` ran (shutdown), it is closed at once instead and not
   * kept: an upgrade whose token check was still running when the close began would otherwise
   * hold the server's close until the process is killed.
   */
  add (socket: HubSocket): void {
    if (this.#closing !== undefined) {
      socket.close(this.#closing.code, this.#closing.reason)
      return
    }
    let sockets = this.#byUser.get(socket.userId)
    const first = sockets === undefined
    if (sockets === undefined) {
      sockets = new Set()
      this.#byUser.set(socket.userId, sockets)
    }
    if (!sockets.has(socket)) {
      sockets.add(socket)
      this.#count++
    }
    if (first) this.#options.onUserOnline?.(socket.userId)
    // A slow close counts once whoever was writing: a live frame, or the catch-up's own sends.
    socket.onClosedAsSlow = () => this.#dropped(socket, 'slow')
    this.#timer ??= setInterval(() => this.#beat(), this.#options.heartbeatMs).unref()
  }

  remove (socket: HubSocket): void {
    this.#take(socket)
  }

  /** Closes every socket, and every one added from now on (shutdown). */
  closeAll (code: CloseCode, reason: string): void {
    this.#closing = { code, reason }
    this.disconnectAll(code, reason)
  }

  /** Closes every open socket; sockets added later are kept as usual (a new inbox epoch). */
  disconnectAll (code: CloseCode, reason: string): void {
    for (const sockets of this.#byUser.values()) {
      for (const socket of sockets) socket.close(code, reason)
    }
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    clearImmediate(this.#nextSlice)
    this.#nextSlice = undefined
  }

  /** A round of pings over the sockets open now, a slice per turn; a beat while one is still going skips. */
  #beat (): void {
    if (this.#nextSlice !== undefined) return
    const round: HubSocket[] = []
    for (const sockets of this.#byUser.values()) round.push(...sockets)
    this.#beatFrom(round, 0)
  }

  #beatFrom (round: readonly HubSocket[], start: number): void {
    const end = Math.min(start + HEARTBEAT_SLICE, round.length)
    for (let i = start; i < end; i++) {
      const socket = round[i]!
      // One that left the hub since the round began is not the hub's to ping, or to count.
      if (this.#byUser.get(socket.userId)?.has(socket) !== true) continue
      if (!socket.heartbeat()) this.#dropped(socket, 'dead')
    }
    this.#nextSlice = end < round.length ? setImmediate(() => this.#beatFrom(round, end)).unref() : undefined
  }

  /** Counts a drop only for a socket the hub still had, so none is counted twice. */
  #dropped (socket: HubSocket, why: 'slow' | 'dead'): void {
    if (this.#take(socket)) this.#options.onDrop?.(why)
  }

  #take (socket: HubSocket): boolean {
    const sockets = this.#byUser.get(socket.userId)
    if (sockets?.delete(socket) !== true) return false
    this.#count--
    if (sockets.size === 0) {
      this.#byUser.delete(socket.userId)
      this.#options.onUserOffline?.(socket.userId)
    }
    return true
  }
}
