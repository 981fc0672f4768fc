import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { User } from '../directory.js'
import type { FanoutMessage, FanoutReceiver } from '../fanout/types.js'
import type { HubSocket } from '../hub/socket.js'
import type { FeedState, Inbox } from '../inbox/types.js'
import { within } from '../lifecycle.js'
import type { Logger } from '../logger.js'
import { closeAfterFailedReplay, fillGap, openFeed, tailOf } from './catch-up.js'
import type { Cursor } from './cursor.js'
import { pingFrame } from './frames.js'
import { Tab, type OutboundFrame } from './tab.js'

/**
 * Users whose feeds one ping reads from the inbox at a time, their pings written in the same turn.
 * The SQLite inbox reads synchronously, so a round over every user in one turn blocked the loop
 * for a few hundred ms at 10,000 sockets: the round yields to the loop after each chunk.
 */
const PING_READ_USERS = 100

/** Why a tab was filled from the inbox: a frame skipped a seq or a rev, its users' subscription came back, or a ping found it behind the feed. */
export type FillCause = 'hole' | 'resubscribed' | 'ping'

export interface DeliveryObserver {
  /** A notification was handed to the recipient's open sockets; `recordTimestamp` is when Kafka got it. */
  delivered (recordTimestamp: number, sockets: number): void
  /** A live tab is being filled from the inbox. */
  filling? (cause: FillCause): void
}

export interface FeedRelayOptions {
  log: Logger
  observer?: DeliveryObserver
  /** How often every tab gets a `ping` frame, once it has every notification the feed had when the ping was read. */
  pingMs: number
}

/**
 * Between the fan-out and the sockets: keeps a tab (server/feed/tab.ts) per open socket of each
 * user and gives each tab the live frames it can take in order, so a client never sees a hole in
 * its feed's `seq`. A tab that meets a hole (pub/sub is at-most-once) holds its live frames while
 * the relay replays the hole from the inbox, then releases them. A fan-out that lost its
 * subscription has every tab of those users caught up the same way.
 *
 * A hole is seen only when a later frame arrives, so a lost last frame would wait for the next
 * notification. Every `pingMs` the relay reads where each user's feed stands, fills the tabs that
 * are behind it, and sends each tab a `ping` frame with it (browsers see no protocol pings: the
 * frame also tells them the connection is alive).
 */
export class FeedRelay implements FanoutReceiver {
  readonly #inbox: Inbox
  readonly #options: FeedRelayOptions
  /** Each user's tabs here, by socket; a user without tabs has no entry. */
  readonly #tabs = new Map<string, Map<HubSocket, Tab>>()
  /** Sockets corked by the running `corked` call, uncorked at its end. */
  #corked: Set<HubSocket> | undefined
  readonly #pings: NodeJS.Timeout
  /** A round of pings is running (it waits for the inbox): the next tick skips. */
  #pinging = false
  /** The last round could not read the inbox: the next failure is not logged again. */
  #pingReadFailing = false

  constructor (inbox: Inbox, options: FeedRelayOptions) {
    this.#inbox = inbox
    this.#options = options
    this.#pings = setInterval(() => { void this.#pingAll() }, options.pingMs).unref()
  }

  /** Stops the pings. */
  stop (): void {
    clearInterval(this.#pings)
  }

  /**
   * Opens the user's feed on a socket: `ready`, the catch-up from `since`, `synced`, then live
   * frames, which wait meanwhile so the order on the wire holds. Resolves with the tab once it is
   * live (or closed); never rejects: a catch-up that fails closes the socket.
   */
  async open (socket: HubSocket, user: User, since: Cursor | undefined): Promise<Tab> {
    const tab = new Tab(socket)
    tab.hold()
    let tabs = this.#tabs.get(socket.userId)
    if (tabs === undefined) {
      tabs = new Map()
      this.#tabs.set(socket.userId, tabs)
    }
    tabs.set(socket, tab)
    try {
      await openFeed(tab, this.#inbox, user, since, this.#options.pingMs)
    } catch (error) {
      closeAfterFailedReplay(tab, error, this.#options.log, 'Opening a feed')
    }
    return tab
  }

  /** Forgets the tab of a socket that closed. */
  close (socket: HubSocket): void {
    const tabs = this.#tabs.get(socket.userId)
    if (tabs?.delete(socket) === true && tabs.size === 0) this.#tabs.delete(socket.userId)
  }

  /** Runs `deliveries` with every socket they reach corked: a tab's frames of one batch leave in one write. */
  corked (deliveries: () => void): void {
    if (this.#corked !== undefined) return deliveries()
    const corked = new Set<HubSocket>()
    this.#corked = corked
    try {
      deliveries()
    } finally {
      this.#corked = undefined
      for (const socket of corked) socket.uncork()
    }
  }

  deliver (message: FanoutMessage): void {
    const sockets = this.#send(message)
    if (message.timestamp !== undefined) this.#options.observer?.delivered(message.timestamp, sockets)
  }

  resubscribed (userIds: readonly string[]): void {
    for (const userId of userIds) {
      for (const tab of this.#tabs.get(userId)?.values() ?? []) {
        if (!tab.socket.open) continue
        if (tab.holding) {
          // Its replay may have read the inbox before the subscription was back: it reads once more.
          tab.markBehind()
        } else {
          tab.hold()
          this.#fill(tab, 'resubscribed')
        }
      }
    }
  }

  /** Offers the message to each tab of its user; returns how many took it (sent or held). */
  #send (message: FanoutMessage): number {
    const tabs = this.#tabs.get(message.userId)
    if (tabs === undefined) return 0
    const frame: OutboundFrame = { text: message.text, bytes: Buffer.byteLength(message.text), seq: message.seq, rev: message.rev, state: message.state }
    let took = 0
    for (const tab of tabs.values()) {
      if (this.#corked !== undefined && !this.#corked.has(tab.socket)) {
        this.#corked.add(tab.socket)
        tab.socket.cork()
      }
      const offered = tab.offer(frame)
      if (offered === 'dropped') continue
      took++
      if (offered === 'hole') this.#fill(tab, 'hole')
    }
    return took
  }

  /**
   * One round of pings: every user with tabs here, their feeds read a chunk at a time. The pings go
   * whatever the inbox does, without the feed when it fails or is slow (browsers take a silent
   * connection for dead), and then the rest of the round does not wait for it either.
   */
  async #pingAll (): Promise<void> {
    if (this.#pinging) return
    this.#pinging = true
    try {
      const userIds = [...this.#tabs.keys()]
      let reading = true
      for (let i = 0; i < userIds.length; i += PING_READ_USERS) {
        const chunk = userIds.slice(i, i + PING_READ_USERS)
        const feeds: Map<string, FeedState> | undefined = reading ? await this.#readFeeds(chunk) : undefined
        reading = feeds !== undefined
        for (const userId of chunk) this.#ping(userId, feeds?.get(userId))
        await yieldToEventLoop()
      }
    } finally {
      this.#pinging = false
    }
  }

  /** The feeds of `userIds`, or undefined when the inbox failed or did not answer within half a ping interval. */
  async #readFeeds (userIds: string[]): Promise<Map<string, FeedState> | undefined> {
    const read = this.#inbox.feeds(userIds).then((feeds) => {
      this.#pingReadFailing = false
      return feeds
    })
    try {
      return await within(read, this.#options.pingMs / 2, () => { throw new Error(`the inbox did not answer within ${this.#options.pingMs / 2} ms`) })
    } catch (error) {
      read.catch(() => {}) // a late failure of a read given up on
      if (!this.#pingReadFailing) this.#options.log.warn({ err: error }, 'Pings could not read the inbox: tabs are not checked for a lost last frame until it answers')
      this.#pingReadFailing = true
      return undefined
    }
  }

  /** Fills the user's tabs that are behind `feed`, then pings each (after the fill, for those). */
  #ping (userId: string, feed: FeedState | undefined): void {
    const tabs = this.#tabs.get(userId)
    if (tabs === undefined) return
    const text = pingFrame(feed === undefined ? undefined : tailOf(feed))
    const frame: OutboundFrame = { text, bytes: Buffer.byteLength(text), seq: undefined }
    for (const tab of tabs.values()) {
      if (!tab.socket.open) continue
      if (feed !== undefined && !tab.holding && (tab.lastSeq < feed.newestSeq || tab.lastRev < feed.rev)) {
        tab.hold()
        this.#fill(tab, 'ping')
      }
      tab.offer(frame)
    }
  }

  #fill (tab: Tab, cause: FillCause): void {
    this.#options.observer?.filling?.(cause)
    fillGap(tab, this.#inbox).catch((error: unknown) => {
      closeAfterFailedReplay(tab, error, this.#options.log, 'Filling a feed gap from the inbox')
    })
  }
}
