import { formatCpu, loadAverage, meter, type BenchContext } from '../context.js'
import { scrapeLoopDelay, type LoopDelay } from '../gateway-metrics.js'
import { summarize, type LatencySummary } from '../stats.js'
import { settle } from '../received-frames.js'

export interface SequentialResult {
  warmUp: number
  count: number
  loadAverageBefore: number[]
  /** POST written → notification frame read, over the measured follows (ms). */
  frame: LatencySummary | undefined
  /** POST written → 202 read (ms). */
  ack: LatencySummary | undefined
  failed: number
  /** Frames that named another notification than the 202 did. */
  mismatched: number
  errorSample: string[]
  cpu: Record<string, number>
  /** Gateway CPU over the warm-up and measured follows, per follow. */
  gatewayCpuPerFollowUs: number | undefined
  loopDelay: LoopDelay | undefined
}

const FOLLOW_TIMEOUT_MS = 5000
/** A few ms a follow when all is well; the run stops here whatever it reached. */
const BUDGET_MS = 60_000
const CALL_MARGIN_MS = FOLLOW_TIMEOUT_MS + 10_000

/**
 * Follows sent one at a time, each waiting for its 202 and its frame before the next leaves: the
 * unloaded POST → frame latency. The warm-up follows run the same path first, so the measured
 * ones time the gateway's compiled code, not V8's compiler.
 */
export async function sequentialPhase (context: BenchContext): Promise<SequentialResult> {
  const { http, progress, roles, settings } = context
  const { warmUp, count } = settings.sequential
  await settle(context)
  const loadAverageBefore = loadAverage()
  await scrapeLoopDelay(context.stack.url)
  progress.status(`sequential: ${warmUp} warm-up follows, then ${count} measured`)
  const cpu = meter(context)
  const run = await http.call('sequential', {
    follower: roles.followers[0]!.id,
    recipient: roles.sequentialRecipient.id,
    warmUp,
    count,
    timeoutMs: FOLLOW_TIMEOUT_MS,
    budgetMs: BUDGET_MS
  }, BUDGET_MS + CALL_MARGIN_MS)
  const busy = cpu.read()
  const loopDelay = await scrapeLoopDelay(context.stack.url)
  const result: SequentialResult = {
    warmUp,
    count,
    loadAverageBefore,
    frame: summarize(run.postToFrameMs),
    ack: summarize(run.postToAckMs),
    failed: run.failed,
    mismatched: run.mismatched,
    errorSample: run.errorSample,
    cpu: busy,
    gatewayCpuPerFollowUs: cpu.microsPer('gateway', warmUp + run.postToFrameMs.length),
    loopDelay
  }
  const { frame, ack } = result
  progress.log(`sequential: ${run.postToFrameMs.length}/${count} measured; POST → frame ` +
    `${frame === undefined ? 'none' : `p50 ${frame.p50} p90 ${frame.p90} p99 ${frame.p99} max ${frame.max} ms`}; ` +
    `POST → 202 ${ack === undefined ? 'none' : `p50 ${ack.p50} p99 ${ack.p99} ms`}` +
    `${run.failed + run.mismatched > 0 ? `; ${run.failed} failed, ${run.mismatched} mismatched: ${run.errorSample.join('; ')}` : ''}; ` +
    `cpu ${formatCpu(busy)}; load average before ${loadAverageBefore.join(' ')}`)
  return result
}
