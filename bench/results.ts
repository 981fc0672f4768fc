import type { LoopDelay } from './gateway-metrics.js'
import type { Machine } from './machine.js'
import type { CatchUpResult } from './phases/catch-up.js'
import type { ConnectionsResult } from './phases/connections.js'
import type { GatewaysResult } from './phases/gateways.js'
import type { IngestLevel, IngestResult } from './phases/ingest.js'
import type { ProduceResult } from './phases/produce.js'
import type { PublishResult } from './phases/publish.js'
import type { SseResult } from './phases/sse.js'
import type { StateResult } from './phases/state.js'
import type { SequentialResult } from './phases/sequential.js'
import type { ProfileSummary } from './profile.js'
import type { Settings } from './settings.js'

export interface TargetVerdict {
  name: string
  goal: string
  measured: string
  /** undefined: not measured in this run; `no target`: measured, judged against nothing (a comparison may be in `goal`). */
  met: boolean | 'no target' | undefined
  /** Percent of one core per process while it was measured. */
  cpu?: Record<string, number>
  /** The gateway's CPU µs per operation of the figure (a follow, a delivered notification). */
  cpuPerOperationUs?: number
  /** The gateway's event-loop delay while it was measured. */
  loopDelay?: LoopDelay
  /** Load average (1, 5, 15 min) just before it was measured. */
  loadAverageBefore?: number[]
}

/** Everything latest.json holds. */
export interface BenchResults {
  schema: 2
  startedAt: string
  finishedAt: string
  durationSeconds: number
  command: string
  machine: Machine
  settings: Settings
  gateway: {
    runtime: string
    url: string
    env: Record<string, string>
    /** Its log lines by level over the run (LOG_LEVEL=warn). */
    logLevels: Record<string, number>
  }
  phases: {
    connections?: ConnectionsResult
    sequential?: SequentialResult
    ingest?: IngestResult
    produce?: ProduceResult
    sse?: SseResult
    publish?: PublishResult
    state?: StateResult
    catchUp?: CatchUpResult
    gateways?: GatewaysResult
  }
  targets: TargetVerdict[]
  errors: string[]
  profile?: ProfileSummary
}

const KIB = 1024
/**
 * Issue 18's targets: the figures of the Go peers run beside kafka-notify on this machine (the
 * tutorial app for ingest and sequential, Centrifugo for delivery and idle sockets).
 * Closed-loop POST /api/follows: accepted/s and gateway CPU per accepted follow at each number of connections.
 */
export const INGEST_TARGETS: ReadonlyArray<{ connections: number, perSecond: number, cpuPerFollowUs: number }> = [
  { connections: 10, perSecond: 7300, cpuPerFollowUs: 97 },
  { connections: 50, perSecond: 18_600, cpuPerFollowUs: 54 },
  { connections: 100, perSecond: 22_800, cpuPerFollowUs: 47 }
]
export const INGEST_P99_MS = 20
export const SEQUENTIAL_TARGET = { p50Ms: 1.1, p99Ms: 5 }
/** Produce → frame p99 wanted at each rate (records/s), and the gateway's CPU per delivered notification where there is a bound. */
export const PRODUCE_TARGETS: ReadonlyArray<{ rate: number, p99Ms: number, cpuPerDeliveredUs?: number }> = [
  { rate: 1000, p99Ms: 3.6 },
  { rate: 5000, p99Ms: 5.6, cpuPerDeliveredUs: 46 },
  { rate: 10_000, p99Ms: 9, cpuPerDeliveredUs: 32 }
]
export const PRODUCE_SUSTAINED_TARGET = 20_000
export const CONNECTION_TARGETS = [10_000, 19_000]
export const CONNECTION_BYTES_TARGET = 10 * KIB

/** A series of produce → frame p99 per rate measured outside this run, for the plot. */
export interface PeerSeries { label: string, points: ReadonlyArray<{ rate: number, p99Ms: number }> }
/**
 * Measured side by side on this machine on 2026-12-06 (issue 18's table): Centrifugo v6.9.1's
 * Kafka consumer pushing to 2,000 users (history off), and kafka-notify at the issue's start.
 */
export const PEER_SERIES: readonly PeerSeries[] = [
  { label: 'Centrifugo (Go), measured 2026-12-06', points: [{ rate: 1000, p99Ms: 3.6 }, { rate: 5000, p99Ms: 5.6 }, { rate: 10_000, p99Ms: 9 }, { rate: 25_000, p99Ms: 34 }] },
  { label: 'kafka-notify at issue 18\'s start, measured 2026-12-06', points: [{ rate: 1000, p99Ms: 9.9 }, { rate: 5000, p99Ms: 14.8 }, { rate: 7500, p99Ms: 40 }, { rate: 10_000, p99Ms: 54 }] }
]

type Measured = Omit<TargetVerdict, 'name' | 'goal'>
const notMeasured = (why = ''): Measured => ({ measured: `not measured${why === '' ? '' : ` (${why})`}`, met: undefined })

/** Counts of one run's frames against what it expected: met when none is missing, doubled or out of seq. */
interface DeliveryCounts { expected: number, missing: number, duplicates: number, seqRepeats: number, seqGaps: number }

function deliveredOnce (runs: DeliveryCounts[], what: string): Measured {
  const sum = (count: (run: DeliveryCounts) => number): number => runs.reduce((total, run) => total + count(run), 0)
  const missing = sum((run) => run.missing)
  const doubled = sum((run) => run.duplicates + run.seqRepeats)
  const gaps = sum((run) => run.seqGaps)
  return {
    measured: `${fmt(sum((run) => run.expected), 0)} ${what}: ${missing} missing, ${doubled} doubled, ${gaps} seq gaps`,
    met: missing === 0 && doubled === 0 && gaps === 0
  }
}

/** The performance issue's targets, judged on this run. */
export function judgeTargets (phases: BenchResults['phases']): TargetVerdict[] {
  const targets: TargetVerdict[] = []
  const { ingest, sequential, produce, sse, connections } = phases

  for (const { connections: count, perSecond, cpuPerFollowUs } of INGEST_TARGETS) {
    const level = ingest?.levels.find((candidate) => candidate.connections === count)
    const figure = level === undefined ? {} : figureOf(level, level.gatewayCpuPerFollowUs)
    targets.push({
      name: `ingest, closed loop, ${count} connections`,
      goal: `≥ ${fmt(perSecond, 0)}/s, POST → 202 p99 < ${INGEST_P99_MS} ms`,
      ...(level === undefined
        ? notMeasured()
        : {
            measured: `${fmt(level.acceptedPerSecond, 0)}/s, p99 ${fmt(level.ack?.p99 ?? Number.NaN)} ms${notAccepted(level)}`,
            met: level.acceptedPerSecond >= perSecond && (level.ack?.p99 ?? Infinity) < INGEST_P99_MS && level.requests === level.accepted && level.errors === 0,
            ...figure
          })
    })
    targets.push({
      name: `gateway CPU per accepted follow, ${count} connections`,
      goal: `≤ ${cpuPerFollowUs} µs`,
      ...(level?.gatewayCpuPerFollowUs === undefined
        ? notMeasured()
        : { measured: `${fmt(level.gatewayCpuPerFollowUs, 1)} µs`, met: level.gatewayCpuPerFollowUs <= cpuPerFollowUs, ...figure })
    })
  }
  const levels = ingest?.levels ?? []
  targets.push({
    name: 'ingest: every 202 delivered once (frames at the followees\' sockets)',
    goal: '0 missing, 0 doubled',
    ...(levels.length === 0 ? notMeasured() : deliveredOnce(levels.map((level) => ({ ...level, expected: level.accepted })), 'accepted'))
  })

  const frame = sequential?.frame
  targets.push({
    name: `sequential follow → frame (${sequential?.count ?? 300} after ${sequential?.warmUp ?? 500} warm-up)`,
    goal: `p50 ≤ ${SEQUENTIAL_TARGET.p50Ms} ms, p99 ≤ ${SEQUENTIAL_TARGET.p99Ms} ms`,
    ...(sequential === undefined || frame === undefined
      ? notMeasured(sequential === undefined ? '' : sequential.errorSample.join('; '))
      : {
          measured: `p50 ${fmt(frame.p50)} ms, p99 ${fmt(frame.p99)} ms${sequential.failed + sequential.mismatched > 0 ? ` (${sequential.failed} failed, ${sequential.mismatched} mismatched)` : ''}`,
          met: frame.p50 <= SEQUENTIAL_TARGET.p50Ms && frame.p99 <= SEQUENTIAL_TARGET.p99Ms && frame.count === sequential.count && sequential.mismatched === 0,
          ...figureOf(sequential, sequential.gatewayCpuPerFollowUs)
        })
  })

  const skipped = produce?.skipped
  for (const { rate, p99Ms, cpuPerDeliveredUs } of PRODUCE_TARGETS) {
    const step = produce?.steps.find((candidate) => candidate.rate === rate)
    const figure = step === undefined ? {} : figureOf(step, step.gatewayCpuPerDeliveredUs)
    targets.push({
      name: `produce → frame at ${fmt(rate, 0)} records/s, ${fmt(produce?.recipients ?? 2000, 0)} users`,
      goal: `p99 ≤ ${p99Ms} ms`,
      ...(step === undefined || step.frame === undefined
        ? notMeasured(skipped)
        : {
            measured: `p50 ${fmt(step.frame.p50)} ms, p99 ${fmt(step.frame.p99)} ms${step.missing > 0 ? ` (${step.missing} missing)` : ''}`,
            met: step.frame.p99 <= p99Ms && step.missing === 0,
            ...figure
          })
    })
    if (cpuPerDeliveredUs === undefined) continue
    targets.push({
      name: `gateway CPU per delivered notification at ${fmt(rate, 0)} records/s`,
      goal: `≤ ${cpuPerDeliveredUs} µs`,
      ...(step?.gatewayCpuPerDeliveredUs === undefined
        ? notMeasured(skipped)
        : { measured: `${fmt(step.gatewayCpuPerDeliveredUs, 1)} µs`, met: step.gatewayCpuPerDeliveredUs <= cpuPerDeliveredUs, ...figure })
    })
  }
  const top = produce?.steps.filter((step) => step.sustained).at(-1)
  const last = produce?.steps.at(-1)
  targets.push({
    name: 'highest sustained produce rate (p99 < 30 ms, backlog not growing)',
    goal: `≥ ${fmt(PRODUCE_SUSTAINED_TARGET, 0)} records/s`,
    ...(produce === undefined || skipped !== undefined
      ? notMeasured(skipped)
      : {
          measured: `${top === undefined ? 'none' : `${fmt(top.rate, 0)}/s`}${last !== undefined && !last.sustained ? `; ${fmt(last.rate, 0)}/s: ${last.verdict}` : ' (highest step tried)'}` +
            `${produce.producerLimited ? '; the producer fell behind its schedule' : ''}`,
          met: (produce.maxSustained ?? 0) >= PRODUCE_SUSTAINED_TARGET,
          ...(top === undefined ? {} : figureOf(top, top.gatewayCpuPerDeliveredUs))
        })
  })
  const steps = produce?.steps ?? []
  targets.push({
    name: 'produce: nothing missing, nothing doubled',
    goal: '0 missing, 0 doubled',
    ...(steps.length === 0 ? notMeasured(skipped) : deliveredOnce(steps.map((step) => ({ ...step, expected: step.sent })), 'records'))
  })

  targets.push(...sseFigures(sse, produce))

  for (const count of CONNECTION_TARGETS) {
    const level = connections?.levels.find((candidate) => candidate.target === count)
    targets.push({
      name: `idle RSS per connection at ${fmt(count, 0)} connections`,
      goal: `≤ ${CONNECTION_BYTES_TARGET / KIB} KiB`,
      ...(level === undefined
        ? notMeasured(connections?.skipped)
        : {
            measured: `${fmt(level.bytesPerConnection / KIB, 2)} KiB (${fmt(level.connected, 0)} open)`,
            met: level.connected >= count && level.bytesPerConnection <= CONNECTION_BYTES_TARGET,
            loadAverageBefore: level.loadAverageBefore,
            ...(level.loopDelay === undefined ? {} : { loopDelay: level.loopDelay })
          })
    })
  }
  return targets
}

/**
 * The sse phase's figures: no target of their own, each shown beside the WebSocket figure at the
 * same rate in this run; delivery once is judged as for the produce phase.
 */
function sseFigures (sse: SseResult | undefined, produce: ProduceResult | undefined): TargetVerdict[] {
  const users = fmt(sse?.recipients ?? 2000, 0)
  if (sse === undefined || sse.skipped !== undefined) {
    return [{ name: `SSE: produce → event, ${users} users`, goal: 'no target; beside the WebSocket figure at the same rate', ...notMeasured(sse?.skipped) }]
  }
  const figures: TargetVerdict[] = sse.steps.map((step) => {
    const ws = produce?.steps.find((candidate) => candidate.rate === step.rate)
    return {
      name: `SSE: produce → event at ${fmt(step.rate, 0)} records/s, ${users} users`,
      goal: `no target; WebSocket at ${fmt(step.rate, 0)}/s in this run: ${ws?.frame === undefined ? 'not measured' : `p99 ${fmt(ws.frame.p99)} ms, ${fmt(ws.gatewayCpuPerDeliveredUs ?? Number.NaN, 1)} µs per delivered`}`,
      measured: step.frame === undefined
        ? 'no events'
        : `p50 ${fmt(step.frame.p50)} ms, p99 ${fmt(step.frame.p99)} ms, ${fmt(step.gatewayCpuPerDeliveredUs ?? Number.NaN, 1)} µs per delivered${step.missing > 0 ? ` (${step.missing} missing)` : ''}`,
      met: 'no target',
      ...figureOf(step, step.gatewayCpuPerDeliveredUs)
    }
  })
  figures.push({
    name: 'SSE: nothing missing, nothing doubled',
    goal: '0 missing, 0 doubled',
    ...(sse.steps.length === 0 ? notMeasured() : deliveredOnce(sse.steps.map((step) => ({ ...step, expected: step.sent })), 'records'))
  })
  return figures
}

/** What every measured figure carries besides itself: CPU per process and per operation, loop delay, load before. */
function figureOf (measured: { cpu: Record<string, number>, loadAverageBefore: number[], loopDelay: LoopDelay | undefined }, cpuPerOperationUs: number | undefined): Pick<Measured, 'cpu' | 'loadAverageBefore' | 'cpuPerOperationUs' | 'loopDelay'> {
  return {
    cpu: measured.cpu,
    loadAverageBefore: measured.loadAverageBefore,
    ...(cpuPerOperationUs === undefined ? {} : { cpuPerOperationUs }),
    ...(measured.loopDelay === undefined ? {} : { loopDelay: measured.loopDelay })
  }
}

function notAccepted (level: IngestLevel): string {
  const other = level.requests - level.accepted
  return other + level.errors === 0 ? '' : ` (${other} not 202: ${JSON.stringify(level.statuses)}; ${level.errors} errors)`
}

export function fmt (value: number, decimals = 2): string {
  if (!Number.isFinite(value)) return String(value)
  return value.toLocaleString('en-US', { maximumFractionDigits: decimals })
}
