import type { CloseCode } from './close-codes.js'
import type { HubSocket } from './socket.js'

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
  }

  #beat (): void {
    for (const sockets of [...this.#byUser.values()]) {
      for (const socket of sockets) {
        if (!socket.heartbeat()) this.#dropped(socket, 'dead')
      }
    }
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
