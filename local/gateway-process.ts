// A gateway (server/main.ts) as a child process under the watchdog (watchdog.ts), for `npm run
// cluster`, the tests that kill or restart one, and the bench. It runs in a process group of its
// own: a terminal's Ctrl-C reaches only the command that started it, which stops it in order, and
// an owner that dies, even by SIGKILL, still has it stopped.
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { projectRoot } from '../server/project-root.js'
import { startWatched, type WatchedProcess } from './watchdog.js'

/** Seconds from SIGTERM to SIGKILL: more than the gateway's default SHUTDOWN_GRACE_MS (10 s). */
const STOP_GRACE_SECONDS = 15
const READY_POLL_MS = 250
const PROBE_TIMEOUT_MS = 2000
const LISTENING = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/

/** `tsx`: server/main.ts from its sources, as `npm run dev` runs it; `dist`: the build, as `npm start` does. */
export type GatewayRuntime = 'tsx' | 'dist'

export interface GatewayProcessOptions {
  /** Its port on 127.0.0.1; 0: a free one, read from its `Server listening at` log line (LOG_LEVEL info or lower). */
  port: number
  /** Its working directory: main.ts reads a `.env` from there, so give it one of its own. */
  cwd: string
  /** Added to this process's environment (HOST and PORT are set from `port`). */
  env: Record<string, string>
  /** Default `tsx`. */
  runtime?: GatewayRuntime
  /** Node options before the entry point, e.g. `--cpu-prof`. */
  nodeOptions?: readonly string[]
  /** Each line it writes, stdout (pino JSON) and stderr alike. */
  onLine?: (line: string) => void
}

export interface GatewayProcess extends WatchedProcess {
  /** Resolves with its base URL once its `/readyz` answers 200; rejects if it exits first or `timeoutMs` passes. */
  ready (timeoutMs: number): Promise<string>
}

/** Starts a gateway listening on 127.0.0.1; resolves once its process runs (see `ready`). */
export async function startGatewayProcess (options: GatewayProcessOptions): Promise<GatewayProcess> {
  const runtime = options.runtime ?? 'tsx'
  const entry = runtime === 'dist'
    ? [join(projectRoot(), 'dist', 'server', 'main.js')]
    : ['--import', import.meta.resolve('tsx'), join(projectRoot(), 'server', 'main.ts')]
  let listened: (url: string) => void = () => {}
  const listening = options.port === 0
    ? new Promise<string>((resolve) => { listened = resolve })
    : Promise.resolve(`http://127.0.0.1:${options.port}`)
  const gateway = await startWatched(process.execPath, [...options.nodeOptions ?? [], ...entry], {
    name: 'gateway-watchdog',
    graceSeconds: STOP_GRACE_SECONDS,
    cwd: options.cwd,
    env: { ...process.env, ...options.env, HOST: '127.0.0.1', PORT: String(options.port) },
    onLine: (line) => {
      const url = LISTENING.exec(line)?.[1]
      if (url !== undefined) listened(url)
      options.onLine?.(line)
    }
  })
  return Object.assign(gateway, {
    ready: async (timeoutMs: number): Promise<string> => {
      const deadline = Date.now() + timeoutMs
      let timer: NodeJS.Timeout | undefined
      const url = await Promise.race([
        listening,
        gateway.exited.then((status) => { throw new Error(`the gateway exited (${status}) before it listened`) }),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`the gateway did not listen within ${timeoutMs / 1000} s`)), timeoutMs) })
      ]).finally(() => { clearTimeout(timer) })
      await untilReady(url, deadline - Date.now(), gateway.exited)
      return url
    }
  })
}

/**
 * Polls `url`/readyz (a real request each time) until it answers 200, within `timeoutMs`; gives
 * up at once when `exited` (the gateway's process) settles.
 */
export async function untilReady (url: string, timeoutMs: number, exited?: Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  let status: string | undefined
  void exited?.then((value) => { status = value })
  for (;;) {
    if (status !== undefined) throw new Error(`the gateway at ${url} exited (${status}) before it was ready`)
    if (Date.now() >= deadline) throw new Error(`the gateway at ${url} was not ready within ${timeoutMs / 1000} s (/readyz: ${last})`)
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
      if (response.status === 200) return
      last = `${response.status} ${await response.text()}`
    } catch (error) {
      last = (error as Error).message
    }
    await Promise.race([delay(READY_POLL_MS), ...exited === undefined ? [] : [exited]])
  }
}
