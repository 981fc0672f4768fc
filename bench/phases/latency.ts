import type { BenchContext } from '../context.js'
import { driveFollows, type Step } from './drive.js'

export interface LatencyResult {
  recipients: number
  warmup: Pick<Step, 'rate' | 'durationS' | 'sent' | 'accepted' | 'missing' | 'frame'>
  steps: Step[]
}

/**
 * Follow → frame latency at fixed rates, after a warm-up: the first thousands of requests
 * measure V8's compiler, not the gateway.
 */
export async function latencyPhase (context: BenchContext): Promise<LatencyResult> {
  const { settings } = context
  const warm = await driveFollows(context, 'warm-up', settings.warmup.rate, settings.warmup.durationMs)
  const steps: Step[] = []
  for (const { rate, durationMs } of settings.latency) {
    steps.push(await driveFollows(context, `latency ${rate}/s`, rate, durationMs))
  }
  return {
    recipients: context.roles.recipients.length,
    warmup: { rate: warm.rate, durationS: warm.durationS, sent: warm.sent, accepted: warm.accepted, missing: warm.missing, frame: warm.frame },
    steps
  }
}
