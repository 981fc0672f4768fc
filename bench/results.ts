import type { Machine } from './machine.js'
import type { CatchUpResult } from './phases/catch-up.js'
import type { ConnectionsResult } from './phases/connections.js'
import type { DeliveryResult } from './phases/delivery.js'
import type { IngestResult } from './phases/ingest.js'
import type { LatencyResult } from './phases/latency.js'
import type { ProfileSummary } from './profile.js'
import type { Settings } from './settings.js'

export interface TargetVerdict {
  name: string
  goal: string
  measured: string
  /** undefined: not measured in this run. */
  met: boolean | undefined
}

/** Everything latest.json holds. */
export interface BenchResults {
  schema: 1
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
    latency?: LatencyResult
    ingest?: IngestResult
    delivery?: DeliveryResult
    catchUp?: CatchUpResult
  }
  targets: TargetVerdict[]
  errors: string[]
  profile?: ProfileSummary
}

const KIB = 1024

/** The targets of issue 4, judged on this run. */
export function judgeTargets (phases: BenchResults['phases']): TargetVerdict[] {
  const at1000 = phases.latency?.steps.find((step) => step.rate === 1000)
  const frame = at1000?.frame
  const ingest = phases.ingest
  const delivery = phases.delivery
  const connections = phases.connections?.levels ?? []
  const at19k = connections.find((level) => level.target === 19_000)
  const largest = connections.at(-1)
  const lastIngest = ingest?.steps.at(-1)
  return [
    {
      name: 'follow → frame at 1,000 follows/s',
      goal: 'p50 ≤ 3 ms, p99 ≤ 15 ms',
      measured: frame === undefined ? 'not measured' : `p50 ${fmt(frame.p50)} ms, p99 ${fmt(frame.p99)} ms${at1000!.missing > 0 ? ` (${at1000!.missing} frames missing)` : ''}`,
      met: frame === undefined ? undefined : frame.p50 <= 3 && frame.p99 <= 15 && at1000!.missing === 0
    },
    {
      name: 'accepted follows/s, one gateway',
      goal: '≥ 15,000/s (POST → 202 p99 < 100 ms)',
      measured: ingest === undefined
        ? 'not measured'
        : ingest.maxSustained === undefined
          ? `none sustained (${lastIngest?.verdict ?? ''})`
          : `${fmt(ingest.maxSustained, 0)}/s${lastIngest?.sustained === true ? ' (highest step tried)' : ''}`,
      met: ingest === undefined ? undefined : (ingest.maxSustained ?? 0) >= 15_000
    },
    {
      name: 'notifications/s delivered, Kafka → sockets',
      goal: '≥ 50,000/s',
      measured: delivery === undefined || delivery.skipped !== undefined
        ? `not measured${delivery?.skipped === undefined ? '' : ` (${delivery.skipped})`}`
        : `${fmt(delivery.perSecond, 0)}/s${delivery.missing > 0 ? ` (${delivery.missing} missing)` : ''}`,
      met: delivery === undefined || delivery.skipped !== undefined ? undefined : delivery.perSecond >= 50_000 && delivery.missing === 0
    },
    {
      name: 'idle connections, one gateway process',
      goal: '19,000 at ≤ 10 KiB RSS each',
      measured: largest === undefined
        ? 'not measured'
        : `${fmt(largest.connected, 0)} at ${fmt(largest.bytesPerConnection / KIB, 2)} KiB each${at19k === undefined ? ' (19,000 not tried in this run)' : ''}`,
      met: at19k === undefined ? undefined : at19k.connected >= 19_000 && at19k.bytesPerConnection <= 10 * KIB
    }
  ]
}

export function fmt (value: number, decimals = 2): string {
  if (!Number.isFinite(value)) return String(value)
  return value.toLocaleString('en-US', { maximumFractionDigits: decimals })
}
