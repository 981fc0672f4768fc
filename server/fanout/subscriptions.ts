import type { Logger } from '../logger.js'
import type { FanoutReceiver } from './types.js'
import type { Unready } from '../lifecycle.js'

export const CHANNEL_PREFIX = 'notify:user:'

/** The channel of a user's frames. */
export function channelOf (userId: string): string {
  return CHANNEL_PREFIX + userId
}

/**
 * The users whose channels the Redis fan-out's subscriber holds, and how they are (re)subscribed:
 * once a user's subscription is active (again), the receiver hears `resubscribed` for them, so
 * frames published before are caught up from the inbox.
 */
export interface Subscriptions {
  /** Subscribed here now (a frame for the user is wanted), whatever the connection's state. */
  has (userId: string): boolean
  add (userId: string): void
  remove (userId: string): void
  unreadyReasons (): Unready[]
  close (): Promise<void>
}

export interface SubscriptionsOptions {
  receiver: FanoutReceiver
  log: Logger
  /** Each message of a subscribed channel, in arrival order. */
  onMessage: (channel: string, payload: string) => void
}
