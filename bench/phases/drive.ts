import { now, waitUntil } from '../clock.js'
import { formatCpu, meter, type BenchContext } from '../context.js'
import { scrapeLoopDelay, type LoopDelay } from '../gateway-metrics.js'
import type { LoadProgress } from '../load-generator.js'
import { histogram, round, summarize, type Histogram, type LatencySummary } from '../stats.js'

/** One fixed-rate run of follows, and what came of it. */
export interface Step {
  label: string
  rate: number
  durationS: number
  sent: number
  accepted: number
  /** Accepted follows per second of sending. */
  acceptedPerSecond: number
  /** Answers by status (`202`, `503`, `error:ECONNRESET`, `timeout`, `unanswered`). */
  outcomes: Record<string, number>
  errorSample: string[]
  /** POST sent → 202 received (ms). */
  ack: LatencySummary | undefined
  /** POST sent → notification frame received (ms): the end-to-end latency. */
  frame: LatencySummary | undefined
  frameHistogram: Histogram
  /** Accepted follows whose frame never came (within the drain time). */
  missing: number
  duplicates: number
  /** Frames of follows this step did not send (stragglers of an earlier step). */
  unexpected: number
  /** Sockets closed under the step, by close code. */
  closes: Record<string, number>
  /** How late requests left against the schedule (ms): large values mean the load generator fell behind. */
  scheduleLag: LatencySummary | undefined
  /** Percent of one core, per process, while the follows were being sent. */
  cpu: Record<string, number>
  /** The gateway's event-loop delay over the step (its /metrics), when it could be read. */
  loopDelay: LoopDelay | undefined
}

const CALL_MARGIN_MS = 30_000
const QUIET_MS = 1000
const SETTLE_BOUND_MS = 30_000

/**
 * Waits until no frame arrived for a second: an overloaded step leaves follows the gateway
 * still works through after the load generator gave up on them, and their frames and CPU would
 * otherwise land in the next step.
 */
export async function settle (context: BenchContext): Promise<void> {
  const { fleet, progress } = context
  await fleet.reset()
  let last = -1
  let quietSince = now()
  await waitUntil(async () => {
    const { notifications } = await fleet.tally()
    if (notifications !== last) {
      last = notifications
      quietSince = now()
    }
    if (notifications > 0) progress.status(`settling: ${notifications} late frames so far`)
    return now() - quietSince >= QUIET_MS
  }, SETTLE_BOUND_MS, 100)
  await fleet.reset()
}

/** Drives follows at `rate` for `durationMs`, open-loop, to the connected recipients. */
export async function driveFollows (context: BenchContext, label: string, rate: number, durationMs: number): Promise<Step> {
  const { fleet, load, progress, settings } = context
  const recipients = context.roles.recipients.map((user) => user.id)
  await settle(context)
  await scrapeLoopDelay(context.stack.url)
  const cpu = meter(context)
  let frames = 0
  const total = Math.round(rate * durationMs / 1000)
  const stopProgress = load.onEvent((event, data) => {
    if (event !== 'progress') return
    const p = data as LoadProgress
    progress.status(`${label}: ${p.sent}/${total} sent, ${p.accepted} accepted, ${p.failed} failed, ${p.inFlight} in flight, ${frames} frames`)
  })
  const poll = setInterval(() => {
    fleet.tally().then((tally) => { frames = tally.notifications }, () => {})
  }, 500)
  let sent
  let busy: Record<string, number>
  let loopDelay: LoopDelay | undefined
  try {
    sent = await load.call('run', {
      label,
      rate,
      durationMs,
      recipients,
      drainMs: settings.drainMs
    }, durationMs + settings.drainMs + CALL_MARGIN_MS)
    busy = cpu.read()
    loopDelay = await scrapeLoopDelay(context.stack.url)
    const accepted = sent.acceptedSentAt.length
    const drainStart = now()
    await waitUntil(async () => {
      const tally = await fleet.tally()
      frames = tally.notifications
      progress.status(`${label}: waiting for frames, ${frames}/${accepted} (${Math.round((now() - drainStart) / 1000)} s)`)
      return tally.notifications + tally.duplicates >= accepted
    }, settings.drainMs, 50)
  } finally {
    stopProgress()
    clearInterval(poll)
  }
  const received = await fleet.collect()

  const accepted = sent.acceptedSentAt.length
  const sentIds = sent.ids === '' ? [] : sent.ids.split('\n')
  const index = new Map<string, number>()
  for (let i = 0; i < sentIds.length; i++) index.set(sentIds[i]!, i)
  const latencies = new Float64Array(received.ids.length)
  let matched = 0
  let unexpected = 0
  for (let i = 0; i < received.ids.length; i++) {
    const at = index.get(received.ids[i]!)
    if (at === undefined) {
      unexpected++
      continue
    }
    latencies[matched++] = received.at[i]! - sent.acceptedSentAt[at]!
  }
  const frameLatencies = latencies.subarray(0, matched)
  const acks = new Float64Array(accepted)
  for (let i = 0; i < accepted; i++) acks[i] = sent.acceptedAckAt[i]! - sent.acceptedSentAt[i]!

  const step: Step = {
    label,
    rate,
    durationS: durationMs / 1000,
    sent: sent.sent,
    accepted,
    acceptedPerSecond: round(accepted / (Math.max(durationMs, sent.sendingMs) / 1000), 1),
    outcomes: sent.outcomes,
    errorSample: sent.errorSample,
    ack: summarize(acks),
    frame: summarize(frameLatencies),
    frameHistogram: histogram(frameLatencies),
    missing: accepted - matched,
    duplicates: received.tally.duplicates,
    unexpected,
    closes: received.tally.closes,
    scheduleLag: summarize(sent.lag),
    cpu: busy,
    loopDelay
  }
  progress.log(describeStep(step))
  if ((step.outcomes['429'] ?? 0) > 0) progress.log('  429: the gateway rate-limits follows; the bench needs it started with RATE_LIMIT_PER_USER=0 and RATE_LIMIT_PER_IP=0')
  return step
}

export function describeStep (step: Step): string {
  const failed = step.sent - step.accepted
  const frame = step.frame === undefined ? 'no frames' : `frame p50 ${step.frame.p50} p90 ${step.frame.p90} p99 ${step.frame.p99} p99.9 ${step.frame.p999} max ${step.frame.max} ms`
  const ack = step.ack === undefined ? '' : `; 202 p50 ${step.ack.p50} p99 ${step.ack.p99} ms`
  const problems = [
    failed > 0 ? `${failed} not accepted ${JSON.stringify(step.outcomes)}` : '',
    step.missing > 0 ? `${step.missing} frames missing` : '',
    step.duplicates > 0 ? `${step.duplicates} duplicate frames` : '',
    step.unexpected > 0 ? `${step.unexpected} stray frames` : '',
    Object.keys(step.closes).length > 0 ? `sockets closed ${JSON.stringify(step.closes)}` : ''
  ].filter(Boolean).join(', ')
  const loop = step.loopDelay === undefined ? '' : `; gateway event-loop delay p99 ${step.loopDelay.p99Ms} max ${step.loopDelay.maxMs} ms`
  return `${step.label}: ${step.accepted}/${step.sent} accepted (${step.acceptedPerSecond}/s); ${frame}${ack}` +
    `${problems === '' ? '' : `; ${problems}`}; cpu ${formatCpu(step.cpu)}${loop}`
}
