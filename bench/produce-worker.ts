import type { Message } from 'kafkajs'
import { now, waitUntil } from './clock.js'
import { emit, serve } from './ipc.js'
import type { User } from '../server/directory.js'
import { encodeNotification } from '../server/kafka/record.js'
import { followNotification } from '../server/notification.js'
import { recipientAt, RecordProducer } from './producer.js'
import { runOpenLoop } from './schedule.js'

/**
 * The record producer: a process of its own that writes notifications straight to the topic at a
 * fixed rate, open-loop (record i is due at start + i / rate whether or not earlier sends were
 * acknowledged), and takes each record's time just before the send that carries it, on the
 * machine's monotonic clock, so the WebSocket client processes' frame times subtract from it.
 */

export interface ProduceInit { brokers: string[], topic: string }

export interface ProduceRun {
  label: string
  rate: number
  durationMs: number
  recipients: User[]
  actors: User[]
  /** How long to wait for the acks once the last record left. */
  drainMs: number
}

export interface ProduceResult {
  label: string
  rate: number
  sent: number
  acked: number
  failed: number
  errorSample: string[]
  /** Notification ids, '\n'-joined, in the order of `sentAt`. */
  ids: string
  /** When the send carrying each record was called (clock.ts time). */
  sentAt: Float64Array
  /** Per send: how late it left against its first record's schedule, and how long its ack took (ms). */
  scheduleLagMs: Float64Array
  ackMs: Float64Array
  /** First send to last send (ms). */
  sendingMs: number
}

export interface ProduceProgress { label: string, sent: number, acked: number, inFlight: number }

/** Records due together go in one produce request (one kafkajs send), up to this many. */
const MAX_BATCH = 1000
/** Sends awaiting their ack; past this the producer waits, and falls behind its schedule. */
const MAX_IN_FLIGHT = 32
/** A step that cannot send its records within its duration plus this gives up on the rest. */
const GIVE_UP_AFTER_MS = 5000
const PROGRESS_EVERY_MS = 500
const ERROR_SAMPLE = 5

let producer: RecordProducer | undefined

async function init (args: ProduceInit): Promise<{ pid: number }> {
  producer = await RecordProducer.connect(args.brokers, args.topic)
  return { pid: process.pid }
}

async function run (args: ProduceRun): Promise<ProduceResult> {
  const kafka = producer
  if (kafka === undefined) throw new Error('init first')
  if (args.recipients.length === 0 || args.actors.length === 0) throw new Error('no recipients or actors')
  const total = Math.max(1, Math.round(args.rate * args.durationMs / 1000))
  const interval = 1000 / args.rate
  const ids = new Array<string>(total)
  const sentAt = new Float64Array(total)
  const scheduleLag: number[] = []
  const ackMs: number[] = []
  const errorSample: string[] = []
  let next = 0
  let acked = 0
  let failed = 0
  let inFlight = 0

  const sendDue = (due: number, start: number): number => {
    while (next < due && inFlight < MAX_IN_FLIGHT) {
      const count = Math.min(MAX_BATCH, due - next)
      const records: Message[] = new Array(count)
      for (let i = 0; i < count; i++) {
        const index = next + i
        const notification = followNotification(args.actors[index % args.actors.length]!, recipientAt(args.recipients, index))
        ids[index] = notification.id
        records[i] = encodeNotification(notification)
      }
      const at = now()
      sentAt.fill(at, next, next + count)
      scheduleLag.push(at - (start + next * interval))
      next += count
      inFlight++
      kafka.send(records).then(() => {
        acked += count
        ackMs.push(now() - at)
      }, (error: unknown) => {
        failed += count
        if (errorSample.length < ERROR_SAMPLE) errorSample.push((error as Error).message)
      }).finally(() => { inFlight-- })
    }
    return next
  }

  const progress = setInterval(() => {
    emit('progress', { label: args.label, sent: next, acked, inFlight } satisfies ProduceProgress)
  }, PROGRESS_EVERY_MS)
  try {
    const { sendingMs } = await runOpenLoop(total, args.rate, args.durationMs + GIVE_UP_AFTER_MS, sendDue)
    await waitUntil(() => inFlight === 0, args.drainMs, 10)
    return {
      label: args.label,
      rate: args.rate,
      sent: next,
      acked,
      failed,
      errorSample,
      ids: ids.slice(0, next).join('\n'),
      sentAt: sentAt.slice(0, next),
      scheduleLagMs: Float64Array.from(scheduleLag),
      ackMs: Float64Array.from(ackMs),
      sendingMs
    }
  } finally {
    clearInterval(progress)
  }
}

export type ProduceWorkerApi = { init: typeof init, run: typeof run }

serve<ProduceWorkerApi>({ init, run }, async () => { await producer?.disconnect() })
