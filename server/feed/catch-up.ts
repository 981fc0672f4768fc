import type { User } from '../directory.js'
import { CloseCode } from '../hub/close-codes.js'
import { InboxUnavailableError, type FeedState, type Inbox, type LoggedChange } from '../inbox/types.js'
import type { Logger } from '../logger.js'
import { encodeCursor, resumeAfter, type Cursor } from './cursor.js'
import { notificationFrame, readyFrame, stateFrame, syncedFrame, type FeedTail } from './frames.js'
import { placeOf, type Tab } from './tab.js'

const CATCH_UP_PAGE = 500

/** How far a replay got: the last seq (or rev) sent, and whether it stopped at a hole in the feed (or its state log). */
interface Replayed {
  last: number
  hole: boolean
}

/**
 * Opens a user's feed on a tab that is holding its live frames: `ready`, then, with `since`,
 * every stored notification after it, every state change after its rev (when it has one) and
 * `synced`, then the held live frames. The replay must be contiguous (seq after seq, rev after rev)
 * up to at least where the feed stood when the socket opened; a hole (retention pruned rows or
 * state changes the client never saw, even in the middle of the replay) or a cursor from another
 * epoch answers `synced` with `reset: true` instead. A cursor without rev (of before state replay)
 * gets no state changes: `ready`'s counts are where it starts. `pingMs`: how often the tab gets
 * `ping` frames, which `ready` tells the client.
 */
export async function openFeed (tab: Tab, inbox: Inbox, user: User, since: Cursor | undefined, pingMs: number): Promise<void> {
  const feed = await inbox.snapshot(user.id)
  const { newestSeq, rev } = feed
  tab.sendNow(readyFrame(user, encodeCursor(inbox.epoch, newestSeq, rev), tailOf(feed), feed.unseen, pingMs))
  if (since === undefined) {
    await goLive(tab, inbox, newestSeq, rev)
    return
  }
  const from = resumeAfter(since, inbox.epoch, newestSeq)
  const fromRev = from === undefined || since.rev === undefined ? rev : since.rev
  const replayed = from === undefined ? { last: newestSeq, hole: true } : await replay(tab, inbox, from, fromRev)
  if (replayed === undefined) return // the socket closed
  const changes = replayed.hole || fromRev > rev ? { last: rev, hole: true } : await replayState(tab, inbox, fromRev)
  if (changes === undefined) return
  const complete = !replayed.hole && replayed.last >= newestSeq && !changes.hole && changes.last >= rev
  // After a reset, live frames go on from the newest position the client was told about.
  const seq = complete ? replayed.last : Math.max(replayed.last, newestSeq)
  const lastRev = complete ? changes.last : Math.max(changes.last, rev)
  tab.sendNow(syncedFrame(encodeCursor(inbox.epoch, seq, lastRev), seq, lastRev, !complete))
  await goLive(tab, inbox, seq, lastRev)
}

/** Releases the held live frames after `seq` and `rev`, filling from the inbox first when they do not follow on. */
async function goLive (tab: Tab, inbox: Inbox, seq: number, rev: number): Promise<void> {
  if (!tab.release(seq, rev)) await fillGap(tab, inbox)
}

/**
 * Brings a tab that holds its live frames up to date: replays the inbox after its `lastSeq` and
 * the state log after its `lastRev`, then releases the held frames; again while the release meets
 * a hole or the tab was marked behind meanwhile. A hole in the inbox itself (retention deleted what
 * this client never got) closes the socket with FEED_GAP: reconnecting with `since` gets `synced`
 * with `reset`.
 */
export async function fillGap (tab: Tab, inbox: Inbox): Promise<void> {
  for (;;) {
    const after = tab.lastSeq
    const afterRev = tab.lastRev
    const replayed = await replay(tab, inbox, after, afterRev)
    if (replayed === undefined) return // the socket closed
    const changes = replayed.hole ? replayed : await replayState(tab, inbox, afterRev)
    if (changes === undefined) return
    const behind = tab.behind
    if (!changes.hole && tab.release(replayed.last, changes.last)) return
    // Published after it was stored, a held frame is never ahead of the inbox: unless retention took the rows between.
    if (changes.hole || (replayed.last === after && changes.last === afterRev && !behind)) {
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
 * Sends the user's stored notifications after `after`, oldest first, until the newest or a hole,
 * with cursors at `rev` (where the client's state is: a cursor never skips a state change).
 * Resolves undefined when the socket closed (or was closed as slow) on the way.
 */
async function replay (tab: Tab, inbox: Inbox, after: number, rev: number): Promise<Replayed | undefined> {
  const { socket } = tab
  let seq = after
  for (;;) {
    const page = await inbox.after(socket.userId, seq, CATCH_UP_PAGE)
    for (const stored of page) {
      if (placeOf(stored.seq, seq) !== 'next') return { last: seq, hole: true }
      const frame = notificationFrame(JSON.stringify(stored.notification), encodeCursor(inbox.epoch, stored.seq, rev), stored.seq)
      if (!await send(tab, frame, { seq: stored.seq })) return undefined
      seq = stored.seq
    }
    if (page.length < CATCH_UP_PAGE) return { last: seq, hole: false }
  }
}

/**
 * Sends the user's state changes after `after`, in rev order, until the newest or a hole (the log
 * was pruned past `after`). Resolves undefined when the socket closed on the way.
 */
async function replayState (tab: Tab, inbox: Inbox, after: number): Promise<Replayed | undefined> {
  const { socket } = tab
  let rev = after
  for (;;) {
    const { changes, floor } = await inbox.stateAfter(socket.userId, rev, CATCH_UP_PAGE)
    if (floor > rev) return { last: rev, hole: true }
    for (const change of changes) {
      if (placeOf(change.rev, rev) !== 'next') return { last: rev, hole: true }
      if (!await send(tab, replayedState(inbox.epoch, tab.lastSeq, change), { seq: change.seq, rev: change.rev, state: true })) return undefined
      rev = change.rev
    }
    if (changes.length < CATCH_UP_PAGE) return { last: rev, hole: false }
  }
}

/** A replayed state change's frame; its cursor has the tab's seq, which the notifications' replay brought past the change's. */
function replayedState (epoch: string, seq: number, { rev, changes, unread, unseen }: LoggedChange): string {
  return stateFrame({ rev, seq, changes, unread, unseen, cursor: encodeCursor(epoch, seq, rev) })
}

/** A replay can be far larger than the send bound: past half of it, wait for the wire. */
async function send (tab: Tab, frame: string, position: Parameters<Tab['sendNow']>[1]): Promise<boolean> {
  const { socket } = tab
  return socket.buffered > socket.maxBufferedBytes / 2 ? await tab.sendWritten(frame, position) : tab.sendNow(frame, position)
}
