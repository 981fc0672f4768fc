import { systemClock, type Clock } from '../clock.js'
import { CloseCode } from './close-codes.js'

/** Holds a socket's writes back and lets them out in one system call (net.Socket has both). */
export interface Corkable {
  cork (): void
  uncork (): void
}

/**
 * What the hub needs of a client's open connection to the live feed: a WebSocket (`ws`'s has it
 * all) or an event stream (event-stream.ts, for GET /sse). `ping` probes the peer; whoever made
 * the connection calls the socket's `markAlive` when the peer answers.
 */
export interface FeedConnection {
  readonly readyState: number
  readonly bufferedAmount: number
  send (data: string, written?: (error?: Error) => void): void
  ping (): void
  close (code: number, reason: string): void
  terminate (): void
}

export interface HubSocketOptions {
  /** The TCP socket under the WebSocket, when it can be corked. */
  transport?: Corkable
  /** What the close grace is measured on. */
  clock?: Clock
}

const OPEN = 1
/** While corked, frames are let out once this much has queued up. */
const CORKED_FLUSH_BYTES = 16 * 1024
/** A peer that does not finish the close handshake in this time is cut off. */
const CLOSE_GRACE_MS = 1000

/**
 * One open connection (WebSocket or event stream) of one user, as the hub holds it. Writes check
 * the connection's unsent bytes first: a client past the bound is closed as slow rather than
 * buffered without end. It knows nothing of feeds or transports: what goes out in which order is
 * decided above it (server/feed/tab.ts), how a frame looks on the wire below it.
 */
export class HubSocket {
  readonly userId: string
  readonly #connection: FeedConnection
  /** The send bound, in UTF-8 bytes like `bufferedAmount`. */
  readonly maxBufferedBytes: number
  #alive = true
  #closeCode: CloseCode | undefined
  /**
   * Called once when this side closes the socket as slow, whoever was writing (a live frame, a
   * held one, the catch-up); the hub sets it to count and drop the socket.
   */
  onClosedAsSlow: (() => void) | undefined

  readonly #transport: Corkable | undefined
  readonly #clock: Clock
  #corked = false

  constructor (userId: string, connection: FeedConnection, maxBufferedBytes: number, options: HubSocketOptions = {}) {
    this.userId = userId
    this.#connection = connection
    this.maxBufferedBytes = maxBufferedBytes
    this.#transport = options.transport
    this.#clock = options.clock ?? systemClock
  }

  cork (): void {
    if (this.#transport === undefined || this.#corked) return
    this.#corked = true
    this.#transport.cork()
  }

  uncork (): void {
    if (!this.#corked) return
    this.#corked = false
    this.#transport?.uncork()
  }

  get open (): boolean {
    return this.#closeCode === undefined && this.#connection.readyState === OPEN
  }

  /** Bytes queued on the socket and not yet written out. */
  get buffered (): number {
    return this.#connection.bufferedAmount
  }

  /** Whether `bytes` more may wait for this socket without passing the send bound. */
  fits (bytes: number): boolean {
    return this.buffered + bytes <= this.maxBufferedBytes
  }

  /** Closes the socket for having passed the send bound (code 4008). */
  closeAsSlow (): void {
    this.close(CloseCode.SLOW_CLIENT, 'slow client: send buffer full')
  }

  /**
   * Writes `text` (`bytes`: its UTF-8 length, when the caller measured it once for several sockets).
   * Returns false when it was not sent: closed, or closed now for being slow.
   */
  send (text: string, bytes = Buffer.byteLength(text)): boolean {
    return this.#write(text, bytes)
  }

  /** Like `send`, resolving once the frame was written out (false: it was not sent). */
  sendWritten (text: string): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.#write(text, Buffer.byteLength(text), () => resolve(this.open))) resolve(false)
    })
  }

  #write (text: string, bytes: number, written?: () => void): boolean {
    if (!this.open) return false
    if (!this.fits(bytes)) {
      this.closeAsSlow()
      return false
    }
    if (written === undefined) this.#connection.send(text)
    else this.#connection.send(text, written)
    // Corked frames count as unsent: let a big batch out as it grows, or a healthy reader of a
    // burst would look slow.
    if (this.#corked && this.buffered >= CORKED_FLUSH_BYTES) {
      this.#transport?.uncork()
      this.#transport?.cork()
    }
    return true
  }

  /** Called on every heartbeat tick: false means the peer missed the last ping and was dropped. */
  heartbeat (): boolean {
    if (!this.#alive) {
      this.#connection.terminate()
      return false
    }
    this.#alive = false
    if (this.#connection.readyState === OPEN) this.#connection.ping()
    return true
  }

  markAlive (): void {
    this.#alive = true
  }

  close (code: CloseCode, reason: string): void {
    if (this.#closeCode !== undefined) return
    this.#closeCode = code
    if (this.#connection.readyState !== OPEN) {
      this.#connection.terminate()
    } else {
      this.#connection.close(code, reason)
      this.#clock.schedule(() => this.#connection.terminate(), CLOSE_GRACE_MS)
    }
    if (code === CloseCode.SLOW_CLIENT) this.onClosedAsSlow?.()
  }
}
