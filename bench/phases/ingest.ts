import { formatCpu, loadAverage, meter, type BenchContext } from '../context.js'
import { appendDelta, describeAppends, scrapeGateway, type AppendSummary, type LoopDelay } from '../gateway-metrics.js'
import type { ClosedLoopResult } from '../http-load.js'
import { round, summarize, type LatencySummary } from '../stats.js'
import { drain, frameCounts, matchFrames, settle, type FrameCounts } from '../received-frames.js'

/** One closed-loop run of autocannon at a number of connections, and what came of it. */
export interface IngestLevel extends FrameCounts {
  label: string
  connections: number
  durationS: number
  /** Load average (1, 5, 15 min) just before the level started. */
  loadAverageBefore: number[]
  requests: number
  accepted: number
  /** 202s per second of the run. */
  acceptedPerSecond: number
  statuses: Record<string, number>
  errors: number
  timeouts: number
  errorSample: string[]
  /** POST written → 202 read (ms), as autocannon timed it, at microsecond resolution. */
  ack: LatencySummary | undefined
  /** POST written → notification frame at the followee's socket (ms). */
  frame: LatencySummary | undefined
  /**
   * Frames of follows whose 202 this run never read: requests in flight when autocannon stopped
   * (at most one per connection) are accepted by the gateway but cut off here.
   */
  unexpected: number
  /** autocannon's own figures, for comparison: requests/s over one-second samples, latency in whole ms. */
  autocannon: ClosedLoopResult['autocannon']
  /** Percent of one core per process while autocannon ran. */
  cpu: Record<string, number>
  /** Gateway CPU from autocannon's start until every accepted follow's frame arrived, per accepted follow. */
  gatewayCpuPerFollowUs: number | undefined
  loopDelay: LoopDelay | undefined
  /** The gateway's inbox transactions while autocannon ran (one per handled group of consumed batches). */
  inboxAppend: AppendSummary | undefined
}

export interface IngestResult {
  /** How delivery was checked: each 202's notification id was looked for in the frames the followees' sockets received. */
  deliveryCheck: string
  recipients: number
  warmUp: Pick<IngestLevel, 'connections' | 'durationS' | 'accepted' | 'missing'>
  levels: IngestLevel[]
}

const CALL_MARGIN_MS = 30_000

/** POST /api/follows, closed loop, at each number of connections in turn, after a warm-up run. */
export async function ingestPhase (context: BenchContext): Promise<IngestResult> {
  const { settings } = context
  const { warmUp } = settings.ingest
  const warm = await runLevel(context, 'ingest warm-up', warmUp.connections, warmUp.durationS)
  const levels: IngestLevel[] = []
  for (const connections of settings.ingest.connections) {
    levels.push(await runLevel(context, `ingest ${connections} connections`, connections, settings.ingest.durationS))
  }
  return {
    deliveryCheck: 'every 202\'s notification id looked for among the notification frames the followees\' sockets received',
    recipients: context.roles.recipients.length,
    warmUp: { connections: warm.connections, durationS: warm.durationS, accepted: warm.accepted, missing: warm.missing },
    levels
  }
}

async function runLevel (context: BenchContext, label: string, connections: number, durationS: number): Promise<IngestLevel> {
  const { http, progress, settings } = context
  await settle(context)
  const loadAverageBefore = loadAverage()
  const before = await scrapeGateway(context.stack.url)
  progress.status(`${label}: autocannon for ${durationS} s`)
  const cpu = meter(context)
  const result = await http.call('closedLoop', { label, connections, durationS }, durationS * 1000 + CALL_MARGIN_MS)
  const busy = cpu.read()
  const after = await scrapeGateway(context.stack.url)
  const accepted = result.acceptedSentAt.length
  await drain(context, label, accepted, settings.drainMs)
  const gatewayCpuPerFollowUs = cpu.microsPer('gateway', accepted)
  const frames = await matchFrames(context, result.ids, result.acceptedSentAt)
  const level: IngestLevel = {
    label,
    connections,
    durationS: result.durationS,
    loadAverageBefore,
    requests: Object.values(result.statuses).reduce((total, count) => total + count, 0),
    accepted,
    acceptedPerSecond: round(accepted / result.durationS, 0),
    statuses: result.statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    errorSample: result.errorSample,
    ack: summarize(result.acceptedAckMs),
    frame: summarize(frames.latencies),
    ...frameCounts(frames),
    autocannon: result.autocannon,
    cpu: busy,
    gatewayCpuPerFollowUs,
    loopDelay: after.loopDelay,
    inboxAppend: appendDelta(before.appends, after.appends)
  }
  progress.log(describeLevel(level))
  return level
}

function describeLevel (level: IngestLevel): string {
  const notAccepted = level.requests - level.accepted
  const problems = [
    notAccepted > 0 ? `${notAccepted} not accepted ${JSON.stringify(level.statuses)}` : '',
    level.errors > 0 ? `${level.errors} errors (${level.timeouts} timeouts)` : '',
    level.missing > 0 ? `${level.missing} frames missing` : '',
    level.duplicates + level.seqRepeats > 0 ? `${level.duplicates} duplicate ids, ${level.seqRepeats} repeated seqs` : '',
    level.seqGaps > 0 ? `${level.seqGaps} seq gaps` : '',
    Object.keys(level.closes).length > 0 ? `sockets closed ${JSON.stringify(level.closes)}` : ''
  ].filter(Boolean).join(', ')
  const ack = level.ack === undefined ? 'no 202s' : `202 p50 ${level.ack.p50} p99 ${level.ack.p99} max ${level.ack.max} ms`
  const frame = level.frame === undefined ? 'no frames' : `frame p50 ${level.frame.p50} p99 ${level.frame.p99} ms`
  return `${level.label}: ${level.acceptedPerSecond}/s accepted (${level.accepted} in ${level.durationS} s); ${ack}; ${frame}` +
    `${problems === '' ? '' : `; ${problems}`}; gateway ${level.gatewayCpuPerFollowUs ?? '–'} µs CPU per follow; ${describeAppends(level.inboxAppend)}; cpu ${formatCpu(level.cpu)}; load average before ${level.loadAverageBefore.join(' ')}`
}
