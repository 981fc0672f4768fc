import { fork, type ChildProcess } from 'node:child_process'
import { projectRoot } from '../server/project-root.js'

/** What a child process serves: each command takes one argument and returns one result. */
export type Api = Record<string, (args: never) => unknown>

interface Call { call: number, command: string, args: unknown }
interface Answer { call: number, result?: unknown, error?: string }
interface Event { event: string, data: unknown }

const EXIT_GRACE_MS = 5000

/**
 * The parent's end of a bench child process (load generator, WebSocket clients): typed calls
 * over the IPC channel, each bounded in time. `advanced` serialization carries typed arrays and
 * long strings without a JSON round trip, which matters for results of a few hundred thousand
 * samples.
 */
export class ChildWorker<A extends Api> {
  readonly name: string
  readonly child: ChildProcess
  readonly exited: Promise<string>
  #nextCall = 1
  readonly #pending = new Map<number, { resolve: (value: unknown) => void, reject: (error: Error) => void }>()
  readonly #listeners: Array<(event: string, data: unknown) => void> = []

  constructor (script: string, name: string, env: Record<string, string> = {}) {
    this.name = name
    this.child = fork(script, [], {
      cwd: projectRoot(),
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...env }
    })
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        const status = signal === null ? `exit code ${code ?? '?'}` : `signal ${signal}`
        for (const { reject } of this.#pending.values()) reject(new Error(`${name} exited (${status})`))
        this.#pending.clear()
        resolve(status)
      })
    })
    // A send racing the child's exit fails here; the pending call is failed by the exit above.
    this.child.on('error', () => {})
    this.child.on('message', (message: Answer | Event) => {
      if ('event' in message) {
        for (const listener of this.#listeners) listener(message.event, message.data)
        return
      }
      const pending = this.#pending.get(message.call)
      if (pending === undefined) return
      this.#pending.delete(message.call)
      if (message.error === undefined) pending.resolve(message.result)
      else pending.reject(new Error(`${name}: ${message.error}`))
    })
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  onEvent (listener: (event: string, data: unknown) => void): () => void {
    this.#listeners.push(listener)
    return () => { this.#listeners.splice(this.#listeners.indexOf(listener), 1) }
  }

  call<K extends keyof A & string> (command: K, args: Parameters<A[K]>[0], timeoutMs: number): Promise<Awaited<ReturnType<A[K]>>> {
    if (!this.child.connected) return Promise.reject(new Error(`${this.name} is not running`))
    const call = this.#nextCall++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(call)
        reject(new Error(`${this.name}: ${command} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(call, {
        resolve: (value) => { clearTimeout(timer); resolve(value as Awaited<ReturnType<A[K]>>) },
        reject: (error) => { clearTimeout(timer); reject(error) }
      })
      this.child.send({ call, command, args } satisfies Call)
    })
  }

  /** Asks the child to exit (it closes its sockets), then kills it if it has not within a grace. */
  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    if (this.child.connected) this.child.disconnect()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_GRACE_MS)
    await this.exited
    clearTimeout(timer)
  }
}

/**
 * The child's end: answers the parent's calls with `api`. The child exits when the parent goes
 * away (the IPC channel closes), so no bench process outlives the run, whatever ended it.
 */
export function serve<A extends Api> (api: A, onExit: () => Promise<void> | void = () => {}): void {
  // Ctrl-C reaches the whole process group; the parent decides when its children stop.
  process.on('SIGINT', () => {})
  process.on('message', (message: Call) => {
    const handler = api[message.command] as ((args: unknown) => unknown) | undefined
    const reply = (answer: Omit<Answer, 'call'>): void => { process.send?.({ call: message.call, ...answer }) }
    if (handler === undefined) {
      reply({ error: `unknown command ${message.command}` })
      return
    }
    Promise.resolve().then(() => handler(message.args)).then(
      (result) => reply({ result }),
      (error: unknown) => reply({ error: error instanceof Error ? error.stack ?? error.message : String(error) })
    )
  })
  process.on('disconnect', () => {
    Promise.resolve(onExit()).finally(() => process.exit(0))
  })
}

/** Sends an unsolicited event (progress) to the parent. */
export function emit (event: string, data: unknown): void {
  if (process.connected) process.send?.({ event, data } satisfies Event)
}
