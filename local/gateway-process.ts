// A gateway (server/main.ts, run through tsx as `npm run dev` would) as a child process, for
// `npm run cluster`. It runs under the broker's watchdog (kafka/watchdog.ts), in a process group
// of its own: a Ctrl-C in the terminal reaches only the command, which stops the gateways in
// order, and a command that dies, even by SIGKILL, still has its gateways stopped.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'
import { watchdogArgs } from '../kafka/watchdog.js'
import { projectRoot } from '../server/project-root.js'

/** Seconds from SIGTERM to SIGKILL: more than the gateway's default SHUTDOWN_GRACE_MS (10 s). */
const STOP_GRACE_SECONDS = 15
const READY_POLL_MS = 250

/** The command that runs the gateway from its TypeScript sources, from any working directory. */
export function gatewayCommand (): [file: string, args: string[]] {
  return [process.execPath, ['--import', import.meta.resolve('tsx'), join(projectRoot(), 'server', 'main.ts')]]
}

export interface GatewayProcessOptions {
  /** Its working directory: main.ts reads a `.env` from there, so give it one of its own. */
  cwd: string
  /** Added to this process's environment. */
  env: Record<string, string>
  /** Each line the gateway writes, stdout (pino JSON) and stderr alike. */
  onLine: (line: string) => void
}

export interface GatewayProcess {
  readonly url: string
  /** Resolves with its exit status (`exit code 0`, `signal SIGKILL`) once it is gone. */
  readonly exited: Promise<string>
  /** Resolves once its `/readyz` answers 200; rejects if it exits first or `timeoutMs` passes. */
  ready (timeoutMs: number): Promise<void>
  /** SIGTERM (a graceful shutdown), SIGKILL after 15 s; resolves with the exit status. Safe to repeat. */
  stop (): Promise<string>
}

/** Starts a gateway listening on 127.0.0.1:`port` (the env's HOST and PORT are set to it). */
export function startGatewayProcess (port: number, options: GatewayProcessOptions): GatewayProcess {
  const [file, args] = gatewayCommand()
  const url = `http://127.0.0.1:${port}`
  // stdout carries the watchdog's pid line only; the gateway writes to the watchdog's stderr.
  const child = spawn('sh', watchdogArgs('gateway-watchdog', STOP_GRACE_SECONDS, file, args), {
    cwd: options.cwd,
    env: { ...process.env, ...options.env, HOST: '127.0.0.1', PORT: String(port) },
    detached: true,
    stdio: ['pipe', 'ignore', 'pipe']
  })
  createInterface({ input: child.stderr! }).on('line', options.onLine)
  child.stdin?.on('error', () => {}) // EPIPE when it is closed after the watchdog is gone
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(error.message))
    child.once('exit', (code, signal) => resolve(code === null ? `signal ${signal ?? '?'}` : `exit code ${code}`))
  })
  let status: string | undefined
  void exited.then((value) => { status = value })
  const running = (): boolean => status === undefined

  return {
    url,
    exited,
    ready: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      let last = 'no answer yet'
      while (running() && Date.now() < deadline) {
        try {
          const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })
          if (response.status === 200) return
          last = `${response.status} ${await response.text()}`
        } catch (error) {
          last = (error as Error).message
        }
        await Promise.race([delay(READY_POLL_MS), exited])
      }
      if (!running()) throw new Error(`the gateway at ${url} exited (${await exited}) before it was ready`)
      throw new Error(`the gateway at ${url} was not ready within ${timeoutMs / 1000} s (/readyz: ${last})`)
    },
    // Closing the watchdog's stdin is what this process dying would do: one path for both.
    stop: async () => {
      child.stdin?.end()
      return await exited
    }
  }
}
