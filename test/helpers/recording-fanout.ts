import type { Fanout, FanoutMessage } from '../../server/fanout/types.js'
import { Waiters } from './waiters.js'
import type { Unready } from '../../server/lifecycle.js'

/**
 * A fan-out that records what it is asked to publish: `reachable` says who may be listening,
 * `publishing` when a publish settles, and `handedOn` what each publish resolves with in turn
 * (true once it runs out: handed on).
 */
export class RecordingFanout implements Fanout {
  readonly published: FanoutMessage[][] = []
  readonly handedOn: boolean[] = []
  readonly #waiters = new Waiters()

  constructor (readonly reachable: ReadonlySet<string>, readonly publishing: Promise<void> = Promise.resolve()) {}

  async publish (messages: readonly FanoutMessage[]): Promise<boolean> {
    this.published.push([...messages])
    this.#waiters.wake()
    await this.publishing
    return this.handedOn.shift() ?? true
  }

  /** Resolves once `count` publishes were asked for in all. */
  async publishes (count: number): Promise<FanoutMessage[][]> {
    await this.#waiters.until(() => `${count} publishes (got ${this.published.length})`, () => this.published.length >= count)
    return this.published.slice(0, count)
  }

  mayReach (userId: string): boolean { return this.reachable.has(userId) }
  watch (): void {}
  unwatch (): void {}
  unreadyReasons (): Unready[] { return [] }
  async close (): Promise<void> {}
}
