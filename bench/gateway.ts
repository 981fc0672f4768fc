import { execFile, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { sleep, waitUntil } from './clock.js'
import { projectRoot } from './paths.js'
import { watchdogArgs } from '../kafka/watchdog.js'

export type GatewayRuntime = 'dist' | 'tsx'

export interface Gateway {
  url: string
  /** The gateway's own Node process (not its watchdog shell). */
  pid: number
  runtime: GatewayRuntime
  exited: Promise<string>
  /** How it ended, once it has. */
  readonly exitStatus: string | undefined
  /** The last lines it wrote, for error messages. */
  tail (): string
  /** Counts of its log lines by level. */
  logLevels: Record<string, number>
  stop (): Promise<void>
}

const READY_TIMEOUT_MS = 90_000
const STOP_GRACE_MS = 20_000
const TAIL_LINES = 40
const LIVE_LOG_LINES = 10

/** The gateway runs under the broker's watchdog: when the bench dies, even by SIGKILL, so does it. */
const WATCHDOG_GRACE_SECONDS = 15

/** Compiles the gateway as `npm run build` does (server and kafka to dist/); false when tsc failed. */
export async function buildGateway (): Promise<{ ok: boolean, output: string }> {
  const tsc = join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    await promisify(execFile)(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: projectRoot, maxBuffer: 16 * 1024 * 1024 })
    return { ok: true, output: '' }
  } catch (error) {
    const { stdout, message } = error as { stdout?: string, message: string }
    return { ok: false, output: (stdout ?? message).trim() }
  }
}

export async function startGateway (options: {
  env: Record<string, string>
  runtime: GatewayRuntime
  /**
   * Where it runs: a directory of the bench's own, since main.ts reads a `.env` from its working
   * directory and a developer's must not change what the bench measures.
   */
  cwd: string
  /** Writes a V8 CPU profile (`--cpu-prof`) into this directory when the gateway exits. */
  profileDir?: string | undefined
  log: (line: string) => void
}): Promise<Gateway> {
  const entry = options.runtime === 'dist'
    ? [join(projectRoot, 'dist', 'server', 'main.js')]
    : ['--import', import.meta.resolve('tsx'), join(projectRoot, 'server', 'main.ts')]
  const profile = options.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.profileDir]
  const shell = spawn('sh', watchdogArgs('gateway-watchdog', WATCHDOG_GRACE_SECONDS, process.execPath, [...profile, ...entry]), {
    cwd: options.cwd,
    // JSON whatever the shell's LOG_FORMAT: the lines are counted by level.
    env: { ...process.env, ...options.env, LOG_FORMAT: 'json' },
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const exited = new Promise<string>((resolve) => {
    shell.once('exit', (code, signal) => resolve(signal === null ? `exit code ${code ?? '?'}` : `signal ${signal}`))
  })
  const lines: string[] = []
  const logLevels: Record<string, number> = {}
  let shown = 0
  let pid: number | undefined
  const onLine = (line: string): void => {
    if (pid === undefined && /^\d+$/.test(line)) {
      pid = Number(line)
      return
    }
    lines.push(line)
    if (lines.length > TAIL_LINES) lines.shift()
    const level = levelOf(line)
    logLevels[level] = (logLevels[level] ?? 0) + 1
    if (shown < LIVE_LOG_LINES) {
      shown++
      options.log(`gateway: ${line.slice(0, 300)}${shown === LIVE_LOG_LINES ? ' (further gateway log lines are counted, not shown)' : ''}`)
    }
  }
  createInterface({ input: shell.stdout }).on('line', onLine)
  createInterface({ input: shell.stderr }).on('line', onLine)
  // The watchdog must not keep the bench alive, only tell the gateway when it is gone.
  shell.unref()

  const stop = async (): Promise<void> => {
    if (shell.exitCode !== null || shell.signalCode !== null) return
    // A gateway paused by the delivery phase would not see SIGTERM until continued.
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGCONT')
      } catch {
        // already gone
      }
    }
    shell.kill('SIGTERM')
    const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_GRACE_MS).then(() => true)])
    if (timedOut) {
      try {
        process.kill(-shell.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
      await exited
    }
  }
  const url = `http://127.0.0.1:${options.env.PORT ?? '3000'}`
  let status: string | undefined
  void exited.then((value) => { status = value })
  const ready = await waitUntil(async () => {
    if (status !== undefined) return true
    try {
      return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200
    } catch {
      return false
    }
  }, READY_TIMEOUT_MS, 200)
  if (status !== undefined || !ready || pid === undefined) {
    await stop()
    throw new Error(`the gateway did not become ready (${status ?? `not within ${READY_TIMEOUT_MS / 1000} s`}):\n${lines.join('\n')}`)
  }
  return {
    url,
    pid,
    runtime: options.runtime,
    exited,
    get exitStatus () { return status },
    tail: () => lines.join('\n'),
    logLevels,
    stop
  }
}

function levelOf (line: string): string {
  const level = /"level":(\d+)/.exec(line)?.[1]
  return { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }[Number(level)] ?? 'other'
}
