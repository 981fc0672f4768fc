/**
 * A cursor names a position in one user's feed: the inbox's epoch and the user's contiguous
 * sequence number (1, 2, 3… per user). Clients treat it as an opaque string; docs/protocol.md
 * tells them only that it resumes a feed. The epoch changes whenever the inbox may have lost
 * writes, so a cursor from before such a loss can never silently point at another notification.
 */
export interface Cursor {
  /** Undefined for "0" (the start of any epoch) and for cursors of the old, epoch-less format. */
  epoch: string | undefined
  seq: number
}

/** `<epoch>.<seq>`; "0" (the beginning) and the old bare sequence numbers are still accepted. */
export const CURSOR_PATTERN = '^([0-9]{1,15}|[0-9a-z]{1,16}\\.[0-9]{1,15})$'

export function encodeCursor (epoch: string, seq: number): string {
  return `${epoch}.${seq}`
}

/** Decodes a cursor that matched CURSOR_PATTERN. */
export function decodeCursor (text: string): Cursor {
  const dot = text.indexOf('.')
  if (dot === -1) return { epoch: undefined, seq: Number(text) }
  return { epoch: text.slice(0, dot), seq: Number(text.slice(dot + 1)) }
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
