import { join } from 'node:path'
import { formatCpu, loadAverage, meter, type BenchContext } from '../context.js'
import type { FollowWorkerApi } from '../follow-worker.js'
import { ChildWorker } from '../ipc.js'
import { benchDir } from '../paths.js'
import { round, summarize, type LatencySummary } from '../stats.js'
import { drain, matchFrames, settle } from '../received-frames.js'

/** One rate of POST /api/notifications at one number of recipients per request. */
export interface PublishStep {
  label: string
  recipientsPerCall: number
  /** Offered notifications per second (requests per second × recipients per request). */
  rate: number
  loadAverageBefore: number[]
  requests: { due: number, sent: number, skipped: number, accepted: number, failed: number }
  statuses: Record<string, number>
  errorSample: string[]
  /** Notifications of 202s per second of sending. */
  acceptedPerSecond: number
  /** Gateway CPU time per accepted notification (µs). */
  gatewayCpuPerNotificationUs: number | undefined
  /** Request written → 202 read (ms), once per notification. */
  ack: LatencySummary | undefined
  /** Request written → the notification's frame at its recipient's socket (ms). */
  frame: LatencySummary | undefined
  missing: number
  duplicates: number
  seqGaps: number
  cpu: Record<string, number>
}

export interface PublishResult {
  recipients: number
  steps: PublishStep[]
}

const CALL_MARGIN_MS = 30_000

/**
 * A backend's POST /api/notifications, from a sender process of its own (the follow sender, with
 * a service token), open loop: for each number of recipients per request, a step at the fixed
 * latency rate (publish → frame) and one at the peak rate (what the gateway accepts, and its CPU
 * per notification). Rates count notifications, so every step asks the same work of the inbox
 * and the sockets whatever the batching.
 */
export async function publishPhase (context: BenchContext): Promise<PublishResult> {
  const sender = await startSender(context)
  try {
    const { settings } = context
    const { recipientsPerCall, latencyRate, peakRate, durationMs, warmUp } = settings.publish
    await runStep(context, sender, 'publish warm-up', recipientsPerCall[0]!, warmUp.rate, warmUp.durationMs)
    const steps: PublishStep[] = []
    for (const perCall of recipientsPerCall) {
      for (const rate of [latencyRate, peakRate]) steps.push(await runStep(context, sender, `publish ${perCall} per request at ${rate}/s`, perCall, rate, durationMs))
    }
    return { recipients: context.roles.recipients.length, steps }
  } finally {
    await sender.stop()
  }
}

/** The publish sender process (the follow sender with a service token), stopped by the caller or the cleanup. */
export async function startSender (context: BenchContext): Promise<ChildWorker<FollowWorkerApi>> {
  const { roles, cleanup, stack } = context
  const sender = new ChildWorker<FollowWorkerApi>(join(benchDir, 'follow-worker.ts'), 'publish-sender')
  cleanup.add('publish sender', () => sender.stop())
  await sender.call('init', { tokens: stack.tokens, followers: roles.followers.map((user) => user.id) }, 60_000)
  return sender
}

/**
 * One step: `rate` notifications a second, `perCall` per request, for `durationMs`, with `groupKey`
 * on each when given; `alongside` runs during the step (its CPU is in the step's figures).
 */
export async function runStep (context: BenchContext, sender: ChildWorker<FollowWorkerApi>, label: string, perCall: number, rate: number, durationMs: number, options: { groupKey?: string, alongside?: () => Promise<void> } = {}): Promise<PublishStep> {
  const { progress, roles, settings, stack } = context
  await settle(context)
  const loadAverageBefore = loadAverage()
  progress.status(`${label}: ${durationMs / 1000} s`)
  const cpu = meter(context, [sender.pid])
  const [run] = await Promise.all([sender.call('run', {
    label,
    urls: [stack.url],
    followees: roles.recipients.map((user) => user.id),
    rate: rate / perCall,
    durationMs,
    drainMs: settings.drainMs,
    publish: options.groupKey === undefined ? { recipientsPerCall: perCall } : { recipientsPerCall: perCall, groupKey: options.groupKey }
  }, durationMs + settings.drainMs + CALL_MARGIN_MS), options.alongside?.()])
  const busy = cpu.read()
  const notifications = run.accepted * perCall
  await drain(context, label, notifications, settings.drainMs)
  const frames = await matchFrames(context, run.ids, run.sentAt)
  const sendingS = Math.max(durationMs, run.sendingMs) / 1000
  const step: PublishStep = {
    label,
    recipientsPerCall: perCall,
    rate,
    loadAverageBefore,
    requests: { due: run.due, sent: run.sent, skipped: run.skipped, accepted: run.accepted, failed: run.failed },
    statuses: run.statuses,
    errorSample: run.errorSample,
    acceptedPerSecond: round(notifications / sendingS, 0),
    gatewayCpuPerNotificationUs: cpu.microsPer('gateway', notifications),
    ack: summarize(run.ackMs),
    frame: summarize(frames.latencies),
    missing: frames.missing,
    duplicates: frames.duplicates + frames.seqRepeats,
    seqGaps: frames.seqGaps,
    cpu: busy
  }
  const { ack, frame } = step
  progress.log(`${label}: ${step.acceptedPerSecond} notifications/s accepted (${run.accepted}/${run.due} requests, ${run.failed} failed, ${run.skipped} skipped` +
    `${run.errorSample.length > 0 ? `: ${run.errorSample.join('; ')}` : ''}); gateway CPU ${step.gatewayCpuPerNotificationUs ?? '–'} µs per notification; ` +
    `POST → 202 ${ack === undefined ? 'none' : `p50 ${ack.p50} p99 ${ack.p99} ms`}; POST → frame ${frame === undefined ? 'none' : `p50 ${frame.p50} p99 ${frame.p99} ms`}; ` +
    `${step.missing} missing, ${step.duplicates} doubled, ${step.seqGaps} seq gaps; cpu ${formatCpu(busy)}; load average before ${loadAverageBefore.join(' ')}`)
  return step
}
