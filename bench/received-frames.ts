import { now, waitUntil } from './clock.js'
import type { BenchContext } from './context.js'
import type { ClientFleet } from './fleet.js'
import type { Tally } from './feed-clients.js'

const QUIET_MS = 1000
const SETTLE_BOUND_MS = 30_000

/**
 * Waits until no frame arrived for a second, then clears what the clients received: an
 * overloaded step leaves work the gateway still does after the load stopped, and its frames and
 * CPU would otherwise land in the next step.
 */
export async function settle (context: BenchContext, fleets: readonly ClientFleet[] = [context.fleet]): Promise<void> {
  const { progress } = context
  const reset = async (): Promise<void> => { await Promise.all(fleets.map((fleet) => fleet.reset())) }
  await reset()
  let last = -1
  let quietSince = now()
  await waitUntil(async () => {
    const { notifications } = await tallyOf(fleets)
    if (notifications !== last) {
      last = notifications
      quietSince = now()
    }
    if (notifications > 0) progress.status(`settling: ${notifications} late frames so far`)
    return now() - quietSince >= QUIET_MS
  }, SETTLE_BOUND_MS, 100)
  await reset()
}

/** Waits until the clients hold `expected` notification frames (or `drainMs` passed). */
export async function drain (context: BenchContext, label: string, expected: number, drainMs: number, fleets: readonly ClientFleet[] = [context.fleet]): Promise<void> {
  const started = now()
  await waitUntil(async () => {
    const tally = await tallyOf(fleets)
    context.progress.status(`${label}: waiting for frames, ${tally.notifications}/${expected} (${Math.round((now() - started) / 1000)} s)`)
    return tally.notifications + tally.duplicates >= expected
  }, drainMs, 50)
}

/** How the frames the clients received match what was sent. */
export interface FrameMatch {
  /** Sent → frame (ms) of every sent notification whose frame came, in the order they were sent. */
  latencies: Float64Array
  /** The frame times of the same, in the same order. */
  frameAt: Float64Array
  /** The send times of the same, in the same order. */
  sentAt: Float64Array
  /** Sent and never received (within the drain time). */
  missing: number
  /** Received more than once, by id and by `seq` (a repeat or a step back). */
  duplicates: number
  seqRepeats: number
  /** Received with a `seq` that skipped ahead of the socket's last + 1. */
  seqGaps: number
  /** Received and not sent by this step. */
  unexpected: number
  closes: Tally['closes']
}

/** What a step reports of its frames: the counts of a FrameMatch, without the per-frame times. */
export type FrameCounts = Omit<FrameMatch, 'latencies' | 'frameAt' | 'sentAt'>

export function frameCounts ({ missing, duplicates, seqGaps, seqRepeats, unexpected, closes }: FrameMatch): FrameCounts {
  return { missing, duplicates, seqGaps, seqRepeats, unexpected, closes }
}

/** The frames so far of several fleets (each a different set of tabs), added up. */
async function tallyOf (fleets: readonly ClientFleet[]): Promise<Pick<Tally, 'notifications' | 'duplicates'>> {
  const tallies = await Promise.all(fleets.map((fleet) => fleet.tally()))
  return {
    notifications: tallies.reduce((total, tally) => total + tally.notifications, 0),
    duplicates: tallies.reduce((total, tally) => total + tally.duplicates, 0)
  }
}

/**
 * Collects the clients' frames (and resets them) and matches them by notification id. One fleet
 * holds at most one tab per user: `sentIds` are the notifications its tabs should each receive once.
 */
export async function matchFrames (context: BenchContext, sentIds: string, sentAt: Float64Array, fleet: ClientFleet = context.fleet): Promise<FrameMatch> {
  const received = await fleet.collect()
  const ids = sentIds === '' ? [] : sentIds.split('\n')
  const index = new Map<string, number>()
  for (let i = 0; i < ids.length; i++) index.set(ids[i]!, i)
  const frameAtBySent = new Float64Array(ids.length).fill(Number.NaN)
  let unexpected = 0
  for (let i = 0; i < received.ids.length; i++) {
    const at = index.get(received.ids[i]!)
    if (at === undefined) unexpected++
    else frameAtBySent[at] = received.at[i]!
  }
  let matched = 0
  for (const at of frameAtBySent) if (!Number.isNaN(at)) matched++
  const latencies = new Float64Array(matched)
  const frameAt = new Float64Array(matched)
  const matchedSentAt = new Float64Array(matched)
  let k = 0
  for (let i = 0; i < ids.length; i++) {
    const at = frameAtBySent[i]!
    if (Number.isNaN(at)) continue
    latencies[k] = at - sentAt[i]!
    frameAt[k] = at
    matchedSentAt[k] = sentAt[i]!
    k++
  }
  return {
    latencies,
    frameAt,
    sentAt: matchedSentAt,
    missing: ids.length - matched,
    duplicates: received.tally.duplicates,
    seqRepeats: received.tally.seqRepeats,
    seqGaps: received.tally.seqGaps,
    unexpected,
    closes: received.tally.closes
  }
}
