import type { Fanout, FanoutMessage, FanoutReceiver } from './types.js'
import type { Unready } from '../lifecycle.js'

const HANDED_ON = Promise.resolve(true)

/**
 * The default, for one gateway: a publish goes straight to this gateway's receiver, one batch in
 * one `corked` call (its sockets corked), for the users watched here. Nothing is ever lost, so it
 * never reports a resubscribe.
 */
export class LocalFanout implements Fanout {
  readonly #receiver: FanoutReceiver
  readonly #watched = new Set<string>()

  constructor (receiver: FanoutReceiver) {
    this.#receiver = receiver
  }

  publish (messages: readonly FanoutMessage[]): Promise<boolean> {
    if (messages.length === 0) return HANDED_ON
    this.#receiver.corked(() => {
      for (const message of messages) {
        if (this.#watched.has(message.userId)) this.#receiver.deliver(message)
      }
    })
    return HANDED_ON
  }

  mayReach (userId: string): boolean {
    return this.#watched.has(userId)
  }

  watch (userId: string): void {
    this.#watched.add(userId)
  }

  unwatch (userId: string): void {
    this.#watched.delete(userId)
  }

  unreadyReasons (): Unready[] {
    return []
  }

  async close (): Promise<void> {
    this.#watched.clear()
  }
}
