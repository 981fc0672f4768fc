import type { HubSocket } from '../hub/socket.js'

/** Where a notification falls in a tab's feed, against the last seq the tab has. */
export type Place = 'repeat' | 'next' | 'hole'

/**
 * The feed's one sequencing rule: seq ≤ last is a repeat (the tab has it); last + 1 is next;
 * anything later leaves a hole (the notifications between never reached the tab).
 */
export function placeOf (seq: number, last: number): Place {
  if (seq <= last) return 'repeat'
  return seq === last + 1 ? 'next' : 'hole'
}

/**
 * Where a frame stands in its user's feed. A notification has its `seq` (and the feed's `rev` when
 * it was stored, when known); a state change has `state: true`, its `rev`, and as `seq` the feed's
 * newest notification when it was made. Frames that are neither (e.g. `unread`) have no `seq`.
 */
export interface FramePosition {
  readonly seq: number | undefined
  readonly rev?: number | undefined
  readonly state?: boolean | undefined
}

/**
 * A live frame on its way to the tabs of one user: the text for the wire, its UTF-8 length
 * (measured once for all of them: the send bound is in bytes), and its position.
 */
export interface OutboundFrame extends FramePosition {
  readonly text: string
  readonly bytes: number
}

/**
 * Where a frame falls for a tab at `lastSeq`/`lastRev` (undefined: it has no place, it just goes):
 * by the counter it advances (`placeOf`: seq for a notification, rev for a state change), and a
 * hole too when its other counter is ahead of the tab's (a state change made after a notification
 * the tab has not got yet, or a notification stored after a state change it has not got). So a
 * tab has everything before a frame when it gets it, and the frame's cursor never skips anything.
 */
export function placeFrame ({ seq, rev, state }: FramePosition, lastSeq: number, lastRev: number): Place | undefined {
  if (seq === undefined) return undefined
  const place = state === true ? placeOf(rev ?? 0, lastRev) : placeOf(seq, lastSeq)
  if (place !== 'next') return place
  return (state === true ? seq > lastSeq : (rev ?? 0) > lastRev) ? 'hole' : 'next'
}

/**
 * What a tab did with a live frame: sent it; held it (a catch-up or a gap fill runs); held it as
 * the first frame after a hole, which the caller must now fill from the inbox; or dropped it (a
 * repeat, or the socket is closed, or was closed now for being slow).
 */
export type Offered = 'sent' | 'held' | 'hole' | 'dropped'

/**
 * One tab's position in its user's feed, over its socket: the last seq and rev it was sent (or
 * told it is at), and, while a catch-up or a gap fill runs, the live frames held back for after
 * it. Notifications reach the socket in seq order and state changes in rev order, each once:
 * every decision goes through `placeFrame`.
 */
export class Tab {
  readonly socket: HubSocket
  #lastSeq = 0
  #lastRev = 0
  #held: OutboundFrame[] | undefined
  #heldBytes = 0
  #behind = false

  constructor (socket: HubSocket) {
    this.socket = socket
  }

  /**
   * The seq of the last notification this tab was sent, or was told it is at (`ready`, `synced`):
   * the next one it can take in order is lastSeq + 1.
   */
  get lastSeq (): number {
    return this.#lastSeq
  }

  /** The rev of the last state change this tab was sent, or was told it is at: the next one it can take is lastRev + 1. */
  get lastRev (): number {
    return this.#lastRev
  }

  /** Whether live frames are held back (a catch-up or a gap fill is running). */
  get holding (): boolean {
    return this.#held !== undefined
  }

  /** Set by `markBehind`, cleared by the `release` it stops. */
  get behind (): boolean {
    return this.#behind
  }

  /** Holds live frames back until `release`. */
  hold (): void {
    this.#held ??= []
  }

  /**
   * Says, while frames are held, that the feed may have moved on without this tab hearing of it
   * (its gateway lost its subscription): the next `release` stops before sending anything, so the
   * replay runs once more.
   */
  markBehind (): void {
    if (this.#held !== undefined) this.#behind = true
  }

  /** A live frame from the fan-out; on the hot path: a few integer comparisons, no allocation. */
  offer (frame: OutboundFrame): Offered {
    if (!this.socket.open) return 'dropped'
    // Held (opening, or filling a hole): `release` drops repeats and stops at holes.
    if (this.#held !== undefined) return this.#keep(this.#held, frame) ? 'held' : 'dropped'
    const place = placeFrame(frame, this.#lastSeq, this.#lastRev)
    if (place !== undefined) {
      if (place === 'repeat') return 'dropped'
      if (place === 'hole') {
        this.#held = []
        return this.#keep(this.#held, frame) ? 'hole' : 'dropped'
      }
    }
    return this.#send(frame.text, frame.bytes, frame) ? 'sent' : 'dropped'
  }

  /**
   * Sends at once, even while live frames are held (the catch-up itself goes through here);
   * `position`: the replayed notification's or state change's, which moves `lastSeq` or `lastRev` once sent.
   */
  sendNow (text: string, position?: FramePosition): boolean {
    return this.#send(text, undefined, position)
  }

  /** Like `sendNow`, resolving once the frame was written out (false: it was not sent). */
  async sendWritten (text: string, position?: FramePosition): Promise<boolean> {
    const sent = await this.socket.sendWritten(text)
    if (sent) this.#advance(position)
    return sent
  }

  /**
   * Goes live from `lastSeq`/`lastRev` (where the replay ended, or the position the client was
   * told): sends the held frames in order, except repeats (the replay had them). It stops at a hole
   * (frames were lost on the way), or before anything when the tab was marked behind; the frames
   * from there stay held, for another replay, and it returns false. True: live (or closed) now.
   */
  release (lastSeq: number, lastRev: number): boolean {
    if (lastSeq > this.#lastSeq) this.#lastSeq = lastSeq
    if (lastRev > this.#lastRev) this.#lastRev = lastRev
    const held = this.#held
    if (held === undefined) return true
    if (!this.socket.open) {
      this.#dropHeld()
      return true
    }
    if (this.#behind) {
      this.#behind = false
      return false
    }
    this.#dropHeld()
    for (let i = 0; i < held.length; i++) {
      const frame = held[i]!
      const place = placeFrame(frame, this.#lastSeq, this.#lastRev)
      if (place !== undefined) {
        if (place === 'repeat') continue
        if (place === 'hole') {
          // Already counted against the bound when they were first held.
          this.#held = held.slice(i)
          this.#heldBytes = this.#held.reduce((bytes, kept) => bytes + kept.bytes, 0)
          return false
        }
      }
      if (!this.#send(frame.text, frame.bytes, frame)) return true
    }
    return true
  }

  /** Holds a live frame back; held frames count against the send bound too, so a client stuck in its catch-up cannot pile them up. */
  #keep (held: OutboundFrame[], frame: OutboundFrame): boolean {
    if (!this.socket.fits(this.#heldBytes + frame.bytes)) {
      this.socket.closeAsSlow()
      return false
    }
    held.push(frame)
    this.#heldBytes += frame.bytes
    return true
  }

  #dropHeld (): void {
    this.#held = undefined
    this.#heldBytes = 0
    this.#behind = false
  }

  #send (text: string, bytes: number | undefined, position: FramePosition | undefined): boolean {
    if (!this.socket.send(text, bytes)) return false
    this.#advance(position)
    return true
  }

  #advance (position: FramePosition | undefined): void {
    if (position?.seq === undefined) return
    if (position.state === true) this.#lastRev = position.rev ?? this.#lastRev
    else this.#lastSeq = position.seq
  }
}
