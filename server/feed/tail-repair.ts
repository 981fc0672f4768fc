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
 * answer, it publishes the newest notification, stamped with the unread count as the feed stands
 * then: a tab that missed frames sees a seq past its last and fills the hole from the inbox, one
 * that did not drops it as a repeat (server/feed/tab.ts). Where an `unread` frame was lost, the
 * count goes again as one.
 */
export class TailRepair {
  readonly #inbox: Inbox
  readonly #fanout: Fanout
  readonly #options: TailRepairOptions
  /**
   * Users to repair: the number of the latest suspicion (one raised during a repair outlives it),
   * and whether an `unread` frame of theirs may be lost.
   */
  readonly #suspects = new Map<string, { suspicion: number, unread: boolean }>()
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
      if (handedOn) return
      for (const { userId, seq } of messages) this.#suspect(userId, seq === undefined)
      this.#schedule()
    })
  }

  /** These users' newest notifications may not have reached every tab: republish them from the inbox, as soon as it and the fan-out answer. */
  repair (userIds: Iterable<string>): void {
    for (const userId of userIds) this.#suspect(userId, false)
    this.#schedule()
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#suspects.clear()
  }

  #suspect (userId: string, unread: boolean): void {
    // A user nobody can be listening for has no tab to repair.
    if (this.#closed || !this.#fanout.mayReach(userId)) return
    this.#suspects.set(userId, { suspicion: ++this.#suspicions, unread: unread || this.#suspects.get(userId)?.unread === true })
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
      const messages = await this.#tails(new Map(users.map(([userId, { unread }]) => [userId, unread])))
      if (!await this.#fanout.publish(messages)) throw new Error('the fan-out could not hand the frames on')
      for (const [userId, { suspicion }] of users) {
        if (this.#suspects.get(userId)?.suspicion === suspicion) this.#suspects.delete(userId)
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

  /** Each user's newest notification (if any), and for `unread` users the unread count, as the inbox has them now. */
  async #tails (users: Map<string, boolean>): Promise<FanoutMessage[]> {
    const feeds = await this.#inbox.feeds([...users.keys()])
    const messages: FanoutMessage[] = []
    for (const [userId, feed] of feeds) {
      const [newest] = feed.newestSeq === 0 ? [] : await this.#inbox.after(userId, feed.newestSeq - 1, 1)
      if (newest?.seq === feed.newestSeq) {
        const cursor = encodeCursor(this.#inbox.epoch, newest.seq, feed.rev)
        messages.push({ userId, text: notificationFrame(JSON.stringify(newest.notification), cursor, newest.seq, feed), seq: newest.seq, rev: feed.rev })
      }
      if (users.get(userId) === true) messages.push({ userId, text: unreadFrame(feed.unread, feed.rev) })
    }
    return messages
  }
}
