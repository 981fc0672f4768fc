import type { Frame } from '../server/feed/frames.js'
import type { Notification } from '../server/notification.js'
import { now } from './clock.js'
import { dial, type Link, type Transport } from './feed-links.js'
import { serve } from './ipc.js'
import { mintTokens, type TokenSource } from './tokens.js'

/**
 * A process holding feed clients, one per user, over WebSockets or event streams (`transport`),
 * that records when each notification frame arrives. Several run side by side: a process may hold
 * at most 20,000 open files here, and each binds its connections to its own 127.0.0.x so no
 * source address runs out of ephemeral ports.
 */

export interface ClientsInit {
  url: string
  transport: Transport
  tokens: TokenSource
  /** Source address of this process's sockets (any of 127.0.0.0/8). */
  localAddress: string | undefined
  /** Handshakes under way at once: the gateway's listen backlog is finite. */
  concurrency: number
}

export interface ConnectResult { connected: number, failed: number, errors: string[], elapsedMs: number }

/** What arrived since the last reset. */
export interface Tally {
  notifications: number
  duplicates: number
  /**
   * Notification frames whose `seq` was not the socket's last + 1: `seqGaps` skipped ahead (a
   * hole), `seqRepeats` came again or went back. The first is counted from the `ready` frame's seq.
   */
  seqGaps: number
  seqRepeats: number
  /** Connections closed by the other side or by an error, by close code (`ended`: a stream that ended without a `close` event). */
  closes: Record<string, number>
}

export interface Received extends Tally {
  /** Ids of the first arrival of each notification, '\n'-joined, in the order of `at`. */
  ids: string
  at: Float64Array
}

const READY_TIMEOUT_MS = 15_000
const ERROR_SAMPLE = 5
const CLOSE_WAIT_MS = 5000

let settings: ClientsInit | undefined
const links = new Map<string, Link>()

/** Who waits for a link this process is closing to be closed. */
const closeWaiters = new Map<Link, () => void>()

let ids: string[] = []
let times: number[] = []
let seen = new Set<string>()
let duplicates = 0
let seqGaps = 0
let seqRepeats = 0
let closes: Record<string, number> = {}

function reset (): void {
  ids = []
  times = []
  seen = new Set()
  duplicates = 0
  seqGaps = 0
  seqRepeats = 0
  closes = {}
}

const NOTIFICATION_PREFIX = Buffer.from('{"type":"notification","notification":{"id":"')
const ID_LENGTH = 36
const SEQ_KEY = Buffer.from('"seq":')

/** Per socket: the seq of the last notification (or of `ready`), to check that seqs are contiguous. */
interface SocketState { lastSeq: number }

function onFrame (data: Buffer, state: SocketState): void {
  const at = now()
  let id: string | undefined
  let seq: number | undefined
  // The gateway writes the frame's keys in a fixed order; reading the id at its offset and the
  // top-level seq (the last "seq" key: the notification itself has none) keeps JSON.parse off
  // the hot path of a process that may receive 50k frames a second. Other shapes are parsed.
  if (data.length > NOTIFICATION_PREFIX.length + ID_LENGTH &&
    data.compare(NOTIFICATION_PREFIX, 0, NOTIFICATION_PREFIX.length, 0, NOTIFICATION_PREFIX.length) === 0 &&
    data[NOTIFICATION_PREFIX.length + ID_LENGTH] === 0x22) {
    id = data.toString('latin1', NOTIFICATION_PREFIX.length, NOTIFICATION_PREFIX.length + ID_LENGTH)
    seq = readSeq(data)
  }
  if (id === undefined || seq === undefined) {
    const frame = JSON.parse(data.toString('utf8')) as Frame<Notification>
    if (frame.type !== 'notification') return
    id = frame.notification.id
    seq = frame.seq
  }
  if (seq === state.lastSeq + 1) {
    state.lastSeq = seq
  } else if (seq > state.lastSeq) {
    seqGaps++
    state.lastSeq = seq
  } else {
    seqRepeats++
  }
  if (seen.has(id)) {
    duplicates++
    return
  }
  seen.add(id)
  ids.push(id)
  times.push(at)
}

/** The digits after the frame's last `"seq":`, or undefined. */
function readSeq (data: Buffer): number | undefined {
  const key = data.lastIndexOf(SEQ_KEY)
  if (key < 0) return undefined
  let value = 0
  let digits = 0
  for (let i = key + SEQ_KEY.length; i < data.length; i++) {
    const c = data[i]!
    if (c < 0x30 || c > 0x39) break
    value = value * 10 + c - 0x30
    digits++
  }
  return digits === 0 ? undefined : value
}

function tally (): Tally {
  return { notifications: ids.length, duplicates, seqGaps, seqRepeats, closes }
}

async function init (args: ClientsInit): Promise<{ pid: number }> {
  settings = args
  return { pid: process.pid }
}

async function connect ({ users, timeoutMs }: { users: string[], timeoutMs: number }): Promise<ConnectResult> {
  if (settings === undefined) throw new Error('init first')
  const { url, transport, localAddress, concurrency } = settings
  const started = now()
  const deadline = started + timeoutMs
  const tokens = await mintTokens(settings.tokens, users)
  let connected = 0
  let failed = 0
  const errors: string[] = []
  let next = 0
  const open = (user: string, token: string): Promise<void> => new Promise((resolve, reject) => {
    let ready = false
    const state: SocketState = { lastSeq: 0 }
    const link = dial(transport, { url, token, localAddress, handshakeTimeoutMs: READY_TIMEOUT_MS }, {
      frame: (data) => {
        if (ready) {
          onFrame(data, state)
          return
        }
        ready = true
        clearTimeout(timer)
        const seq = (JSON.parse(data.toString('utf8')) as { seq?: unknown }).seq
        state.lastSeq = typeof seq === 'number' ? seq : 0
        links.set(user, link)
        resolve()
      },
      error: (error) => {
        if (ready) return
        clearTimeout(timer)
        reject(error)
      },
      closed: (code) => {
        if (!ready) {
          clearTimeout(timer)
          reject(new Error(`closed before ready (${code})`))
          return
        }
        // A link this process closes is removed from the map first; anything else is a drop.
        if (links.get(user) === link) {
          links.delete(user)
          closes[code] = (closes[code] ?? 0) + 1
        }
        closeWaiters.get(link)?.()
      }
    })
    const timer = setTimeout(() => {
      link.terminate()
      reject(new Error('no ready frame in time'))
    }, READY_TIMEOUT_MS)
  })
  const worker = async (): Promise<void> => {
    while (next < users.length && now() < deadline) {
      const index = next++
      const user = users[index]!
      if (links.has(user)) {
        connected++
        continue
      }
      try {
        await open(user, tokens[index]!)
        connected++
      } catch (error) {
        failed++
        if (errors.length < ERROR_SAMPLE) errors.push(`${user}: ${(error as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, users.length) }, worker))
  failed += users.length - next
  return { connected, failed, errors, elapsedMs: now() - started }
}

async function disconnect ({ users }: { users?: string[] }): Promise<{ closed: number }> {
  const closing: Array<Promise<unknown>> = []
  for (const user of users ?? [...links.keys()]) {
    const link = links.get(user)
    if (link === undefined) continue
    links.delete(user)
    closing.push(new Promise<void>((resolve) => {
      closeWaiters.set(link, () => {
        closeWaiters.delete(link)
        resolve()
      })
      link.terminate()
    }))
  }
  await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS))])
  closeWaiters.clear()
  return { closed: closing.length }
}

function collect (): Received {
  const received: Received = { ...tally(), ids: ids.join('\n'), at: Float64Array.from(times) }
  reset()
  return received
}

export type FeedClientsApi = {
  init: typeof init
  connect: typeof connect
  disconnect: typeof disconnect
  reset: () => void
  tally: () => Tally
  collect: typeof collect
}

serve<FeedClientsApi>({ init, connect, disconnect, reset, tally, collect }, async () => { await disconnect({}) })
