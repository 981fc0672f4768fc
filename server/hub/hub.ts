import { CloseCode } from './close-codes.js'
import type { Connection, OutboundFrame } from './connection.js'

export interface HubOptions {
  heartbeatMs: number
  /** Told when a connection is dropped for being slow or dead (for metrics). */
  onDrop?: (why: 'slow' | 'dead') => void
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

  add (connection: Connection): void {
    let connections = this.#byUser.get(connection.userId)
    if (connections === undefined) {
      connections = new Set()
      this.#byUser.set(connection.userId, connections)
    }
    if (!connections.has(connection)) {
      connections.add(connection)
      this.#count++
    }
    this.#timer ??= setInterval(() => this.#beat(), this.#options.heartbeatMs).unref()
  }

  remove (connection: Connection): void {
    const connections = this.#byUser.get(connection.userId)
    if (connections?.delete(connection) !== true) return
    this.#count--
    if (connections.size === 0) this.#byUser.delete(connection.userId)
  }

  /** Sends the frame to every open tab of the user; returns how many sockets took it. */
  send (userId: string, frame: OutboundFrame): number {
    const connections = this.#byUser.get(userId)
    if (connections === undefined) return 0
    let sent = 0
    for (const connection of connections) {
      if (this.#corked !== undefined && !this.#corked.has(connection)) {
        this.#corked.add(connection)
        connection.cork()
      }
      if (connection.send(frame)) sent++
      else if (connection.closeCode === CloseCode.SLOW_CLIENT) this.#dropped(connection, 'slow')
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

  /** Closes every connection (shutdown); the hub stays usable. */
  closeAll (code: CloseCode, reason: string): void {
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

  #dropped (connection: Connection, why: 'slow' | 'dead'): void {
    this.remove(connection)
    this.#options.onDrop?.(why)
  }
}
