import { now, waitUntil } from '../clock.js'
import { formatCpu, meter, type BenchContext } from '../context.js'
import { followNotification, RecordProducer, type BenchNotification } from '../producer.js'
import { round } from '../stats.js'
import { settle } from './drive.js'

export interface DeliveryResult {
  skipped?: string
  records: number
  recipients: number
  /**
   * `backlog`: the gateway was paused (SIGSTOP) while the records were produced and resumed to
   * drain them, so the producer's speed does not cap the figure. `concurrent`: produced while
   * the gateway consumed (its process is not ours to pause).
   */
  mode: 'backlog' | 'concurrent'
  producedWhilePaused: number
  produceSeconds: number
  delivered: number
  missing: number
  duplicates: number
  unexpected: number
  /** First frame to last frame. */
  seconds: number
  perSecond: number
  /** From resuming the gateway to the first frame. */
  firstFrameAfterMs: number
  closes: Record<string, number>
  cpu: Record<string, number>
}

const WARM_UP_RECORDS = 5000
/**
 * How long the gateway may sleep: its Kafka requests time out after 5 s (KAFKA_SEND_TIMEOUT_MS),
 * and a heartbeat tick that comes due while pongs wait unread would drop every socket.
 */
const MAX_PAUSE_MS = 3500
const PAUSE_MARGIN_MS = 1500
const MIN_WAIT_MS = 30_000
const ASSUMED_FLOOR_PER_SECOND = 5000

/** Notifications/s from Kafka to sockets, with records written straight to the topic in batches. */
export async function deliveryPhase (context: BenchContext): Promise<DeliveryResult> {
  const { fleet, progress, roles, settings, stack } = context
  const { records, batchSize, inFlight } = settings.delivery
  const empty = { records, recipients: roles.recipients.length, mode: 'concurrent' as const, producedWhilePaused: 0, produceSeconds: 0, delivered: 0, missing: 0, duplicates: 0, unexpected: 0, seconds: 0, perSecond: 0, firstFrameAfterMs: 0, closes: {}, cpu: {} }
  if (stack.brokers === undefined) return { ...empty, skipped: 'no KAFKA_BROKERS to produce to' }
  const producer = await RecordProducer.connect(stack.brokers, stack.topic)
  try {
    const make = (count: number): BenchNotification[] => Array.from({ length: count }, (_, i) =>
      followNotification(roles.followers[i % roles.followers.length]!, roles.recipients[i % roles.recipients.length]!))

    // The same path ran under the HTTP phases, but not with batches this large.
    await settle(context)
    progress.status(`delivery: warming up with ${WARM_UP_RECORDS} records`)
    await producer.produce(make(WARM_UP_RECORDS), batchSize, inFlight)
    await waitUntil(async () => (await fleet.tally()).notifications >= WARM_UP_RECORDS, MIN_WAIT_MS)
    await fleet.reset()

    const notifications = make(records)
    const pid = stack.gatewayPid
    const mode = pid === undefined ? 'concurrent' : 'backlog'
    const pauseMs = Math.min(MAX_PAUSE_MS, settings.heartbeatMs - PAUSE_MARGIN_MS)
    let producedWhilePaused = 0
    const produceStart = now()
    if (pid !== undefined) {
      progress.status(`delivery: gateway paused, producing ${records} records (at most ${pauseMs} ms)`)
      process.kill(pid, 'SIGSTOP')
      try {
        producedWhilePaused = await producer.produce(notifications, batchSize, inFlight, () => now() - produceStart < pauseMs)
      } finally {
        process.kill(pid, 'SIGCONT')
      }
    }
    const resumedAt = now()
    const cpu = meter(context)
    progress.log(`delivery: ${mode === 'backlog' ? `${producedWhilePaused} records produced while the gateway was paused, ` : ''}producing the rest`)
    const rest = producer.produce(notifications.slice(producedWhilePaused), batchSize, inFlight)
    const produced = await rest + producedWhilePaused
    const produceSeconds = round((now() - produceStart) / 1000, 2)
    const waitMs = Math.max(MIN_WAIT_MS, records / ASSUMED_FLOOR_PER_SECOND * 1000)
    await waitUntil(async () => {
      const tally = await fleet.tally()
      progress.status(`delivery: ${tally.notifications}/${produced} frames`)
      return tally.notifications + tally.duplicates >= produced
    }, waitMs, 50)
    const busy = cpu.read()
    const received = await fleet.collect()

    const ids = new Set(notifications.map((notification) => notification.id))
    let delivered = 0
    let firstAt = Infinity
    let lastAt = -Infinity
    for (let i = 0; i < received.ids.length; i++) {
      if (!ids.has(received.ids[i]!)) continue
      delivered++
      firstAt = Math.min(firstAt, received.at[i]!)
      lastAt = Math.max(lastAt, received.at[i]!)
    }
    const seconds = (lastAt - firstAt) / 1000
    const result: DeliveryResult = {
      records,
      recipients: roles.recipients.length,
      mode,
      producedWhilePaused,
      produceSeconds,
      delivered,
      missing: records - delivered,
      duplicates: received.tally.duplicates,
      unexpected: received.ids.length - delivered,
      seconds: delivered < 2 ? 0 : round(seconds, 3),
      perSecond: delivered < 2 ? 0 : Math.round(delivered / seconds),
      firstFrameAfterMs: delivered === 0 ? Number.NaN : round(firstAt - resumedAt, 1),
      closes: received.tally.closes,
      cpu: busy
    }
    progress.log(`delivery: ${delivered}/${records} frames in ${result.seconds} s = ${result.perSecond}/s` +
      `${result.missing > 0 ? `, ${result.missing} missing` : ''}${result.duplicates > 0 ? `, ${result.duplicates} duplicates` : ''}` +
      `${Object.keys(result.closes).length > 0 ? `, sockets closed ${JSON.stringify(result.closes)}` : ''}; cpu ${formatCpu(busy)}`)
    return result
  } finally {
    await producer.disconnect()
  }
}
