import type { User } from '../directory.js'
import { CloseCode } from '../hub/close-codes.js'
import { InboxUnavailableError, type FeedState, type Inbox } from '../inbox/types.js'
import type { Logger } from '../logger.js'
import { encodeCursor, resumeAfter, type Cursor } from './cursor.js'
import { notificationFrame, readyFrame, syncedFrame, type FeedTail } from './frames.js'
import { placeOf, type Tab } from './tab.js'

const CATCH_UP_PAGE = 500

/** How far a replay got: the last seq sent, and whether it stopped at a hole in the feed. */
interface Replayed {
  seq: number
  hole: boolean
}

/**
 * Opens a user's feed on a tab that is holding its live frames: `ready`, then, with `since`,
 * every stored notification after it and `synced`, then the held live frames. The replay must be
 * contiguous (seq after seq) up to at least the newest seq of when the socket opened; a hole
 * (retention pruned rows the client never saw, even in the middle of the replay) or a cursor from
 * another epoch answers `synced` with `reset: true` instead. `pingMs`: how often the tab gets `ping`
 * frames, which `ready` tells the client.
 */
export async function openFeed (tab: Tab, inbox: Inbox, user: User, since: Cursor | undefined, pingMs: number): Promise<void> {
  const feed = await inbox.feed(user.id)
  const { newestSeq } = feed
  tab.sendNow(readyFrame(user, encodeCursor(inbox.epoch, newestSeq), tailOf(feed), pingMs))
  if (since === undefined) {
    await goLive(tab, inbox, newestSeq)
    return
  }
  const from = resumeAfter(since, inbox.epoch, newestSeq)
  const replayed = from === undefined ? { seq: newestSeq, hole: true } : await replay(tab, inbox, from)
  if (replayed === undefined) return // the socket closed
  const complete = !replayed.hole && replayed.seq >= newestSeq
  // After a reset, live frames go on from the newest position the client was told about.
  const seq = complete ? replayed.seq : Math.max(replayed.seq, newestSeq)
  tab.sendNow(syncedFrame(encodeCursor(inbox.epoch, seq), seq, !complete))
  await goLive(tab, inbox, seq)
}

/** Releases the held live frames after `seq`, filling from the inbox first when they do not follow on. */
async function goLive (tab: Tab, inbox: Inbox, seq: number): Promise<void> {
  if (!tab.release(seq)) await fillGap(tab, inbox)
}

/**
 * Brings a tab that holds its live frames up to date: replays the inbox after its `lastSeq`, then
 * releases the held frames; again while the release meets a hole or the tab was marked behind
 * meanwhile. A hole in the inbox itself (retention deleted what this client never got) closes the
 * socket with FEED_GAP: reconnecting with `since` gets `synced` with `reset`.
 */
export async function fillGap (tab: Tab, inbox: Inbox): Promise<void> {
  for (;;) {
    const after = tab.lastSeq
    const replayed = await replay(tab, inbox, after)
    if (replayed === undefined) return // the socket closed
    const behind = tab.behind
    if (!replayed.hole && tab.release(replayed.seq)) return
    // Published after it was stored, a held frame is never ahead of the inbox: unless retention took the rows between.
    if (replayed.hole || (replayed.seq === after && !behind)) {
      tab.socket.close(CloseCode.FEED_GAP, 'feed gap: reconnect with since')
      return
    }
  }
}

/** The frames' view of where a feed stands. */
export function tailOf ({ newestSeq, rev, unread }: FeedState): FeedTail {
  return { seq: newestSeq, rev, unread }
}

/**
 * Closes a tab whose catch-up or gap fill failed. An unreachable inbox passes: the client
 * reconnects later with its last cursor and loses nothing. Anything else is a bug, logged as one.
 */
export function closeAfterFailedReplay (tab: Tab, error: unknown, log: Logger, what: string): void {
  const { socket } = tab
  if (error instanceof InboxUnavailableError) {
    log.warn({ err: error, userId: socket.userId }, `${what}: the inbox is unavailable`)
    socket.close(CloseCode.TRY_AGAIN_LATER, 'inbox unavailable: reconnect with since later')
    return
  }
  log.error({ err: error, userId: socket.userId }, `${what} failed`)
  socket.close(CloseCode.INTERNAL_ERROR, 'internal error')
}

/**
 * Sends the user's stored notifications after `after`, oldest first, until the newest or a hole.
 * Resolves undefined when the socket closed (or was closed as slow) on the way.
 */
async function replay (tab: Tab, inbox: Inbox, after: number): Promise<Replayed | undefined> {
  const { socket } = tab
  let seq = after
  for (;;) {
    const page = await inbox.after(socket.userId, seq, CATCH_UP_PAGE)
    for (const stored of page) {
      if (placeOf(stored.seq, seq) !== 'next') return { seq, hole: true }
      const frame = notificationFrame(JSON.stringify(stored.notification), encodeCursor(inbox.epoch, stored.seq), stored.seq)
      // A replay can be far larger than the send bound: past half of it, wait for the wire.
      const sent = socket.buffered > socket.maxBufferedBytes / 2
        ? await tab.sendWritten(frame, stored.seq)
        : tab.sendNow(frame, stored.seq)
      if (!sent) return undefined
      seq = stored.seq
    }
    if (page.length < CATCH_UP_PAGE) return { seq, hole: false }
  }
}
