import { now, waitUntil } from './clock.js'
import { HttpPool, notificationId } from './http-client.js'
import { serve } from './ipc.js'
import { runOpenLoop } from './schedule.js'
import { mintTokens, type TokenSource } from './tokens.js'

/**
 * POST /api/follows at a fixed rate, open loop, from a process of its own so its CPU is measured
 * apart from the gateways'. Follow i is due at start + i / rate whether or not earlier ones were
 * answered, goes to gateway i mod N, and is timed on the machine's monotonic clock just before
 * its request is written, so the WebSocket client processes' frame times subtract from it.
 * Requests out at once are bounded: a follow due while the bound is reached is skipped and counted.
 * With `publish`, each request is instead a backend's POST /api/notifications to several
 * followees at once, with a service token: `rate` still counts requests, and each notification of
 * a 202 is counted (ids, followee, send time) like a follow.
 */

export interface FollowInit { tokens: TokenSource, followers: string[] }

export interface FollowRun {
  label: string
  /** The gateways the follows go to, in turn. */
  urls: string[]
  /** Follow i goes to followees[i mod length]: users with tabs, so its frame can be matched. */
  followees: string[]
  rate: number
  durationMs: number
  /** How long to wait for the answers once the last follow left. */
  drainMs: number
  /**
   * POST /api/notifications to this many followees per request (request i: followees i·N … i·N + N − 1,
   * wrapping), with `groupKey` when given (each recipient's notifications then join one group).
   */
  publish?: { recipientsPerCall: number, groupKey?: string }
}

export interface FollowResult {
  label: string
  rate: number
  /** Due on the schedule within the step. */
  due: number
  sent: number
  /** Due while MAX_IN_FLIGHT requests were out: never sent. */
  skipped: number
  accepted: number
  /** Answered with another status, or not at all (connection error, timeout, still out after the drain). */
  failed: number
  /** Answers by status; 0 is no answer. */
  statuses: Record<string, number>
  errorSample: string[]
  /** Per accepted notification, in the order sent: its id ('\n'-joined), followee index, send time and 202 time (ms). */
  ids: string
  followeeIndex: Uint32Array
  sentAt: Float64Array
  ackMs: Float64Array
  /** First send to last send (ms). */
  sendingMs: number
  /** The sender's bounds, for the report. */
  maxInFlight: number
  requestTimeoutMs: number
}

/** Enough for 5,000/s at 100 ms a 202; one connection per request out, opened on demand. */
const MAX_IN_FLIGHT = 512
const REQUEST_TIMEOUT_MS = 10_000
/** A step that cannot send its follows within its duration plus this gives up on the rest. */
const GIVE_UP_AFTER_MS = 5000
const ERROR_SAMPLE = 5

let followers: string[] = []
let followerTokens: string[] = []
let tokenSource: TokenSource | undefined
let serviceToken: string | undefined
const pools = new Map<string, HttpPool>()

async function init (args: FollowInit): Promise<{ pid: number }> {
  if (args.followers.length === 0) throw new Error('no followers')
  followers = args.followers
  followerTokens = await mintTokens(args.tokens, args.followers)
  tokenSource = args.tokens
  return { pid: process.pid }
}

/** Keep-alive connections per gateway, kept across steps (a new one costs a handshake in the figure). */
function poolOf (url: string): HttpPool {
  let pool = pools.get(url)
  if (pool === undefined) {
    const { hostname, port } = new URL(url)
    pool = new HttpPool({ host: hostname, port: Number(port || 80), maxConnections: MAX_IN_FLIGHT, timeoutMs: REQUEST_TIMEOUT_MS })
    pools.set(url, pool)
  }
  return pool
}

async function run (args: FollowRun): Promise<FollowResult> {
  if (args.urls.length === 0 || args.followees.length === 0) throw new Error('no gateways or followees')
  const following = new Set(followers)
  // A follower following itself gets a 400, not a frame.
  if (args.followees.some((followee) => following.has(followee))) throw new Error('a followee is also a follower')
  const perCall = args.publish?.recipientsPerCall ?? 1
  const groupKey = args.publish?.groupKey
  if (args.publish !== undefined) serviceToken ??= (await mintTokens(tokenSource!, [PUBLISHER], { service: true }))[0]
  const path = args.publish === undefined ? '/api/follows' : '/api/notifications'
  const targets = args.urls.map((url) => ({ pool: poolOf(url), head: `POST ${path} HTTP/1.1\r\nhost: ${new URL(url).host}\r\ncontent-type: application/json\r\n` }))
  const total = Math.max(1, Math.round(args.rate * args.durationMs / 1000))
  const ids: string[] = []
  const followeeIndex = new Uint32Array(total * perCall)
  const sentAt = new Float64Array(total * perCall)
  const ackMs = new Float64Array(total * perCall)
  const statuses: Record<string, number> = {}
  const errorSample: string[] = []
  let next = 0
  let sent = 0
  let skipped = 0
  let failed = 0
  let inFlight = 0

  const sendDue = (due: number): number => {
    for (; next < due; next++) {
      if (inFlight >= MAX_IN_FLIGHT) {
        skipped++
        continue
      }
      const i = next
      const first = (i * perCall) % args.followees.length
      const followee = (j: number): number => (first + j) % args.followees.length
      const body = args.publish === undefined
        ? `{"followeeId":${JSON.stringify(args.followees[first])}}`
        : JSON.stringify({ recipients: Array.from({ length: perCall }, (_, j) => args.followees[followee(j)]), type: 'bench.publish', message: 'A backend published this.', ...(groupKey === undefined ? {} : { groupKey }) })
      const token = args.publish === undefined ? followerTokens[i % followers.length]! : serviceToken!
      const target = targets[i % targets.length]!
      const request = `${target.head}authorization: Bearer ${token}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      inFlight++
      sent++
      const at = now()
      target.pool.send(request, (status, text, error) => {
        inFlight--
        statuses[status] = (statuses[status] ?? 0) + 1
        const answered = status !== 202 ? undefined : args.publish === undefined ? [notificationId(text)] : publishedIds(text)
        if (answered === undefined || answered.length !== perCall || answered.includes(undefined)) {
          failed++
          if (errorSample.length < ERROR_SAMPLE) errorSample.push(status === 0 ? `no answer: ${error ?? '?'}` : `${status}: ${text.slice(0, 200)}`)
          return
        }
        const ackAt = now()
        for (const [j, id] of answered.entries()) {
          const k = ids.length
          ids.push(id!)
          followeeIndex[k] = followee(j)
          sentAt[k] = at
          ackMs[k] = ackAt - at
        }
      })
    }
    return next
  }

  const { sendingMs } = await runOpenLoop(total, args.rate, args.durationMs + GIVE_UP_AFTER_MS, sendDue)
  await waitUntil(() => inFlight === 0, args.drainMs, 10)
  // Whatever is still out fails now (counted through its callback), so no answer lands in the
  // next step; only then, as aborting closes the pool's idle connections too.
  if (inFlight > 0) for (const { pool } of targets) pool.abortAll('no answer within the drain time')
  return {
    label: args.label,
    rate: args.rate,
    due: next,
    sent,
    skipped,
    accepted: ids.length / perCall,
    failed,
    statuses,
    errorSample,
    ids: ids.join('\n'),
    followeeIndex: followeeIndex.slice(0, ids.length),
    sentAt: sentAt.slice(0, ids.length),
    ackMs: ackMs.slice(0, ids.length),
    sendingMs,
    maxInFlight: MAX_IN_FLIGHT,
    requestTimeoutMs: REQUEST_TIMEOUT_MS
  }
}

/** The service token's subject: one backend publishes every request. */
const PUBLISHER = 'bench-publisher'

/** The ids of a publish's 202, `{ notifications: [{ id, userId }…] }`, in the order of its recipients. */
function publishedIds (body: string): Array<string | undefined> | undefined {
  try {
    return (JSON.parse(body) as { notifications: Array<{ id?: string }> }).notifications.map(({ id }) => id)
  } catch {
    return undefined
  }
}

export type FollowWorkerApi = { init: typeof init, run: typeof run }

serve<FollowWorkerApi>({ init, run }, () => { for (const pool of pools.values()) pool.destroy() })
