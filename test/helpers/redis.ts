import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import type { Socket } from 'node:net'
import { delimiter, join } from 'node:path'
import type { Test } from 'tap'
import { freePorts } from '../../kafka/node.js'
import { isCI } from './ci.js'

const INSTALL_HINT = 'redis-server is not installed (not on PATH): apt-get install redis-server'
const READY_LINE = 'Ready to accept connections'
const START_TIMEOUT_MS = 10_000

/** A redis-server of one test file, on a free loopback port, with nothing persisted. */
export interface TestRedis {
  url: string
  port: number
  /** Stops the server (its clients see the connection close); what it held is gone. */
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
 * Starts a throwaway redis-server for the test `t` (a file's root test): `redis-server --port P
 * --bind 127.0.0.1 --save '' --appendonly no`. Its teardown stops the server however the test
 * ended, and a watchdog does if this process dies without one. Without redis-server the test is
 * skipped with the command that installs it, and fails instead under CI, where it must run.
 * Resolves undefined then.
 */
export async function startRedis (t: Test): Promise<TestRedis | undefined> {
  const bin = redisServerPath()
  if (bin === undefined) {
    if (isCI()) t.fail(`${INSTALL_HINT} (CI must run the Redis tests)`)
    else void t.skip(`SKIPPED, ${INSTALL_HINT}`, () => {})
    return undefined
  }
  let server: RedisProcess | undefined
  t.teardown(async () => { await server?.stop() })
  let port = 0
  for (let attempt = 1; ; attempt++) {
    [port] = await freePorts(1) as [number]
    try {
      server = await RedisProcess.start(bin, port)
      break
    } catch (error) {
      if (attempt === 3) throw error // a port taken between the probe and the start, three times, is not a race
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
