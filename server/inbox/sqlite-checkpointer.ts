import { Worker } from 'node:worker_threads'
import { sqliteDriver } from './sqlite-driver.js'

/** What one checkpoint did: frames in the log, and how many of them are now in the database file. */
export interface CheckpointResult { log: number, checkpointed: number }

// Plain CommonJS, run with `eval`: the worker needs no build step under tsx or from dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const driver = require(workerData.driver.module)
const Database = workerData.driver.exportName === undefined ? driver : driver[workerData.driver.exportName]
const db = new Database(workerData.file)
db.exec('PRAGMA busy_timeout = 1000')
const walCheckpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
const checkpoint = () => {
  const row = walCheckpoint.get()
  return { log: row.log, checkpointed: row.checkpointed }
}
const timer = setInterval(() => { try { checkpoint() } catch {} }, workerData.everyMs)
parentPort.on('message', (message) => {
  if (message === 'close') {
    clearInterval(timer)
    db.close()
    parentPort.close()
    return
  }
  try {
    parentPort.postMessage({ ok: true, result: checkpoint() })
  } catch (error) {
    parentPort.postMessage({ ok: false, error: String(error) })
  }
})
`

/**
 * Copies the SQLite log (WAL) into the database file from a worker thread, with a connection of
 * its own, every `everyMs`. SQLite's automatic checkpoint runs inside a commit, on the thread that
 * commits: every thousand pages it copied megabytes and fsynced the file on the event loop, a
 * 10 ms pause (90 ms on a busy machine) at the p99 of every consumed batch and socket write. A
 * PASSIVE checkpoint never waits for the writer, so the consumer's commits go on meanwhile.
 */
export class SqliteCheckpointer {
  readonly #worker: Worker
  readonly #waiting: Array<{ resolve: (result: CheckpointResult) => void, reject: (error: Error) => void }> = []
  #closed: Promise<void> | undefined

  /** `stopped` is told if the worker dies before `close`: the caller must checkpoint itself again. */
  constructor (file: string, everyMs: number, stopped: (error: Error) => void) {
    const { module, exportName } = sqliteDriver()
    const driver = { module, exportName }
    // No execArgv: the worker is plain CommonJS and needs none of the parent's loaders (tsx, tap).
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { file, driver, everyMs } })
    this.#worker.on('message', (answer: { ok: true, result: CheckpointResult } | { ok: false, error: string }) => {
      const waiter = this.#waiting.shift()
      if (this.#waiting.length === 0) this.#worker.unref()
      if (answer.ok) waiter?.resolve(answer.result)
      else waiter?.reject(new Error(`SQLite checkpoint failed: ${answer.error}`))
    })
    const failAll = (error: Error): void => {
      for (const waiter of this.#waiting.splice(0)) waiter.reject(error)
    }
    let failure: Error | undefined
    this.#worker.on('error', (error) => { failure = error })
    this.#worker.on('exit', () => {
      const error = failure ?? new Error('the SQLite checkpoint worker stopped')
      failAll(error)
      if (this.#closed === undefined) stopped(error)
    })
    // After the listeners: adding a 'message' listener refs the worker again.
    this.#worker.unref()
  }

  /** Checkpoints now (besides the timer), resolving with what it did. */
  checkpoint (): Promise<CheckpointResult> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject })
      this.#worker.ref() // an answer is awaited: keep the process up for it
      this.#worker.postMessage('checkpoint')
    })
  }

  close (): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#worker.once('exit', () => resolve())
      this.#worker.ref()
      this.#worker.postMessage('close')
    })
    return this.#closed
  }
}
