import { closeAfterFailedReplay, fillGap } from './catch-up.js'
import type { FanoutMessage, FanoutReceiver } from '../fanout/types.js'
import type { Connection, OutboundFrame } from '../hub/socket.js'
import type { FrameGate, Hub } from '../hub/hub.js'
import type { Inbox } from '../inbox/types.js'
import type { Logger } from '../logger.js'

export interface DeliveryObserver {
  /** A notification was handed to the recipient's open sockets; `recordTimestamp` is when Kafka got it. */
  delivered (recordTimestamp: number, sockets: number): void
}

export interface FeedRelayOptions {
  maxBufferedBytes: number
  log: Logger
  observer?: DeliveryObserver
}

/**
 * Between the fan-out and the hub: sends each tab of a user the live frames it can take in order,
 * so a client never sees a hole in its feed's `seq`. Per connection, a notification at or before
 * the tab's `lastSeq` is a repeat (dropped); lastSeq + 1 goes out; anything later means frames were
 * lost on the way (pub/sub is at-most-once): the tab holds its live frames, replays the hole from
 * the inbox, then releases them. A fan-out that lost its subscription has every tab of those users
 * caught up the same way.
 */
export class FeedRelay implements FanoutReceiver, FrameGate {
  readonly #hub: Hub
  readonly #inbox: Inbox
  readonly #options: FeedRelayOptions

  constructor (hub: Hub, inbox: Inbox, options: FeedRelayOptions) {
    this.#hub = hub
    this.#inbox = inbox
    this.#options = options
  }

  batch (deliveries: () => void): void {
    this.#hub.batch(deliveries)
  }

  deliver (message: FanoutMessage): void {
    const sockets = this.#hub.send(message.userId, message, this)
    if (message.timestamp !== undefined) this.#options.observer?.delivered(message.timestamp, sockets)
  }

  /** The hub asks this for each tab of the user, on the hot path: a few integer comparisons. */
  admit (connection: Connection, frame: OutboundFrame): boolean {
    const seq = frame.seq
    // Held (opening, or filling a gap): its release drops repeats and stops at holes.
    if (seq === undefined || connection.holding) return true
    const last = connection.lastSeq
    if (seq === last + 1) return true
    if (seq <= last || !connection.open) return false
    connection.hold() // this frame is the first held one
    this.#fill(connection)
    return true
  }

  resubscribed (userIds: readonly string[]): void {
    for (const userId of userIds) {
      for (const connection of this.#hub.connections(userId)) {
        if (!connection.open) continue
        if (connection.holding) {
          // Its replay may have read the inbox before the subscription was back: it reads once more.
          connection.markBehind()
        } else {
          connection.hold()
          this.#fill(connection)
        }
      }
    }
  }

  #fill (connection: Connection): void {
    fillGap(connection, this.#inbox, this.#options.maxBufferedBytes).catch((error: unknown) => {
      closeAfterFailedReplay(connection, error, this.#options.log, 'Filling a feed gap from the inbox')
    })
  }
}
