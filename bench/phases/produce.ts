import { join } from 'node:path'
import { formatCpu, loadAverage, meter, type BenchContext } from '../context.js'
import { appendDelta, describeAppends, scrapeGateway, type AppendSummary, type LoopDelay } from '../gateway-metrics.js'
import { ChildWorker } from '../ipc.js'
import { benchDir } from '../paths.js'
import type { ProduceProgress, ProduceWorkerApi } from '../produce-worker.js'
import { histogram, round, summarize, type Histogram, type LatencySummary } from '../stats.js'
import { drain, frameCounts, matchFrames, settle, type FrameCounts, type FrameMatch } from '../received-frames.js'

/** Records produced at one fixed rate for a while, and how their frames came. */
export interface ProduceStep extends FrameCounts {
  label: string
  rate: number
  durationS: number
  loadAverageBefore: number[]
  sent: number
  acked: number
  failed: number
  errorSample: string[]
  /** Records sent per second of sending: below the rate when the producer fell behind. */
  producedPerSecond: number
  /** Send called in the producer process → notification frame read in a client process (ms). */
  frame: LatencySummary | undefined
  frameHistogram: Histogram
  /**
   * Records sent and not yet received as frames, sampled every 100 ms over the sending, from the
   * send and frame times themselves: `growth` is the least-squares trend over the second half of
   * the step times its length (records), so a consumer that keeps up shows ≈ 0.
   */
  backlog: { meanRecords: number, maxRecords: number, growthRecords: number }
  /** The backlog grew by more than 30 ms' worth of records over the step's second half. */
  lagGrowing: boolean
  /** How late the producer's sends left against their schedule (ms), and how long Kafka took to ack them. */
  scheduleLag: LatencySummary | undefined
  produceAck: LatencySummary | undefined
  sustained: boolean
  /** Why the step does not count as sustained, or `ok`. */
  verdict: string
  cpu: Record<string, number>
  /** Gateway CPU from the first send until every frame arrived, per notification delivered. */
  gatewayCpuPerDeliveredUs: number | undefined
  loopDelay: LoopDelay | undefined
  /** The gateway's inbox transactions over the step (one per handled group of consumed batches). */
  inboxAppend: AppendSummary | undefined
}

export interface ProduceResult {
  skipped?: string
  recipients: number
  p99BoundMs: number
  warmUp: Pick<ProduceStep, 'rate' | 'durationS' | 'sent' | 'missing'> | undefined
  steps: ProduceStep[]
  /** The highest rate of a sustained step (records/s). */
  maxSustained: number | undefined
  /** The producer process fell behind its schedule at the last step: it, not the gateway, was the limit. */
  producerLimited: boolean
}

/** Sustained: frame p99 under this, nothing missing or doubled, the backlog not growing. */
export const SUSTAINED_P99_MS = 30
const SUSTAINED_SHARE = 0.95
const PRODUCER_LAG_MS = 50
const BACKLOG_SAMPLE_MS = 100
const CALL_MARGIN_MS = 30_000

/**
 * Notifications produced straight to Kafka at fixed rates to the connected users, by a producer
 * process of its own: the latency rates always, then higher rates until one is not sustained.
 */
export async function producePhase (context: BenchContext): Promise<ProduceResult> {
  const { roles, settings, stack } = context
  const base = { recipients: roles.recipients.length, p99BoundMs: SUSTAINED_P99_MS, warmUp: undefined, steps: [], maxSustained: undefined, producerLimited: false }
  if (stack.brokers === undefined) return { ...base, skipped: 'no KAFKA_BROKERS to produce to' }
  return await withProducer(context, async (producer) => {
    const { warmUp, latencyRates, rates, durationMs } = settings.produce
    const warm = await runStep(context, producer, 'produce warm-up', warmUp.rate, warmUp.durationMs)
    const steps: ProduceStep[] = []
    for (const rate of latencyRates) steps.push(await runStep(context, producer, `produce ${rate}/s`, rate, durationMs))
    for (const rate of rates) {
      const step = await runStep(context, producer, `produce ${rate}/s`, rate, durationMs)
      steps.push(step)
      if (!step.sustained) break
    }
    const sustained = steps.filter((step) => step.sustained).map((step) => step.rate)
    const last = steps.at(-1)
    return {
      ...base,
      warmUp: warmUpOf(warm),
      steps,
      maxSustained: sustained.length === 0 ? undefined : Math.max(...sustained),
      producerLimited: last !== undefined && !last.sustained && (last.scheduleLag?.p99 ?? 0) > PRODUCER_LAG_MS
    }
  })
}

/** The record producer process, with its progress shown, for the length of `use`. */
export async function withProducer<T> (context: BenchContext, use: (producer: ChildWorker<ProduceWorkerApi>) => Promise<T>): Promise<T> {
  const { progress, stack } = context
  const producer = new ChildWorker<ProduceWorkerApi>(join(benchDir, 'produce-worker.ts'), 'record-producer')
  const stopProgress = producer.onEvent((event, data) => {
    if (event !== 'progress') return
    const p = data as ProduceProgress
    progress.status(`${p.label}: ${p.sent} sent, ${p.acked} acked, ${p.inFlight} sends in flight`)
  })
  try {
    await producer.call('init', { brokers: stack.brokers!, topic: stack.topic }, 60_000)
    return await use(producer)
  } finally {
    stopProgress()
    await producer.stop()
  }
}

export function warmUpOf (step: ProduceStep): ProduceResult['warmUp'] {
  return { rate: step.rate, durationS: step.durationS, sent: step.sent, missing: step.missing }
}

/**
 * Records at `rate` for `durationMs` to the recipients, each once, and how their frames came to
 * `context.fleet`'s clients (WebSockets, or event streams in the sse phase).
 */
export async function runStep (context: BenchContext, producer: ChildWorker<ProduceWorkerApi>, label: string, rate: number, durationMs: number): Promise<ProduceStep> {
  const { progress, roles, settings } = context
  await settle(context)
  const loadAverageBefore = loadAverage()
  const before = await scrapeGateway(context.stack.url)
  const cpu = meter(context, [producer.pid])
  const sent = await producer.call('run', {
    label,
    rate,
    durationMs,
    recipients: roles.recipients,
    actors: roles.followers,
    drainMs: settings.drainMs
  }, durationMs + settings.drainMs + CALL_MARGIN_MS)
  const busy = cpu.read()
  const after = await scrapeGateway(context.stack.url)
  const inboxAppend = appendDelta(before.appends, after.appends)
  await drain(context, label, sent.acked, settings.drainMs)
  const frames = await matchFrames(context, sent.ids, sent.sentAt)
  const gatewayCpuPerDeliveredUs = cpu.microsPer('gateway', frames.latencies.length)
  const backlog = backlogOf(sent.sentAt, frames, BACKLOG_SAMPLE_MS)
  const lagGrowing = backlog.growthRecords > rate * SUSTAINED_P99_MS / 1000
  const frame = summarize(frames.latencies)
  const producedPerSecond = round(sent.sent / (Math.max(durationMs, sent.sendingMs) / 1000), 0)
  const total = Math.round(rate * durationMs / 1000)
  const problems = [
    sent.sent < total ? `only ${sent.sent}/${total} records sent` : '',
    sent.failed > 0 ? `${sent.failed} records not acked: ${sent.errorSample.join('; ')}` : '',
    producedPerSecond < rate * SUSTAINED_SHARE ? `only ${producedPerSecond}/s produced` : '',
    frames.missing > 0 ? `${frames.missing} frames missing` : '',
    frames.duplicates + frames.seqRepeats > 0 ? `${frames.duplicates} duplicate ids, ${frames.seqRepeats} repeated seqs` : '',
    frames.seqGaps > 0 ? `${frames.seqGaps} seq gaps` : '',
    (frame?.p99 ?? Infinity) >= SUSTAINED_P99_MS ? `frame p99 ${frame?.p99 ?? '?'} ms` : '',
    lagGrowing ? `backlog grew by ${backlog.growthRecords} records over the second half` : ''
  ].filter(Boolean)
  const step: ProduceStep = {
    label,
    rate,
    durationS: durationMs / 1000,
    loadAverageBefore,
    sent: sent.sent,
    acked: sent.acked,
    failed: sent.failed,
    errorSample: sent.errorSample,
    producedPerSecond,
    frame,
    frameHistogram: histogram(frames.latencies),
    ...frameCounts(frames),
    backlog,
    lagGrowing,
    scheduleLag: summarize(sent.scheduleLagMs),
    produceAck: summarize(sent.ackMs),
    sustained: problems.length === 0,
    verdict: problems.join('; ') || 'ok',
    cpu: busy,
    gatewayCpuPerDeliveredUs,
    loopDelay: after.loopDelay,
    inboxAppend
  }
  progress.log(`${label}: ${step.producedPerSecond}/s produced, ${sent.sent - frames.missing}/${sent.sent} frames; ` +
    `${frame === undefined ? 'no frames' : `produce → frame p50 ${frame.p50} p90 ${frame.p90} p99 ${frame.p99} p99.9 ${frame.p999} max ${frame.max} ms`}; ` +
    `backlog mean ${backlog.meanRecords} growth ${backlog.growthRecords}; ${step.sustained ? 'sustained' : `NOT sustained (${step.verdict})`}; ` +
    `gateway ${gatewayCpuPerDeliveredUs ?? '–'} µs CPU per delivered; ${describeAppends(inboxAppend)}; cpu ${formatCpu(busy)}; load average before ${loadAverageBefore.join(' ')}`)
  return step
}

/** The sent-but-not-received count over the sending, from the times on the shared clock. */
function backlogOf (sentAt: Float64Array, frames: FrameMatch, everyMs: number): ProduceStep['backlog'] {
  if (sentAt.length === 0) return { meanRecords: 0, maxRecords: 0, growthRecords: 0 }
  const arrivals = Float64Array.from(frames.frameAt).sort()
  const start = sentAt[0]!
  const end = sentAt[sentAt.length - 1]!
  const samples: Array<[number, number]> = []
  let sent = 0
  let received = 0
  for (let t = start; t <= end; t += everyMs) {
    while (sent < sentAt.length && sentAt[sent]! <= t) sent++
    while (received < arrivals.length && arrivals[received]! <= t) received++
    samples.push([(t - start) / 1000, sent - received])
  }
  const counts = samples.map(([, count]) => count)
  const secondHalf = samples.slice(Math.floor(samples.length / 2))
  return {
    meanRecords: Math.round(counts.reduce((total, count) => total + count, 0) / counts.length),
    maxRecords: Math.max(...counts),
    growthRecords: Math.round(slope(secondHalf) * (secondHalf.length * everyMs / 1000))
  }
}

/** Least-squares slope of y over x; 0 with fewer than two points. */
function slope (points: ReadonlyArray<[number, number]>): number {
  if (points.length < 2) return 0
  const n = points.length
  let sx = 0
  let sy = 0
  for (const [x, y] of points) {
    sx += x
    sy += y
  }
  const mx = sx / n
  const my = sy / n
  let num = 0
  let den = 0
  for (const [x, y] of points) {
    num += (x - mx) * (y - my)
    den += (x - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}
