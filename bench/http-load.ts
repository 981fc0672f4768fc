import autocannon from 'autocannon'
import type { Frame } from '../server/feed/frames.js'
import type { Notification } from '../server/notification.js'
import { openFeedSocket } from '../test/helpers/clients.js'
import { now, sleep } from './clock.js'
import { HttpPool, notificationId } from './http-client.js'
import { serve } from './ipc.js'
import { mintTokens, type TokenSource } from './tokens.js'

/**
 * The HTTP load, in a process of its own so that neither autocannon nor the sequential client
 * shares an event loop with the orchestrator: autocannon's closed loop (each connection sends its
 * next POST /api/follows as soon as the previous one is answered), and follows sent one at a time.
 */

export interface HttpLoadInit {
  url: string
  tokens: TokenSource
  /** Users the closed-loop follows come from (never connected). */
  followers: string[]
  /** Connected users the closed-loop follows go to, so every accepted follow should become a frame. */
  followees: string[]
}

export interface ClosedLoopRun {
  label: string
  connections: number
  durationS: number
}

export interface ClosedLoopResult {
  label: string
  connections: number
  /** How long autocannon ran (s). */
  durationS: number
  /** Answers by status code, as autocannon counted them. */
  statuses: Record<string, number>
  /** Requests that failed without an answer (connection errors) and that timed out. */
  errors: number
  timeouts: number
  errorSample: string[]
  /** Notification ids of the 202s, '\n'-joined, in the order of the arrays below. */
  ids: string
  /** When each accepted POST was written (clock.ts time), and how long its 202 took (ms). */
  acceptedSentAt: Float64Array
  acceptedAckMs: Float64Array
  /** autocannon's own summary: requests/s per one-second sample, latency in whole ms. */
  autocannon: { requestsPerSecond: { mean: number, p50: number, min: number }, latencyMs: { p50: number, p99: number, max: number } }
}

export interface SequentialRun {
  follower: string
  recipient: string
  warmUp: number
  count: number
  /** Per follow, for its 202 and its frame. */
  timeoutMs: number
  /** The whole run stops after this, however many follows it sent. */
  budgetMs: number
}

export interface SequentialResult {
  /** POST written → notification frame received, and → 202 received (ms), for the measured follows. */
  postToFrameMs: Float64Array
  postToAckMs: Float64Array
  /** Frames whose id was not the one the 202 named, and follows whose 202 or frame did not come in time. */
  mismatched: number
  failed: number
  errorSample: string[]
}

const REQUEST_TIMEOUT_S = 10
const ERROR_SAMPLE = 5
const READY_TIMEOUT_MS = 10_000

let init: HttpLoadInit | undefined
let followerTokens: string[] = []

async function setUp (args: HttpLoadInit): Promise<{ pid: number }> {
  if (args.followers.length === 0 || args.followees.length === 0) throw new Error('no followers or followees')
  init = args
  followerTokens = await mintTokens(args.tokens, args.followers)
  return { pid: process.pid }
}

async function closedLoop (run: ClosedLoopRun): Promise<ClosedLoopResult> {
  if (init === undefined) throw new Error('init first')
  const { followees, followers, url } = init
  const ids: string[] = []
  let sentAt = new Float64Array(1 << 16)
  let ackMs = new Float64Array(1 << 16)
  const errorSample: string[] = []
  let answeredId: string | undefined
  const onResponse = (status: number, body: string): void => {
    if (status === 202) {
      answeredId = notificationId(body)
      if (answeredId === undefined && errorSample.length < ERROR_SAMPLE) errorSample.push(`202 without an id: ${body.slice(0, 200)}`)
    } else if (errorSample.length < ERROR_SAMPLE) {
      errorSample.push(`${status}: ${body.slice(0, 200)}`)
    }
  }
  // Each request names another follower and followee: no per-user limit or hot user shapes the
  // figure. Connection k cycles through its own share of the followees, set when autocannon
  // creates it: fixed requests are serialized once (a setupRequest would rebuild every request),
  // and autocannon deep-copies and builds its default request list for every connection.
  const perConnection = Math.ceil(followees.length / run.connections)
  const requestsOf = (k: number): autocannon.Request[] => Array.from({ length: perConnection }, (_, j) => {
    const i = k + j * run.connections
    const followee = followees[i % followees.length]!
    let follower = i % followers.length
    if (followers[follower] === followee) follower = (follower + 1) % followers.length
    return {
      method: 'POST',
      path: '/api/follows',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${followerTokens[follower]!}` },
      body: JSON.stringify({ followeeId: followee }),
      onResponse
    }
  })
  let created = 0
  let instance: autocannon.Instance | undefined
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({
      url,
      connections: run.connections,
      duration: run.durationS,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      timeout: REQUEST_TIMEOUT_S,
      requests: requestsOf(0),
      setupClient: (client) => { client.setRequests(requestsOf(created++ % run.connections)) }
    }, (error: unknown, result) => { if (error === null || error === undefined) resolve(result); else reject(error) })
  })
  // autocannon calls a request's onResponse and then emits 'response' in the same tick, with the
  // latency it measured from writing the request: together they give each 202's id and send time.
  instance!.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
    if (answeredId === undefined) return
    const at = now()
    const i = ids.length
    if (i === sentAt.length) {
      sentAt = grow(sentAt)
      ackMs = grow(ackMs)
    }
    ids.push(answeredId)
    sentAt[i] = at - responseTime
    ackMs[i] = responseTime
    answeredId = undefined
  })
  const result = await finished
  const statuses: Record<string, number> = {}
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = count ?? 0
  return {
    label: run.label,
    connections: run.connections,
    durationS: result.duration,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    errorSample,
    ids: ids.join('\n'),
    acceptedSentAt: sentAt.slice(0, ids.length),
    acceptedAckMs: ackMs.slice(0, ids.length),
    autocannon: {
      requestsPerSecond: { mean: result.requests.average, p50: result.requests.p50, min: result.requests.min },
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max }
    }
  }
}

/**
 * Follows sent one at a time over one keep-alive connection: each waits for its 202 and its
 * frame, received by a socket of this process, before the next leaves.
 */
async function sequential (run: SequentialRun): Promise<SequentialResult> {
  if (init === undefined) throw new Error('init first')
  const url = new URL(init.url)
  const [followerToken, recipientToken] = await mintTokens(init.tokens, [run.follower, run.recipient])
  let onFrame: ((id: string, at: number) => void) | undefined
  const socket = openFeedSocket(init.url, recipientToken!)
  socket.on('message', (data: Buffer) => {
    const at = now()
    const frame = JSON.parse(data.toString('utf8')) as Frame<Notification>
    if (frame.type === 'notification') onFrame?.(frame.notification.id, at)
  })
  const pool = new HttpPool({ host: url.hostname, port: Number(url.port || 80), maxConnections: 1, timeoutMs: run.timeoutMs })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready frame within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
      socket.once('message', () => { clearTimeout(timer); resolve() })
      socket.once('error', (error) => { clearTimeout(timer); reject(error) })
    })
    const body = JSON.stringify({ followeeId: run.recipient })
    const request = `POST /api/follows HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
      `authorization: Bearer ${followerToken!}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    const postToFrameMs: number[] = []
    const postToAckMs: number[] = []
    const errorSample: string[] = []
    let mismatched = 0
    let failed = 0
    const deadline = now() + run.budgetMs
    for (let i = 0; i < run.warmUp + run.count && now() < deadline; i++) {
      const outcome = await followOnce(pool, request, run.timeoutMs, (listener) => { onFrame = listener })
      if (outcome.error !== undefined) {
        failed++
        if (errorSample.length < ERROR_SAMPLE) errorSample.push(outcome.error)
        // A late frame of this follow must not be taken for the next one's.
        await sleep(100)
        continue
      }
      if (outcome.id !== outcome.frameId) mismatched++
      if (i >= run.warmUp) {
        postToFrameMs.push(outcome.frameAt - outcome.sentAt)
        postToAckMs.push(outcome.ackAt - outcome.sentAt)
      }
    }
    return { postToFrameMs: Float64Array.from(postToFrameMs), postToAckMs: Float64Array.from(postToAckMs), mismatched, failed, errorSample }
  } finally {
    pool.destroy()
    socket.terminate()
  }
}

interface FollowOutcome { sentAt: number, ackAt: number, frameAt: number, id: string | undefined, frameId: string | undefined, error?: string }

/** One POST, resolved once both its 202 and a notification frame came, or on the first failure. */
async function followOnce (pool: HttpPool, request: string, timeoutMs: number, listen: (onFrame: ((id: string, at: number) => void) | undefined) => void): Promise<FollowOutcome> {
  return await new Promise((resolve) => {
    const outcome: FollowOutcome = { sentAt: Number.NaN, ackAt: Number.NaN, frameAt: Number.NaN, id: undefined, frameId: undefined }
    const finish = (error?: string): void => {
      clearTimeout(timer)
      listen(undefined)
      resolve(error === undefined ? outcome : { ...outcome, error })
    }
    const timer = setTimeout(() => finish(`no ${Number.isNaN(outcome.ackAt) ? '202' : 'frame'} within ${timeoutMs} ms`), timeoutMs)
    listen((id, at) => {
      if (!Number.isNaN(outcome.frameAt)) return
      outcome.frameAt = at
      outcome.frameId = id
      if (!Number.isNaN(outcome.ackAt)) finish()
    })
    outcome.sentAt = now()
    pool.send(request, (status, text, error) => {
      if (status !== 202) {
        finish(status === 0 ? `no answer: ${error ?? '?'}` : `${status}: ${text.slice(0, 200)}`)
        return
      }
      outcome.ackAt = now()
      outcome.id = notificationId(text)
      if (!Number.isNaN(outcome.frameAt)) finish()
    })
  })
}

function grow (array: Float64Array): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(array.length * 2)
  bigger.set(array)
  return bigger
}

export type HttpLoadApi = { init: typeof setUp, closedLoop: typeof closedLoop, sequential: typeof sequential }

serve<HttpLoadApi>({ init: setUp, closedLoop, sequential })
