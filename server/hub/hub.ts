import type { CloseCode } from './close-codes.js'
import { measured, type Connection, type OutboundFrame } from './socket.js'

export interface HubOptions {
  heartbeatMs: number
  /** Told when a connection is dropped for being slow or dead (for metrics). */
  onDrop?: (why: 'slow' | 'dead') => void
  /** Told when a user's first connection is added (the fan-out then watches the user)… */
  onUserOnline?: (userId: string) => void
  /** …and when their last one left. */
  onUserOffline?: (userId: string) => void
}

/**
 * Decides, per connection, whether a frame goes out: the feed relay drops notifications a tab
 * already has and holds one that would leave a hole. Called on the hot path: no allocation.
 */
export interface FrameGate {
  admit (connection: Connection, frame: OutboundFrame & { bytes: number }): boolean
}

/**
 * The open connections, by user. Every frame for a user goes to all of that user's tabs.
 * Empty user sets are removed, so memory follows the number of open sockets.
 */
export class Hub {
  readonly #byUser = new Map<string, Set<Connection>>()
  readonly #options: HubOptions
  #count = 0
  #timer: NodeJS.Timeout | undefined
  /** Connections corked during `batch`, uncorked at its end. */
  #corked: Set<Connection> | undefined
  /** Set by `closeAll`: how connections added from then on are closed. */
  #closing: { code: CloseCode, reason: string } | undefined

  constructor (options: HubOptions) {
    this.#options = options
  }

  get connectionCount (): number {
    return this.#count
  }

  get userCount (): number {
    return this.#byUser.size
  }

  connectionsOf (userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0
  }

  isOnline (userId: string): boolean {
    return this.#byUser.has(userId)
  }

  /**
   * Adds an open connection. Once `closeAll` ran (shutdown), it is closed at once instead and not
   * kept: an upgrade whose token check was still running when the close began would otherwise
   * hold the server's close until the process is killed.
   */
  add (connection: Connection): void {
    if (this.#closing !== undefined) {
      connection.close(this.#closing.code, this.#closing.reason)
      return
    }
    let connections = this.#byUser.get(connection.userId)
    const first = connections === undefined
    if (connections === undefined) {
      connections = new Set()
      this.#byUser.set(connection.userId, connections)
    }
    if (!connections.has(connection)) {
      connections.add(connection)
      this.#count++
    }
    if (first) this.#options.onUserOnline?.(connection.userId)
    // A slow close counts once wherever it happens: a live send, or the catch-up's own sends.
    connection.onClosedAsSlow = () => this.#dropped(connection, 'slow')
    this.#timer ??= setInterval(() => this.#beat(), this.#options.heartbeatMs).unref()
  }

  remove (connection: Connection): void {
    this.#take(connection)
  }

  /** The user's open connections (a copy). */
  connections (userId: string): Connection[] {
    return [...this.#byUser.get(userId) ?? []]
  }

  /**
   * Sends the frame to every open tab of the user that `gate` (if any) admits; returns how many
   * sockets took it.
   */
  send (userId: string, frame: OutboundFrame, gate?: FrameGate): number {
    const connections = this.#byUser.get(userId)
    if (connections === undefined) return 0
    const sized = measured(frame)
    let sent = 0
    for (const connection of connections) {
      if (gate !== undefined && !gate.admit(connection, sized)) continue
      if (this.#corked !== undefined && !this.#corked.has(connection)) {
        this.#corked.add(connection)
        connection.cork()
      }
      if (connection.send(sized)) sent++
    }
    return sent
  }

  /**
   * Runs `sends` with every socket it writes to corked, then uncorks them: the frames one
   * consumed batch has for a tab (its notifications, then its unread count) leave in one write.
   */
  batch (sends: () => void): void {
    if (this.#corked !== undefined) return sends()
    const corked = new Set<Connection>()
    this.#corked = corked
    try {
      sends()
    } finally {
      this.#corked = undefined
      for (const connection of corked) connection.uncork()
    }
  }

  /** Closes every connection, and every one added from now on (shutdown). */
  closeAll (code: CloseCode, reason: string): void {
    this.#closing = { code, reason }
    this.disconnectAll(code, reason)
  }

  /** Closes every open connection; connections added later are kept as usual. */
  disconnectAll (code: CloseCode, reason: string): void {
    for (const connections of this.#byUser.values()) {
      for (const connection of connections) connection.close(code, reason)
    }
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #beat (): void {
    for (const connections of [...this.#byUser.values()]) {
      for (const connection of connections) {
        if (!connection.heartbeat()) this.#dropped(connection, 'dead')
      }
    }
  }

  /** Counts a drop only for a connection the hub still had, so none is counted twice. */
  #dropped (connection: Connection, why: 'slow' | 'dead'): void {
    if (this.#take(connection)) this.#options.onDrop?.(why)
  }

  #take (connection: Connection): boolean {
    const connections = this.#byUser.get(connection.userId)
    if (connections?.delete(connection) !== true) return false
    this.#count--
    if (connections.size === 0) {
      this.#byUser.delete(connection.userId)
      this.#options.onUserOffline?.(connection.userId)
    }
    return true
  }
}
