import { sleep } from '../clock.js'
import { loadAverage, type BenchContext } from '../context.js'
import { scrapeLoopDelay, scrapeMetrics, type LoopDelay } from '../gateway-metrics.js'
import { rssBytes } from '../proc.js'
import { round } from '../stats.js'

export interface ConnectionLevel {
  target: number
  /** Load average (1, 5, 15 min) just before this level's sockets were opened. */
  loadAverageBefore: number[]
  /** Open sockets the gateway reported at the measurement (GET /metrics), when it could be read. */
  gatewayReported: number | undefined
  connected: number
  failed: number
  errorSample: string[]
  /** Seconds to open this level's new sockets. */
  connectSeconds: number
  rssBytes: number
  /** (RSS now − RSS before any connection) / open connections. */
  bytesPerConnection: number
  /** The gateway's event-loop delay over the idle heartbeat period: what a round of pings to every socket blocks it for. */
  loopDelay: LoopDelay | undefined
}

export interface ConnectionsResult {
  skipped?: string
  baselineRssBytes?: number
  heartbeatMs: number
  levels: ConnectionLevel[]
}

const WARM_UP_CONNECTIONS = 200
const CONNECT_TIMEOUT_MS = 120_000

/**
 * RSS of the gateway per idle connection. The baseline is read once the upgrade path has run
 * (a few hundred sockets opened and closed), so code compiled on first use is not charged to
 * the sockets; each level is read after a full heartbeat period, so every socket has been
 * pinged and answered.
 */
export async function connectionsPhase (context: BenchContext): Promise<ConnectionsResult> {
  const { fleet, progress, roles, settings, stack } = context
  const pid = stack.gatewayPid
  if (pid === undefined) return { skipped: 'the gateway\'s process id is unknown (set GATEWAY_PID)', heartbeatMs: settings.heartbeatMs, levels: [] }
  const connectable = roles.connectable.map((user) => user.id)

  progress.log(`connections: warming up the upgrade path with ${WARM_UP_CONNECTIONS} sockets`)
  await fleet.connect(connectable.slice(0, WARM_UP_CONNECTIONS), CONNECT_TIMEOUT_MS)
  await fleet.disconnect()
  await sleep(2000)
  const baseline = rssBytes(pid)
  if (baseline === undefined) return { skipped: `cannot read /proc/${pid}/status`, heartbeatMs: settings.heartbeatMs, levels: [] }
  progress.log(`connections: gateway RSS before ${mib(baseline)} MiB`)

  const levels: ConnectionLevel[] = []
  for (const target of settings.connectionLevels) {
    const users = connectable.slice(0, target)
    if (users.length < target) progress.log(`connections: only ${users.length} users can connect, not ${target}`)
    progress.status(`connections: opening sockets up to ${users.length}…`)
    const loadAverageBefore = loadAverage()
    const opened = await fleet.connect(users, CONNECT_TIMEOUT_MS)
    const connected = fleet.connected.length
    progress.status(`connections: ${connected} open, waiting one heartbeat period (${settings.heartbeatMs} ms)`)
    await scrapeLoopDelay(stack.url)
    await sleep(settings.heartbeatMs + 1000)
    const loopDelay = await scrapeLoopDelay(stack.url)
    const rss = rssBytes(pid)
    if (rss === undefined) throw new Error(`the gateway (pid ${pid}) is gone`)
    const level: ConnectionLevel = {
      target,
      loadAverageBefore,
      gatewayReported: await openConnections(stack.url),
      connected,
      failed: opened.failed,
      errorSample: opened.errors,
      connectSeconds: round(opened.elapsedMs / 1000, 1),
      rssBytes: rss,
      bytesPerConnection: Math.round((rss - baseline) / connected),
      loopDelay
    }
    levels.push(level)
    progress.log(`connections: ${connected} open (gateway says ${level.gatewayReported ?? '?'}), ${opened.failed} failed, ` +
      `opened in ${level.connectSeconds} s; RSS ${mib(rss)} MiB, ${round(level.bytesPerConnection / 1024, 2)} KiB per connection; ` +
      `loop delay over the idle period p99 ${loopDelay?.p99Ms ?? '?'} max ${loopDelay?.maxMs ?? '?'} ms` +
      `${opened.errors.length > 0 ? `; errors: ${opened.errors.join('; ')}` : ''}`)
  }
  const keep = new Set(roles.recipients.map((user) => user.id))
  await fleet.disconnect(fleet.connected.filter((user) => !keep.has(user)))
  return { baselineRssBytes: baseline, heartbeatMs: settings.heartbeatMs, levels }
}

async function openConnections (url: string): Promise<number | undefined> {
  const value = /^notify_ws_connections(?:\{[^}]*\})? (\d+)/m.exec(await scrapeMetrics(url) ?? '')?.[1]
  return value === undefined ? undefined : Number(value)
}

function mib (bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1)
}
