import type { Fanout, FanoutMessage } from '../fanout/types.js'
import type { Inbox } from '../inbox/types.js'
import type { Logger } from '../logger.js'
import { encodeCursor } from './cursor.js'
import { notificationFrame, unreadFrame } from './frames.js'

/** The first wait before a repair that could not read the inbox or publish is tried again; it doubles up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 200
const MAX_RETRY_MS = 5000
/** Users one repair reads and republishes at a time. */
const REPAIR_USERS = 200

export interface TailRepairOptions {
  log: Logger
  /** Told how many users' tails were republished. */
  onRepaired?: (users: number) => void
}

/**
 * Publishes a user's frames through the fan-out, and republishes the user's tail from the inbox
 * when frames of theirs may not have reached every tab: a publish the fan-out could not hand on, or
 * an append whose outcome is unknown (a COMMIT whose connection dropped may still have been
 * durable; the consumer's retry then skips every record as applied and publishes nothing). Nothing
 * later may come to reveal such a loss, so for each of those users, once the inbox and the fan-out
 * answer, it publishes the newest notification and the unread count, stamped as the feed stands
 * then: a tab that missed frames sees a seq past its last and fills the hole from the inbox, one
 * that did not drops them as repeats (server/feed/tab.ts).
 */
export class TailRepair {
  readonly #inbox: Inbox
  readonly #fanout: Fanout
  readonly #options: TailRepairOptions
  /** Users to repair, each with the number of its latest suspicion: one raised during a repair outlives it. */
  readonly #suspects = new Map<string, number>()
  #suspicions = 0
  #timer: NodeJS.Timeout | undefined
  #running = false
  #retryMs = 0
  #closed = false

  constructor (inbox: Inbox, fanout: Fanout, options: TailRepairOptions) {
    this.#inbox = inbox
    this.#fanout = fanout
    this.#options = options
  }

  /** Publishes `messages`; if the fan-out may have lost some, their users' tails are repaired. */
  publish (messages: readonly FanoutMessage[]): void {
    if (messages.length === 0) return
    void this.#fanout.publish(messages).then((handedOn) => {
      if (!handedOn) this.repair(messages.map(({ userId }) => userId))
    })
  }

  /** These users' newest frames may not have reached every tab: republish them from the inbox, as soon as it and the fan-out answer. */
  repair (userIds: Iterable<string>): void {
    if (this.#closed) return
    for (const userId of userIds) {
      // A user nobody can be listening for has no tab to repair.
      if (this.#fanout.mayReach(userId)) this.#suspects.set(userId, ++this.#suspicions)
    }
    this.#schedule()
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#suspects.clear()
  }

  #schedule (): void {
    if (this.#timer !== undefined || this.#running || this.#closed || this.#suspects.size === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#run()
    }, this.#retryMs)
    this.#timer.unref()
  }

  async #run (): Promise<void> {
    this.#running = true
    const users = [...this.#suspects].slice(0, REPAIR_USERS)
    try {
      const messages = await this.#tails(users.map(([userId]) => userId))
      if (!await this.#fanout.publish(messages)) throw new Error('the fan-out could not hand the frames on')
      for (const [userId, suspicion] of users) {
        if (this.#suspects.get(userId) === suspicion) this.#suspects.delete(userId)
      }
      this.#retryMs = 0
      this.#options.onRepaired?.(users.length)
    } catch (error) {
      if (this.#retryMs === 0) this.#options.log.warn({ err: error, users: this.#suspects.size }, 'Repairing feed tails failed; retrying (tabs still catch up at their next ping)')
      this.#retryMs = Math.min(Math.max(this.#retryMs * 2, FIRST_RETRY_MS), MAX_RETRY_MS)
    } finally {
      this.#running = false
    }
    this.#schedule()
  }

  /** Each user's newest notification (if any) and unread count, as the inbox has them now. */
  async #tails (userIds: string[]): Promise<FanoutMessage[]> {
    const feeds = await this.#inbox.feeds(userIds)
    const messages: FanoutMessage[] = []
    for (const [userId, feed] of feeds) {
      const [newest] = feed.newestSeq === 0 ? [] : await this.#inbox.after(userId, feed.newestSeq - 1, 1)
      if (newest?.seq === feed.newestSeq) {
        const cursor = encodeCursor(this.#inbox.epoch, newest.seq)
        messages.push({ userId, text: notificationFrame(JSON.stringify(newest.notification), cursor, newest.seq, feed), seq: newest.seq })
      }
      messages.push({ userId, text: unreadFrame(feed.unread, feed.rev) })
    }
    return messages
  }
}
