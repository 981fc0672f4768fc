/**
 * Where the feed stood when an unread count was read: its `rev` (read-state changes so far) and,
 * where the frame has one, its newest `seq` (docs/protocol.md). `rev` is undefined from a gateway
 * that sends none.
 */
export interface CountStamp {
  rev?: number | undefined
  seq?: number | undefined
}

/**
 * Keeps the unread count from going back in time. Counts of one user travel apart (a notification's
 * from the gateway that consumed it, a read mark's from the one that took it) and may arrive out of
 * order. Of two counts, the one with the higher `rev` is newer, or with the same `rev` the one with
 * the higher `seq`. A count without a `seq` (a read mark's) is the first of its `rev`: any count
 * already taken at that `rev` is as new or newer.
 */
export class UnreadOrder {
  #rev: number | null = null
  #seq = 0

  /** Starts again from a connection's `ready`, whatever came before (the inbox may be a new one, its revs begun anew). */
  reset (stamp: CountStamp): void {
    this.#rev = stamp.rev ?? null
    this.#seq = stamp.seq ?? 0
  }

  /** Whether a count stamped so is the newest yet, and to be shown; its stamp is kept if so. */
  accept (stamp: CountStamp): boolean {
    const { rev, seq } = stamp
    if (rev === undefined) return true
    if (this.#rev !== null && (rev < this.#rev || (rev === this.#rev && (seq === undefined || seq < this.#seq)))) return false
    this.#rev = rev
    this.#seq = seq ?? 0
    return true
  }
}
