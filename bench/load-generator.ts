import { now, waitUntil } from './clock.js'
import { HttpPool } from './http-client.js'
import { emit, serve } from './ipc.js'
import { mintTokens, type TokenSource } from './tokens.js'

/**
 * The load generator: a process of its own that sends POST /api/follows on a fixed schedule,
 * open-loop — request i leaves at start + i / rate whether or not earlier ones were answered, so
 * a stalled gateway shows up as latency instead of silently lowering the offered rate.
 */

export interface LoadInit {
  url: string
  tokens: TokenSource
  /** Users the follows come from (tokens minted once, here). */
  followers: string[]
  /** Keep-alive connections to the gateway: enough that requests wait in the gateway, not here. */
  sockets: number
  requestTimeoutMs: number
}

export interface LoadRun {
  label: string
  rate: number
  durationMs: number
  /** Followees: connected users, so every accepted follow should become a frame. */
  recipients: string[]
  /** How long to wait for answers once the last request left. */
  drainMs: number
}

export interface LoadResult {
  label: string
  rate: number
  durationMs: number
  sent: number
  /** Notification ids of the accepted follows, '\n'-joined, in the order of the arrays below. */
  ids: string
  acceptedSentAt: Float64Array
  acceptedAckAt: Float64Array
  /** Answers by status code; `error:<code>` for requests that failed without one, `timeout`, `unanswered`. */
  outcomes: Record<string, number>
  errorSample: string[]
  /** How late requests left against their schedule (ms): shows whether this process kept up. */
  lag: Float64Array
  sendingMs: number
}

export interface LoadProgress { label: string, sent: number, accepted: number, failed: number, inFlight: number }

const PROGRESS_EVERY_MS = 500
const ERROR_SAMPLE = 5

let pool: HttpPool | undefined
let host = ''
let followers: string[] = []
let followerTokens: string[] = []

async function init (args: LoadInit): Promise<{ pid: number }> {
  const url = new URL(args.url)
  host = url.host
  pool = new HttpPool({ host: url.hostname, port: Number(url.port || 80), maxConnections: args.sockets, timeoutMs: args.requestTimeoutMs })
  followers = args.followers
  followerTokens = (await mintTokens(args.tokens, followers)).map((token) => `Bearer ${token}`)
  return { pid: process.pid }
}

async function run (args: LoadRun): Promise<LoadResult> {
  if (pool === undefined) throw new Error('init first')
  if (args.recipients.length === 0) throw new Error('no recipients')
  const total = Math.max(1, Math.round(args.rate * args.durationMs / 1000))
  const interval = 1000 / args.rate
  const sentAt = new Float64Array(total)
  const ackAt = new Float64Array(total).fill(Number.NaN)
  const lag = new Float64Array(total)
  const ids = new Array<string>(total)
  const outcomes: Record<string, number> = {}
  const errorSample: string[] = []
  let outstanding = 0
  let accepted = 0
  let failed = 0

  const count = (outcome: string, detail?: string): void => {
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
    if (outcome !== '202') {
      failed++
      if (errorSample.length < ERROR_SAMPLE) errorSample.push(detail === undefined ? outcome : `${outcome}: ${detail}`)
    }
  }

  const send = (index: number, scheduled: number): void => {
    const recipient = args.recipients[index % args.recipients.length]!
    let follower = index % followers.length
    if (followers[follower] === recipient) follower = (follower + 1) % followers.length
    const body = JSON.stringify({ followeeId: recipient })
    const request = `POST /api/follows HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\n` +
      `authorization: ${followerTokens[follower]!}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    const at = now()
    sentAt[index] = at
    lag[index] = at - scheduled
    outstanding++
    pool!.send(request, (status, text, error) => {
      outstanding--
      if (status === 202) {
        const id = notificationId(text)
        if (id === undefined) {
          count('202-without-id', text.slice(0, 200))
          return
        }
        ids[index] = id
        ackAt[index] = now()
        accepted++
        count('202')
      } else if (status === 0) {
        count(error === 'timeout' || error === 'unanswered' ? error : `error:${error ?? 'unknown'}`)
      } else {
        count(String(status), text.slice(0, 200))
      }
    })
  }

  let next = 0
  const progress = setInterval(() => {
    emit('progress', { label: args.label, sent: next, accepted, failed, inFlight: outstanding } satisfies LoadProgress)
  }, PROGRESS_EVERY_MS)
  const start = now() + 1
  try {
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const t = now()
        while (next < total && start + next * interval <= t) {
          send(next, start + next * interval)
          next++
        }
        if (next >= total) {
          resolve()
          return
        }
        // Timers fire no earlier than asked and in whole milliseconds; a late tick sends the backlog at once.
        setTimeout(tick, Math.max(0, Math.floor(start + next * interval - now())))
      }
      tick()
    })
    const sendingMs = now() - start
    await waitUntil(() => outstanding === 0, args.drainMs, 20)
    if (outstanding > 0) pool.abortAll('unanswered')

    const acceptedSentAt = new Float64Array(accepted)
    const acceptedAckAt = new Float64Array(accepted)
    const acceptedIds: string[] = []
    for (let i = 0; i < total; i++) {
      if (Number.isNaN(ackAt[i]!)) continue
      acceptedSentAt[acceptedIds.length] = sentAt[i]!
      acceptedAckAt[acceptedIds.length] = ackAt[i]!
      acceptedIds.push(ids[i]!)
    }
    return {
      label: args.label,
      rate: args.rate,
      durationMs: args.durationMs,
      sent: total,
      ids: acceptedIds.join('\n'),
      acceptedSentAt,
      acceptedAckAt,
      outcomes,
      errorSample,
      lag,
      sendingMs
    }
  } finally {
    clearInterval(progress)
  }
}

const ID_PREFIX = '{"notification":{"id":"'

/** The 202 body is `{ notification: { id, … } }`; the id is read without parsing when it comes first. */
function notificationId (body: string): string | undefined {
  if (body.startsWith(ID_PREFIX) && body.charCodeAt(ID_PREFIX.length + 36) === 34) {
    return body.slice(ID_PREFIX.length, ID_PREFIX.length + 36)
  }
  try {
    const id = (JSON.parse(body) as { notification?: { id?: unknown } }).notification?.id
    return typeof id === 'string' ? id : undefined
  } catch {
    return undefined
  }
}

export type LoadGeneratorApi = { init: typeof init, run: typeof run }

serve<LoadGeneratorApi>({ init, run }, () => { pool?.destroy() })
