// A throwaway redis-server on a free loopback port, nothing persisted, from Debian's
// `redis-server` package, for the tests, the bench and `npm run cluster`.
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import type { Socket } from 'node:net'
import { delimiter, join } from 'node:path'
import { freePorts } from '../kafka/node.js'

export const REDIS_INSTALL_HINT = 'redis-server is not installed (not on PATH): apt-get install redis-server'
const READY_LINE = 'Ready to accept connections'
const START_TIMEOUT_MS = 10_000

export interface LocalRedis {
  url: string
  port: number
  /** Stops the server (its clients see the connection close); what it held is gone. Safe to repeat. */
  stop (): Promise<void>
  /** Starts it again on the same port, empty. */
  start (): Promise<void>
}

/** The redis-server binary on PATH, or undefined. */
export function redisServerPath (): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'redis-server')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

/**
 * Starts `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no` on a free port (or
 * `port`). A watchdog kills it if this process dies without calling `stop`. Throws when
 * redis-server is not installed.
 */
export async function startLocalRedis (options: { port?: number } = {}): Promise<LocalRedis> {
  const bin = redisServerPath()
  if (bin === undefined) throw new Error(REDIS_INSTALL_HINT)
  let server: RedisProcess | undefined
  let port = options.port ?? 0
  for (let attempt = 1; ; attempt++) {
    if (options.port === undefined) [port] = await freePorts(1) as [number]
    try {
      server = await RedisProcess.start(bin, port)
      break
    } catch (error) {
      // A port taken between the probe and the start, three times, is not a race.
      if (attempt === 3 || options.port !== undefined) throw error
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await server?.stop()
      server = undefined
    },
    start: async () => {
      if (server !== undefined) throw new Error('redis-server is already running')
      server = await RedisProcess.start(bin, port)
    }
  }
}

/**
 * One redis-server under a shell watchdog that kills it when its stdin closes: at `stop`, or when
 * this process dies, however it dies (only this process holds the pipe's write end).
 */
class RedisProcess {
  readonly #child: ChildProcess
  readonly #exited: Promise<void>
  #stopped: Promise<void> | undefined

  private constructor (child: ChildProcess) {
    this.#child = child
    this.#exited = new Promise((resolve) => { child.once('exit', () => resolve()) })
  }

  static async start (bin: string, port: number): Promise<RedisProcess> {
    // The watcher gets the pipe explicitly: a background job's stdin is /dev/null otherwise. The
    // shell exits with the server, so a server that could not start is seen at once.
    const script = `
"$1" --port "$2" --bind 127.0.0.1 --save '' --appendonly no &
pid=$!
exec 3<&0
(while read -r _; do :; done; kill "$pid" 2>/dev/null) <&3 &
wait "$pid"
`
    const child = spawn('sh', ['-c', script, 'redis-watchdog', bin, String(port)], { detached: true, stdio: ['pipe', 'pipe', 'inherit'] })
    const server = new RedisProcess(child)
    child.unref()
    ;(child.stdin as Socket | null)?.unref()
    ;(child.stdout as Socket | null)?.unref()
    let output = ''
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port} within ${START_TIMEOUT_MS} ms: ${output.trim().split('\n').slice(-3).join(' | ')}`)), START_TIMEOUT_MS)
        child.stdout?.on('data', (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes(READY_LINE)) {
            clearTimeout(timer)
            resolve()
          }
        })
        child.once('exit', () => {
          clearTimeout(timer)
          reject(new Error(`redis-server exited on port ${port}: ${output.trim().split('\n').slice(-3).join(' | ')}`))
        })
      })
    } catch (error) {
      await server.stop()
      throw error
    }
    child.stdout?.resume() // keep draining its log, or a full pipe would block it
    return server
  }

  async stop (): Promise<void> {
    this.#stopped ??= (async () => {
      this.#child.ref() // until it is done: nothing else may keep this process waiting for it
      this.#child.stdin?.end()
      await this.#exited
    })()
    await this.#stopped
  }
}
