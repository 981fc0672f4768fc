import type { BenchContext } from '../context.js'
import { ClientFleet, SOCKETS_PER_PROCESS } from '../fleet.js'
import { round } from '../stats.js'
import { runStep, SUSTAINED_P99_MS, warmUpOf, withProducer, type ProduceResult, type ProduceStep } from './produce.js'

export interface SseResult {
  skipped?: string
  recipients: number
  p99BoundMs: number
  /** The event streams opened before the steps: how many, and how long opening them all took. */
  streams: { connected: number, elapsedMs: number } | undefined
  warmUp: ProduceResult['warmUp']
  steps: ProduceStep[]
}

/** Client hosts 127.0.0.x of the event-stream fleet: the WebSocket fleet has 10 on, the gateways phase 40 on. */
const FIRST_HOST = 30
const CONNECT_TIMEOUT_MS = 120_000

/**
 * The produce phase over Server-Sent Events: the same users each hold an event stream (GET /sse)
 * instead of a WebSocket, in client processes of their own, and records go straight to Kafka at
 * each rate as in the produce phase, measured the same way (produce → event, delivery once, CPU).
 * The WebSocket fleet's sockets are closed first, so each record makes one event and no frame.
 */
export async function ssePhase (context: BenchContext): Promise<SseResult> {
  const { cleanup, progress, roles, settings, stack } = context
  const base = { recipients: roles.recipients.length, p99BoundMs: SUSTAINED_P99_MS, streams: undefined, warmUp: undefined, steps: [] }
  if (stack.brokers === undefined) return { ...base, skipped: 'no KAFKA_BROKERS to produce to' }

  await context.fleet.disconnect()
  const processes = Math.max(2, Math.ceil(roles.recipients.length / SOCKETS_PER_PROCESS))
  const fleet = await ClientFleet.start(processes, stack.url, stack.tokens, settings.connectConcurrency, FIRST_HOST, 'sse')
  cleanup.add('event-stream clients', () => fleet.stop())
  try {
    const opened = await fleet.connect(roles.recipients.map((user) => user.id), CONNECT_TIMEOUT_MS)
    progress.log(`${opened.connected} event streams open in ${round(opened.elapsedMs / 1000, 1)} s`)
    if (opened.failed > 0) throw new Error(`${opened.failed} event streams could not open: ${opened.errors.join('; ')}`)
    // The produce phase's steps, with this fleet's clients in place of the WebSocket ones.
    const streams = { ...context, fleet }
    return await withProducer(streams, async (producer) => {
      const { warmUp, rates, durationMs } = settings.sse
      const warm = await runStep(streams, producer, 'sse warm-up', warmUp.rate, warmUp.durationMs)
      const steps: ProduceStep[] = []
      for (const rate of rates) steps.push(await runStep(streams, producer, `sse ${rate}/s`, rate, durationMs))
      return { ...base, streams: { connected: opened.connected, elapsedMs: round(opened.elapsedMs, 0) }, warmUp: warmUpOf(warm), steps }
    })
  } finally {
    await fleet.stop()
  }
}
