import type { HistoryItem, NotificationFrame, PingFrame, ReadyFrame, StateFrame, SyncedFrame } from './types.js'

/**
 * A place in the user's feed: the cursor (opaque: stored, sent back, never parsed), the per-user
 * seq that came with it, and the feed state's `rev` the client had applied then (absent when not
 * known: a history item's cursor, or a gateway without state changes).
 */
export interface Position {
  readonly cursor: string
  readonly seq: number
  readonly rev?: number
}

/**
 * What to do with a `notification` or `state` frame: apply it (`live`, or replayed by a catch-up),
 * drop it (`duplicate`, or `ignored` after a hole on this connection), or `hole`: something before
 * it was missed, so resume from `since` before applying anything newer.
 */
export type FrameVerdict = 'live' | 'catch-up' | 'duplicate' | 'hole' | 'ignored'

/** After `synced`: carry on (`ok`), `reset` (reload history), or `hole` (the catch-up stopped short). */
export type SyncedVerdict = 'ok' | 'reset' | 'hole' | 'ignored'

/** After `ping`: carry on (`ok`), or `hole`: the feed has notifications or state changes past the last ones applied. */
export type PingVerdict = 'ok' | 'hole' | 'ignored'

export interface FeedSyncOptions {
  /** Called whenever the resume point moves, to persist it. */
  onPosition?: (position: Position) => void
}

/**
 * The sequencing of one signed-in user's feed, without DOM or I/O: where to resume from
 * (`since`), which frames to show, drop or treat as a hole, when to reload history, and the
 * newest item seen (`upTo`, for "mark all read"). State changes (`state` frames) follow the same
 * rule by their `rev`: contiguous after the `rev` of `since` (or of `ready` when `since` has none,
 * as the gateway then replays no state change).
 *
 * Frames come in as one stream: a `ready` starts a connection, and the socket it came from
 * says which `since` it was opened with. Holes are judged within a connection only, against
 * the seq of its `since` (catch-up) or of its `ready` (no catch-up): `ready`'s seq is the
 * newest at open time, which every catch-up frame is at or below.
 */
export class FeedSync {
  readonly #onPosition: (position: Position) => void
  /** The last position the client has everything up to: the `since` of the next connection. */
  #position: Position | null = null
  /** The newest item shown (highest seq), from history and frames alike. */
  #highest: Position | null = null
  /** The seq of the last frame accepted on the current connection; null before the first `ready`. */
  #lastSeq: number | null = null
  /** The rev of the last state change applied on the current connection; null from a gateway without revs. */
  #lastRev: number | null = null
  #catchingUp = false
  /** Set by a hole: the rest of this connection's frames are dropped until the next `ready`. */
  #abandoned = false

  constructor (options: FeedSyncOptions = {}) {
    this.#onPosition = options.onPosition ?? (() => {})
  }

  /** The resume point to connect with (null: connect without `since`). */
  get since (): Position | null {
    return this.#position
  }

  /** The newest item shown, by seq: what "mark all read" marks up to. */
  get upTo (): Position | null {
    return this.#highest
  }

  /** Adopts a stored resume point, unless history already gave a newer one. */
  resumeFrom (position: Position | null): void {
    if (this.#position === null && position !== null) this.#setPosition(position)
  }

  /**
   * A history page arrived. `newest` is true for the first page (no `before`): its newest item
   * is a resume point when there is none yet.
   */
  history (items: readonly HistoryItem[], newest: boolean): void {
    const first = items[0]
    if (first === undefined) return
    let top: Position = position(first)
    for (const item of items) {
      const candidate = position(item)
      if (candidate.seq > top.seq) top = candidate
      this.#consider(candidate)
    }
    if (newest && this.#position === null) this.#setPosition(top)
  }

  /** A connection opened with `since` (null: without) and said `ready`. Returns whether history must be refreshed. */
  ready (frame: ReadyFrame, since: Position | null): { refreshHistory: boolean } {
    this.#abandoned = false
    this.#catchingUp = since !== null
    this.#lastSeq = since === null ? frame.seq : since.seq
    this.#lastRev = since?.rev ?? frame.rev ?? null
    // Without a catch-up, what arrived since the last history load is only in history.
    return { refreshHistory: since === null }
  }

  notification (frame: NotificationFrame): FrameVerdict {
    const verdict = this.#follows(this.#lastSeq, frame.seq)
    if (verdict !== 'next') return verdict
    this.#lastSeq = frame.seq
    const at = this.#at(frame.cursor, frame.seq)
    this.#setPosition(at)
    this.#consider(at)
    return this.#catchingUp ? 'catch-up' : 'live'
  }

  /** A state change: applied in `rev` order, like notifications in `seq` order. */
  state (frame: StateFrame): FrameVerdict {
    const verdict = this.#follows(this.#lastRev, frame.rev)
    if (verdict !== 'next') return verdict
    this.#lastRev = frame.rev
    this.#setPosition(this.#at(frame.cursor, this.#lastSeq ?? frame.seq))
    return this.#catchingUp ? 'catch-up' : 'live'
  }

  /** Whether `value` (a seq, or a rev) is the one after `last`: a repeat is a duplicate, a jump a hole. */
  #follows (last: number | null, value: number): 'next' | 'duplicate' | 'hole' | 'ignored' {
    if (this.#abandoned) return 'ignored'
    if (last === null) return 'next'
    if (value <= last) return 'duplicate'
    return value === last + 1 ? 'next' : this.#hole()
  }

  synced (frame: SyncedFrame): SyncedVerdict {
    if (this.#abandoned) return 'ignored'
    this.#catchingUp = false
    const { seq } = frame
    if (frame.reset === true) {
      // Another epoch, or rows gone before we saw them: nothing we hold can be compared with
      // what comes next. Live frames go on from the cursor in this frame.
      this.#highest = null
      this.#lastSeq = seq
      this.#lastRev = frame.rev ?? null
      this.#setPosition(this.#at(frame.cursor, seq))
      return 'reset'
    }
    if (this.#lastSeq !== null && seq > this.#lastSeq) return this.#hole()
    if (this.#lastRev !== null && frame.rev !== undefined && frame.rev > this.#lastRev) return this.#hole()
    this.#lastSeq ??= seq
    this.#lastRev ??= frame.rev ?? null
    this.#setPosition(this.#at(frame.cursor, this.#lastSeq))
    return 'ok'
  }

  /**
   * A `ping` names the feed's newest seq: past the last one this connection got, the notifications
   * between were lost on the way, the last ones included, which no later frame would reveal.
   */
  ping (frame: PingFrame): PingVerdict {
    if (this.#abandoned) return 'ignored'
    // During a catch-up the feed is ahead by design (the gateway holds pings until `synced`).
    if (frame.seq === undefined || this.#lastSeq === null || this.#catchingUp) return 'ok'
    const behind = frame.seq > this.#lastSeq || (frame.rev !== undefined && this.#lastRev !== null && frame.rev > this.#lastRev)
    return behind ? this.#hole() : 'ok'
  }

  /** The server refused our cursors as from another epoch (409 STALE_CURSOR): history is reloaded. */
  stale (): void {
    this.#highest = null
  }

  #hole (): 'hole' {
    this.#abandoned = true
    return 'hole'
  }

  /** A position on this connection: with the rev applied so far, when there is one. */
  #at (cursor: string, seq: number): Position {
    return this.#lastRev === null ? { cursor, seq } : { cursor, seq, rev: this.#lastRev }
  }

  #setPosition (next: Position): void {
    this.#position = next
    this.#onPosition(next)
  }

  #consider (candidate: Position): void {
    if (this.#highest === null || candidate.seq > this.#highest.seq) this.#highest = candidate
  }
}

function position (item: HistoryItem): Position {
  return { cursor: item.cursor, seq: item.seq }
}
