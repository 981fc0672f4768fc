import type { BenchContext } from '../context.js'
import { driveFollows, type Step } from './drive.js'

export interface IngestStep extends Step {
  /** Every follow accepted, at ≥ 95% of the offered rate, with POST → 202 p99 under the bound. */
  sustained: boolean
  /** …and the frames kept up too: all arrived, follow → frame p99 under the bound. */
  endToEnd: boolean
  /** Why the step does not count, if it does not. */
  verdict: string
}

export interface IngestResult {
  p99BoundMs: number
  /** The highest accepted rate of a sustained step (follows/s). */
  maxSustained: number | undefined
  /** The highest accepted rate whose frames also kept up (follows/s). */
  maxEndToEnd: number | undefined
  /** Load generator behind schedule by more than this at p99 means it, not the gateway, was the limit. */
  generatorLimited: boolean
  steps: IngestStep[]
}

const SUSTAINED_SHARE = 0.95
const GENERATOR_LAG_MS = 50

/** Steps the offered rate up until the gateway no longer takes every follow within the bound. */
export async function ingestPhase (context: BenchContext): Promise<IngestResult> {
  const { rates, durationMs, p99BoundMs } = context.settings.ingest
  const steps: IngestStep[] = []
  let generatorLimited = false
  for (const rate of rates) {
    const step = await driveFollows(context, `ingest ${rate}/s`, rate, durationMs)
    const problems: string[] = []
    if (step.accepted < step.sent) problems.push(`${step.sent - step.accepted} follows not accepted`)
    if (step.acceptedPerSecond < rate * SUSTAINED_SHARE) problems.push(`only ${step.acceptedPerSecond}/s accepted`)
    if ((step.ack?.p99 ?? Infinity) >= p99BoundMs) problems.push(`POST → 202 p99 ${step.ack?.p99 ?? '?'} ms`)
    const sustained = problems.length === 0
    if (step.missing > 0) problems.push(`${step.missing} frames missing`)
    if ((step.frame?.p99 ?? Infinity) >= p99BoundMs) problems.push(`follow → frame p99 ${step.frame?.p99 ?? '?'} ms`)
    const lagging = (step.scheduleLag?.p99 ?? 0) > GENERATOR_LAG_MS
    if (lagging) problems.push(`the load generator ran ${step.scheduleLag?.p99} ms behind schedule (p99)`)
    steps.push({ ...step, sustained, endToEnd: problems.length === 0, verdict: problems.join('; ') || 'ok' })
    context.progress.log(`ingest ${rate}/s: ${sustained ? 'sustained' : 'NOT sustained'}${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`)
    if (!sustained) {
      generatorLimited = lagging
      break
    }
  }
  const best = (pick: (step: IngestStep) => boolean): number | undefined => {
    const rates = steps.filter(pick).map((step) => step.acceptedPerSecond)
    return rates.length === 0 ? undefined : Math.max(...rates)
  }
  return { p99BoundMs, maxSustained: best((step) => step.sustained), maxEndToEnd: best((step) => step.endToEnd), generatorLimited, steps }
}
