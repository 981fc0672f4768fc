import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startGatewayProcess, type GatewayProcess, type GatewayRuntime } from '../local/gateway-process.js'
import { projectRoot } from '../server/project-root.js'

/** A gateway the bench started (local/gateway-process.ts), with what the bench keeps of its log. */
export interface BenchGateway extends GatewayProcess {
  url: string
  runtime: GatewayRuntime
  /** The last lines it wrote, for error messages. */
  tail (): string
  /** Counts of its log lines by level. */
  logLevels: Record<string, number>
}

const READY_TIMEOUT_MS = 90_000
const TAIL_LINES = 40
const LIVE_LOG_LINES = 10

/** Compiles the gateway as `npm run build` does (server and local to dist/); false when tsc failed. */
export async function buildGateway (): Promise<{ ok: boolean, output: string }> {
  const root = projectRoot()
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    await promisify(execFile)(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: root, maxBuffer: 16 * 1024 * 1024 })
    return { ok: true, output: '' }
  } catch (error) {
    const { stdout, message } = error as { stdout?: string, message: string }
    return { ok: false, output: (stdout ?? message).trim() }
  }
}

/** Starts a gateway on `port` and resolves once it is ready; its first log lines go to `log`, the rest are counted. */
export async function startBenchGateway (options: {
  port: number
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
}): Promise<BenchGateway> {
  const lines: string[] = []
  const logLevels: Record<string, number> = {}
  let shown = 0
  const gateway = await startGatewayProcess({
    port: options.port,
    cwd: options.cwd,
    // JSON whatever the shell's LOG_FORMAT: the lines are counted by level.
    env: { ...options.env, LOG_FORMAT: 'json' },
    runtime: options.runtime,
    nodeOptions: options.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.profileDir],
    onLine: (line) => {
      lines.push(line)
      if (lines.length > TAIL_LINES) lines.shift()
      const level = levelOf(line)
      logLevels[level] = (logLevels[level] ?? 0) + 1
      if (shown < LIVE_LOG_LINES) {
        shown++
        options.log(`gateway: ${line.slice(0, 300)}${shown === LIVE_LOG_LINES ? ' (further gateway log lines are counted, not shown)' : ''}`)
      }
    }
  })
  let url: string
  try {
    url = await gateway.ready(READY_TIMEOUT_MS)
  } catch (error) {
    await gateway.stop()
    throw new Error(`the gateway did not become ready (${(error as Error).message}):\n${lines.join('\n')}`)
  }
  return Object.assign(gateway, { url, runtime: options.runtime, tail: () => lines.join('\n'), logLevels })
}

function levelOf (line: string): string {
  const level = /"level":(\d+)/.exec(line)?.[1]
  return { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }[Number(level)] ?? 'other'
}
