import type { Machine } from './machine.js'
import type { CatchUpResult } from './phases/catch-up.js'
import type { ConnectionsResult } from './phases/connections.js'
import type { GatewaysResult } from './phases/gateways.js'
import type { IngestLevel, IngestResult } from './phases/ingest.js'
import type { ProduceResult } from './phases/produce.js'
import type { PublishResult } from './phases/publish.js'
import type { SequentialResult } from './phases/sequential.js'
import type { ProfileSummary } from './profile.js'
import type { Settings } from './settings.js'

export interface TargetVerdict {
  name: string
  goal: string
  measured: string
  /** undefined: not measured in this run. */
  met: boolean | undefined
  /** Percent of one core per process while it was measured. */
  cpu?: Record<string, number>
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
    publish?: PublishResult
    catchUp?: CatchUpResult
    gateways?: GatewaysResult
  }
  targets: TargetVerdict[]
  errors: string[]
  profile?: ProfileSummary
}

const KIB = 1024
/** Closed-loop POST /api/follows: accepted/s wanted at each number of connections. */
export const INGEST_TARGETS: ReadonlyArray<{ connections: number, perSecond: number }> = [
  { connections: 10, perSecond: 10_000 },
  { connections: 50, perSecond: 23_000 },
  { connections: 100, perSecond: 28_000 }
]
export const INGEST_P99_MS = 20
export const SEQUENTIAL_TARGET = { p50Ms: 0.9, p99Ms: 4 }
/** Produce → frame p99 wanted at each rate (records/s). */
export const PRODUCE_TARGETS: ReadonlyArray<{ rate: number, p99Ms: number }> = [
  { rate: 1000, p99Ms: 4 },
  { rate: 5000, p99Ms: 7 },
  { rate: 10_000, p99Ms: 9 }
]
export const PRODUCE_SUSTAINED_TARGET = 30_000
export const CONNECTION_TARGETS = [10_000, 19_000]
export const CONNECTION_BYTES_TARGET = 10 * KIB

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
  const { ingest, sequential, produce, connections } = phases

  for (const { connections: count, perSecond } of INGEST_TARGETS) {
    const level = ingest?.levels.find((candidate) => candidate.connections === count)
    targets.push({
      name: `ingest, closed loop, ${count} connections`,
      goal: `≥ ${fmt(perSecond, 0)}/s, POST → 202 p99 < ${INGEST_P99_MS} ms`,
      ...(level === undefined
        ? notMeasured()
        : {
            measured: `${fmt(level.acceptedPerSecond, 0)}/s, p99 ${fmt(level.ack?.p99 ?? Number.NaN)} ms${notAccepted(level)}`,
            met: level.acceptedPerSecond >= perSecond && (level.ack?.p99 ?? Infinity) < INGEST_P99_MS && level.requests === level.accepted && level.errors === 0,
            cpu: level.cpu,
            loadAverageBefore: level.loadAverageBefore
          })
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
          cpu: sequential.cpu,
          loadAverageBefore: sequential.loadAverageBefore
        })
  })

  const skipped = produce?.skipped
  for (const { rate, p99Ms } of PRODUCE_TARGETS) {
    const step = produce?.steps.find((candidate) => candidate.rate === rate)
    targets.push({
      name: `produce → frame at ${fmt(rate, 0)} records/s, ${fmt(produce?.recipients ?? 2000, 0)} users`,
      goal: `p99 ≤ ${p99Ms} ms`,
      ...(step === undefined || step.frame === undefined
        ? notMeasured(skipped)
        : {
            measured: `p50 ${fmt(step.frame.p50)} ms, p99 ${fmt(step.frame.p99)} ms${step.missing > 0 ? ` (${step.missing} missing)` : ''}`,
            met: step.frame.p99 <= p99Ms && step.missing === 0,
            cpu: step.cpu,
            loadAverageBefore: step.loadAverageBefore
          })
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
          ...(top === undefined ? {} : { cpu: top.cpu, loadAverageBefore: top.loadAverageBefore })
        })
  })
  const steps = produce?.steps ?? []
  targets.push({
    name: 'produce: nothing missing, nothing doubled',
    goal: '0 missing, 0 doubled',
    ...(steps.length === 0 ? notMeasured(skipped) : deliveredOnce(steps.map((step) => ({ ...step, expected: step.sent })), 'records'))
  })

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
            loadAverageBefore: level.loadAverageBefore
          })
    })
  }
  return targets
}

function notAccepted (level: IngestLevel): string {
  const other = level.requests - level.accepted
  return other + level.errors === 0 ? '' : ` (${other} not 202: ${JSON.stringify(level.statuses)}; ${level.errors} errors)`
}

export function fmt (value: number, decimals = 2): string {
  if (!Number.isFinite(value)) return String(value)
  return value.toLocaleString('en-US', { maximumFractionDigits: decimals })
}
