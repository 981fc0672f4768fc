import type { Unready } from '../lifecycle.js'

/**
 * What travels the fan-out: a frame for one user's open sockets, on whichever gateway holds them.
 * `seq`: the notification's place in the user's feed (absent for frames that are neither a
 * notification nor a state change, e.g. `unread`);
 * `timestamp`: when Kafka got the record (for the delivery-latency metric).
 */
export interface FanoutMessage {
  userId: string
  text: string
  seq?: number
  /** A notification's: the feed's state revision when it was stored; a state change's: its own. */
  rev?: number
  /** A state change (its `seq` is the feed's newest notification when it was made). */
  state?: true
  timestamp?: number
}

/** Who a fan-out hands what it receives to (the feed relay). */
export interface FanoutReceiver {
  /** Runs `deliveries` (calls of `deliver` for frames that arrived together) so their writes leave together. */
  corked (deliveries: () => void): void
  /** A frame for a watched user, in publish order. */
  deliver (message: FanoutMessage): void
  /**
   * These users' subscription became active (first watch) or active again (a lost connection
   * came back): frames published before it may have been missed and must come from the inbox.
   */
  resubscribed (userIds: readonly string[]): void
}

/**
 * Carries the frames of consumed notifications (and read marks) to the gateways that hold the
 * recipient's sockets. At-most-once: a frame may be lost, never reordered; the per-user contiguous
 * `seq` and the inbox fill what is lost (see server/feed/relay.ts). No Fastify import here.
 */
export interface Fanout {
  /**
   * Hands one batch of frames on, each user's in order (across users too, except on a Redis
   * Cluster, where users on different shards travel apart). Never rejects: what cannot be
   * published is lost (and logged). Resolves once the frames were handed on (true) or some may be
   * lost (false: their users' tails need a repair, see server/feed/tail-repair.ts).
   */
  publish (messages: readonly FanoutMessage[]): Promise<boolean>
  /**
   * False when no publish for the user can reach anyone (the in-process fan-out knows nobody
   * watches them), so the frame need not be made at all; a shared fan-out cannot know, and says true.
   */
  mayReach (userId: string): boolean
  /** Frames for this user are wanted here (this gateway holds a socket of theirs); idempotent. */
  watch (userId: string): void
  /** No longer wanted here; idempotent. */
  unwatch (userId: string): void
  /** Why this fan-out cannot deliver right now, for /readyz; empty when it can. */
  unreadyReasons (): Unready[]
  close (): Promise<void>
}
