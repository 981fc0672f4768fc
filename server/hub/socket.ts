import { CloseCode } from './close-codes.js'

/** Holds a socket's writes back and lets them out in one system call (net.Socket has both). */
export interface Corkable {
  cork (): void
  uncork (): void
}

/** What the hub needs of a socket; `ws`'s WebSocket has it all. */
export interface HubSocket {
  readonly readyState: number
  readonly bufferedAmount: number
  send (data: string, written?: (error?: Error) => void): void
  ping (): void
  close (code: number, reason: string): void
  terminate (): void
}

/**
 * A frame ready for the wire; `seq` orders notifications so catch-up can drop what it already sent.
 * `bytes` is the text's UTF-8 length, measured once for all of a user's tabs (the hub does it when
 * the caller did not).
 */
export interface OutboundFrame {
  text: string
  seq?: number
  bytes?: number
}

/** The frame with its UTF-8 length: the send bound is in bytes, like `bufferedAmount`. */
export function measured (frame: OutboundFrame): OutboundFrame & { bytes: number } {
  return frame.bytes === undefined ? { ...frame, bytes: Buffer.byteLength(frame.text) } : frame as OutboundFrame & { bytes: number }
}

const OPEN = 1
/** While corked, frames are let out once this much has queued up. */
const CORKED_FLUSH_BYTES = 16 * 1024
/** A peer that does not finish the close handshake in this time is cut off. */
const CLOSE_GRACE_MS = 1000

/**
 * One open socket of one user. Sends check the socket's unsent bytes first: a client past the
 * bound is closed as slow rather than buffered without end. While catching up, live frames are
 * held back and released in order once the replay is done.
 */
export class Connection {
  readonly userId: string
  readonly socket: HubSocket
  readonly #maxBufferedBytes: number
  #held: Array<OutboundFrame & { bytes: number }> | undefined
  #heldBytes = 0
  #lastSeq = 0
  #behind = false
  #alive = true
  #closeCode: CloseCode | undefined
  /**
   * Called once when this side closes the connection as slow, wherever the send was (live, held,
   * or the catch-up's own `sendNow`); the hub sets it to count and drop the connection.
   */
  onClosedAsSlow: (() => void) | undefined

  /** The TCP socket under the WebSocket, when it can be corked. */
  readonly #transport: Corkable | undefined
  #corked = false

  constructor (userId: string, socket: HubSocket, maxBufferedBytes: number, transport?: Corkable) {
    this.userId = userId
    this.socket = socket
    this.#maxBufferedBytes = maxBufferedBytes
    this.#transport = transport
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
    return this.#closeCode === undefined && this.socket.readyState === OPEN
  }

  /** The code this side closed with, if it did. */
  get closeCode (): CloseCode | undefined {
    return this.#closeCode
  }

  /**
   * The seq of the last notification this client was sent, or was told it is at (`ready`, `synced`):
   * the next one it can take in order is lastSeq + 1.
   */
  get lastSeq (): number {
    return this.#lastSeq
  }

  /** Whether live frames are held back (a catch-up or a gap fill is running). */
  get holding (): boolean {
    return this.#held !== undefined
  }

  /** Set by `markBehind`, cleared by the `release` it stops. */
  get behind (): boolean {
    return this.#behind
  }

  /**
   * Says, while frames are held, that the feed may have moved on without this connection hearing of
   * it (its gateway lost its subscription): the next `release` stops before sending anything, so
   * the replay runs once more.
   */
  markBehind (): void {
    if (this.#held !== undefined) this.#behind = true
  }

  /** Returns false when the frame was not sent (closed, or closed now for being slow). */
  send (frame: OutboundFrame): boolean {
    if (!this.open) return false
    const sized = measured(frame)
    if (this.#held !== undefined) {
      // Held frames count against the bound too: a client stuck in its catch-up cannot pile them up.
      if (this.buffered + this.#heldBytes + sized.bytes > this.#maxBufferedBytes) {
        this.close(CloseCode.SLOW_CLIENT, 'slow client: send buffer full')
        return false
      }
      this.#held.push(sized)
      this.#heldBytes += sized.bytes
      return true
    }
    if (!this.#write(sized.text, sized.bytes)) return false
    if (sized.seq !== undefined) this.#lastSeq = sized.seq
    return true
  }

  /** Bytes queued on the socket and not yet written out. */
  get buffered (): number {
    return this.socket.bufferedAmount
  }

  /**
   * Sends at once, even while live frames are held (the replay itself goes through here); `seq`:
   * the notification's, which becomes `lastSeq` once sent.
   */
  sendNow (text: string, seq?: number): boolean {
    if (!this.#write(text, Buffer.byteLength(text))) return false
    if (seq !== undefined) this.#lastSeq = seq
    return true
  }

  /** Like `sendNow`, resolving once the frame was written out (false: it was not sent). */
  sendWritten (text: string, seq?: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.#write(text, Buffer.byteLength(text), () => resolve(this.open))) resolve(false)
      else if (seq !== undefined) this.#lastSeq = seq
    })
  }

  /** Holds live frames back until `release`. */
  hold (): void {
    this.#held ??= []
  }

  /**
   * Goes live from `lastSeq` (where the replay ended, or the position the client was told): sends
   * the held frames in order, except notifications at or before it (the replay had them). It stops
   * at a notification that does not follow the one before (a hole: frames were lost on the way),
   * or before anything when the connection was marked behind; the frames from there stay held, for
   * another replay, and it returns false. True: live (or closed) now.
   */
  release (lastSeq: number): boolean {
    if (lastSeq > this.#lastSeq) this.#lastSeq = lastSeq
    const held = this.#held
    if (held === undefined) return true
    if (this.#behind) {
      this.#behind = false
      return false
    }
    this.#held = undefined
    this.#heldBytes = 0
    for (let i = 0; i < held.length; i++) {
      const frame = held[i]!
      if (frame.seq !== undefined) {
        if (frame.seq <= this.#lastSeq) continue
        if (frame.seq !== this.#lastSeq + 1) return this.#holdAgain(held.slice(i))
      }
      if (!this.#write(frame.text, frame.bytes)) return true
      if (frame.seq !== undefined) this.#lastSeq = frame.seq
    }
    return true
  }

  #holdAgain (frames: Array<OutboundFrame & { bytes: number }>): boolean {
    if (!this.open) return true
    this.#held = frames
    this.#heldBytes = frames.reduce((bytes, frame) => bytes + frame.bytes, 0)
    return false
  }

  #write (text: string, bytes: number, written?: () => void): boolean {
    if (!this.open) return false
    if (this.buffered + bytes > this.#maxBufferedBytes) {
      this.close(CloseCode.SLOW_CLIENT, 'slow client: send buffer full')
      return false
    }
    if (written === undefined) this.socket.send(text)
    else this.socket.send(text, written)
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
      this.socket.terminate()
      return false
    }
    this.#alive = false
    if (this.socket.readyState === OPEN) this.socket.ping()
    return true
  }

  markAlive (): void {
    this.#alive = true
  }

  close (code: CloseCode, reason: string): void {
    if (this.#closeCode !== undefined) return
    this.#closeCode = code
    this.#held = undefined
    this.#heldBytes = 0
    this.#behind = false
    if (this.socket.readyState !== OPEN) {
      this.socket.terminate()
    } else {
      this.socket.close(code, reason)
      setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS).unref()
    }
    if (code === CloseCode.SLOW_CLIENT) this.onClosedAsSlow?.()
  }
}
