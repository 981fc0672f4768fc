import type { Frame } from '../../server/feed/frames.js'
import { openFeedSocket } from '../../test/helpers/clients.js'
import { now, waitUntil } from '../clock.js'
import type { BenchContext } from '../context.js'
import type { User } from '../../server/directory.js'
import { followNotification, type Notification } from '../../server/notification.js'
import { RecordProducer } from '../producer.js'
import { summarize, round, type LatencySummary } from '../stats.js'
import { mintTokens } from '../tokens.js'

export interface CatchUpRun {
  user: string
  missed: number
  /** Socket open → `synced` (ms). */
  openToSyncedMs: number
  /** Connect call → `synced` (ms): adds the TCP and WebSocket handshakes and the token check. */
  connectToSyncedMs: number
  replayed: number
  missing: number
  duplicates: number
  outOfOrder: number
}

export interface CatchUpResult {
  skipped?: string
  missed: number
  openToSynced: LatencySummary | undefined
  runs: CatchUpRun[]
}

const STORED_TIMEOUT_MS = 30_000
const REPLAY_TIMEOUT_MS = 30_000

/**
 * Replay of missed notifications: a user is offline while `missed` are produced, then connects
 * with the cursor of the last one it saw and reads until `synced`.
 */
export async function catchUpPhase (context: BenchContext): Promise<CatchUpResult> {
  const { progress, roles, settings, stack } = context
  const { missed } = settings.catchUp
  if (stack.brokers === undefined) return { skipped: 'no KAFKA_BROKERS to produce to', missed, openToSynced: undefined, runs: [] }
  const producer = await RecordProducer.connect(stack.brokers, stack.topic)
  const runs: CatchUpRun[] = []
  try {
    for (const user of roles.catchUp) {
      const [token] = await mintTokens(stack.tokens, [user.id])
      const actor = roles.followers[0]!
      const history = historyReader(stack.url, token!)

      // The cursor a client would hold: the last notification it saw before going offline.
      const seen = followNotification(actor, user)
      await producer.produce([seen], 1)
      const cursor = await history.waitForNewest(seen.id)
      const backlog = Array.from({ length: missed }, () => followNotification(actor, user))
      progress.status(`catch-up ${user.id}: producing ${missed} notifications while offline`)
      await producer.produce(backlog, 500)
      await history.waitForNewest(backlog.at(-1)!.id)
      progress.status(`catch-up ${user.id}: connecting with since=${cursor}`)
      const run = await replay(stack.url, token!, cursor, user, backlog)
      runs.push(run)
      progress.log(`catch-up ${user.id}: ${run.replayed} replayed in ${run.openToSyncedMs} ms from open to synced ` +
        `(${run.connectToSyncedMs} ms from connect)${run.missing + run.duplicates + run.outOfOrder > 0 ? `; ${run.missing} missing, ${run.duplicates} duplicates, ${run.outOfOrder} out of order` : ''}`)
    }
  } finally {
    await producer.disconnect()
  }
  return { missed, openToSynced: summarize(runs.map((run) => run.openToSyncedMs)), runs }
}

function historyReader (url: string, token: string): { waitForNewest: (id: string) => Promise<string> } {
  return {
    async waitForNewest (id) {
      let cursor: string | undefined
      const stored = await waitUntil(async () => {
        const response = await fetch(`${url}/api/notifications?limit=1`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
        if (response.status !== 200) throw new Error(`GET /api/notifications answered ${response.status}: ${await response.text()}`)
        const newest = ((await response.json()) as { items: Array<{ id: string, cursor: string }> }).items[0]
        cursor = newest?.id === id ? newest.cursor : undefined
        return cursor !== undefined
      }, STORED_TIMEOUT_MS, 50)
      if (!stored || cursor === undefined) throw new Error(`notification ${id} was not in the inbox within ${STORED_TIMEOUT_MS} ms`)
      return cursor
    }
  }
}

async function replay (url: string, token: string, cursor: string, user: User, backlog: readonly Notification[]): Promise<CatchUpRun> {
  const expected = new Map(backlog.map((notification, i) => [notification.id, i]))
  const seen = new Set<string>()
  let duplicates = 0
  let outOfOrder = 0
  let last = -1
  const connectAt = now()
  let openAt = Number.NaN
  const socket = openFeedSocket(url, token, { since: cursor })
  try {
    const syncedAt = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no synced frame within ${REPLAY_TIMEOUT_MS} ms (${seen.size} replayed)`)), REPLAY_TIMEOUT_MS)
      socket.on('open', () => { openAt = now() })
      socket.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString('utf8')) as Frame<Notification>
        if (frame.type === 'synced') {
          clearTimeout(timer)
          resolve(now())
          return
        }
        if (frame.type !== 'notification') return
        const id = frame.notification.id
        if (seen.has(id)) {
          duplicates++
          return
        }
        seen.add(id)
        const position = expected.get(id) ?? -1
        if (position < last) outOfOrder++
        last = Math.max(last, position)
      })
      socket.on('error', (error) => { clearTimeout(timer); reject(error) })
      socket.on('close', (code) => { clearTimeout(timer); reject(new Error(`socket closed (${code}) before synced`)) })
    })
    let replayed = 0
    for (const id of seen) if (expected.has(id)) replayed++
    return {
      user: user.id,
      missed: backlog.length,
      openToSyncedMs: round(syncedAt - openAt, 2),
      connectToSyncedMs: round(syncedAt - connectAt, 2),
      replayed,
      missing: backlog.length - replayed,
      duplicates,
      outOfOrder
    }
  } finally {
    socket.terminate()
  }
}
