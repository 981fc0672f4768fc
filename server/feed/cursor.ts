/**
 * A cursor names a position in one user's feed: the inbox's epoch, the user's contiguous
 * notification sequence number (1, 2, 3… per user) and, since the feed's state changes are
 * replayed too, the feed's contiguous state revision (`rev`: read, unread, seen, archive,
 * unarchive, delete). Clients treat it as an opaque string; docs/protocol.md tells them only that
 * it resumes a feed. The epoch changes whenever the inbox may have lost writes, so a cursor from
 * before such a loss can never silently point at another notification.
 */
export interface Cursor {
  /** Undefined for "0" (the start of any epoch) and for cursors of the old, epoch-less format. */
  epoch: string | undefined
  seq: number
  /** Undefined for cursors of before state replay (`<epoch>.<seq>`): they resume notifications only. */
  rev: number | undefined
}

/** `<epoch>.<seq>.<rev>`; `<epoch>.<seq>` (no state replay), "0" (the beginning) and the old bare sequence numbers are still accepted. */
export const CURSOR_PATTERN = '^([0-9]{1,15}|[0-9a-z]{1,16}\\.[0-9]{1,15}(\\.[0-9]{1,15})?)$'

/**
 * Without `rev`: a position among notifications only (history's cursors, for `before` and
 * `upTo`); resumed from, it replays no state change.
 */
export function encodeCursor (epoch: string, seq: number, rev?: number): string {
  return rev === undefined ? `${epoch}.${seq}` : `${epoch}.${seq}.${rev}`
}

/** Decodes a cursor that matched CURSOR_PATTERN. */
export function decodeCursor (text: string): Cursor {
  const [first, second, third] = text.split('.')
  if (second === undefined) return { epoch: undefined, seq: Number(first), rev: undefined }
  return { epoch: first, seq: Number(second), rev: third === undefined ? undefined : Number(third) }
}

/**
 * The seq to continue a feed after, or undefined when the cursor cannot be continued here (another
 * epoch, the old format, or a position this feed never reached). "0" is the beginning of any feed.
 */
export function resumeAfter (cursor: Cursor, epoch: string, newestSeq: number): number | undefined {
  if (cursor.epoch === undefined) return cursor.seq === 0 ? 0 : undefined
  if (cursor.epoch !== epoch || cursor.seq > newestSeq) return undefined
  return cursor.seq
}
