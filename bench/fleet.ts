import { join } from 'node:path'
import { ChildWorker } from './ipc.js'
import { benchDir } from './paths.js'
import type { TokenSource } from './tokens.js'
import type { ConnectResult, FeedClientsApi, Tally } from './feed-clients.js'
import type { Transport } from './feed-links.js'

/** Sockets per process stay well under the 20,000 open files a process may hold here. */
export const SOCKETS_PER_PROCESS = 5000
const CALL_TIMEOUT_MS = 30_000

/**
 * The parent's view of the feed client processes (WebSockets, or event streams): which user is
 * connected in which process, and the frames they all received, merged.
 */
export class ClientFleet {
  readonly #workers: Array<ChildWorker<FeedClientsApi>>
  readonly #owner = new Map<string, number>()
  readonly #load: number[]

  private constructor (workers: Array<ChildWorker<FeedClientsApi>>) {
    this.#workers = workers
    this.#load = workers.map(() => 0)
  }

  /**
   * Starts `processes` client processes over `transport`, the k-th bound to 127.0.0.(firstHost + k):
   * fleets that run side by side take hosts of their own.
   */
  static async start (processes: number, url: string, tokens: TokenSource, concurrency: number, firstHost = 10, transport: Transport = 'ws'): Promise<ClientFleet> {
    const workers = Array.from({ length: processes }, (_, k) => new ChildWorker<FeedClientsApi>(join(benchDir, 'feed-clients.ts'), `${transport}-clients-${firstHost + k}`))
    const fleet = new ClientFleet(workers)
    try {
      await Promise.all(workers.map((worker, k) => worker.call('init', { url, transport, tokens, localAddress: `127.0.0.${firstHost + k}`, concurrency }, CALL_TIMEOUT_MS)))
    } catch (error) {
      await fleet.stop()
      throw error
    }
    return fleet
  }

  get pids (): Array<number | undefined> {
    return this.#workers.map((worker) => worker.pid)
  }

  get connected (): string[] {
    return [...this.#owner.keys()]
  }

  /**
   * Connects the users not yet connected, spread evenly over the processes. A user already
   * placed goes back to its process, which opens a new socket if the gateway dropped the old one.
   */
  async connect (users: readonly string[], timeoutMs: number): Promise<ConnectResult> {
    const batches: string[][] = this.#workers.map(() => [])
    for (const user of users) {
      let k = this.#owner.get(user)
      if (k === undefined) {
        k = 0
        for (let i = 1; i < this.#load.length; i++) if (this.#load[i]! < this.#load[k]!) k = i
        this.#owner.set(user, k)
        this.#load[k]!++
      }
      batches[k]!.push(user)
    }
    const results = await Promise.all(batches.map((batch, k) => batch.length === 0
      ? { connected: 0, failed: 0, errors: [], elapsedMs: 0 }
      : this.#workers[k]!.call('connect', { users: batch, timeoutMs }, timeoutMs + CALL_TIMEOUT_MS)))
    return {
      connected: sum(results.map((result) => result.connected)),
      failed: sum(results.map((result) => result.failed)),
      errors: results.flatMap((result) => result.errors),
      elapsedMs: Math.max(...results.map((result) => result.elapsedMs))
    }
  }

  async disconnect (users: readonly string[] = this.connected): Promise<void> {
    const batches: string[][] = this.#workers.map(() => [])
    for (const user of users) {
      const k = this.#owner.get(user)
      if (k === undefined) continue
      batches[k]!.push(user)
      this.#owner.delete(user)
      this.#load[k]!--
    }
    await Promise.all(batches.map((batch, k) => batch.length === 0 ? undefined : this.#workers[k]!.call('disconnect', { users: batch }, CALL_TIMEOUT_MS)))
  }

  async reset (): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.call('reset', undefined, CALL_TIMEOUT_MS)))
  }

  async tally (): Promise<Tally> {
    return mergeTallies(await Promise.all(this.#workers.map((worker) => worker.call('tally', undefined, CALL_TIMEOUT_MS))))
  }

  /** Every notification received since the last reset (and resets). */
  async collect (): Promise<{ ids: string[], at: Float64Array, tally: Tally }> {
    const parts = await Promise.all(this.#workers.map((worker) => worker.call('collect', undefined, CALL_TIMEOUT_MS)))
    const ids: string[] = []
    const at = new Float64Array(sum(parts.map((part) => part.at.length)))
    for (const part of parts) {
      at.set(part.at, ids.length)
      if (part.ids !== '') for (const id of part.ids.split('\n')) ids.push(id)
    }
    return { ids, at, tally: mergeTallies(parts) }
  }

  async stop (): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.stop()))
  }
}

function mergeTallies (tallies: Tally[]): Tally {
  const closes: Record<string, number> = {}
  for (const tally of tallies) {
    for (const [code, count] of Object.entries(tally.closes)) closes[code] = (closes[code] ?? 0) + count
  }
  return {
    notifications: sum(tallies.map((tally) => tally.notifications)),
    duplicates: sum(tallies.map((tally) => tally.duplicates)),
    seqGaps: sum(tallies.map((tally) => tally.seqGaps)),
    seqRepeats: sum(tallies.map((tally) => tally.seqRepeats)),
    closes
  }
}

function sum (values: number[]): number {
  return values.reduce((total, value) => total + value, 0)
}
