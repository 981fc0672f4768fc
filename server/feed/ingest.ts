import type { Fanout, FanoutMessage } from '../fanout/types.js'
import type { AppendedNotification, AppendResult, Inbox } from '../inbox/types.js'
import type { BatchHandler } from '../kafka/types.js'
import { encodeCursor } from './cursor.js'
import { notificationFrame } from './frames.js'
import type { TailRepair } from './tail-repair.js'

/**
 * What the consumer does with each batch: store it (each record once, each id once), then publish
 * every new notification to the recipient's open tabs, wherever they are, one frame each, with the
 * unread count in it. A record consumed again (after a crash or rebalance) is not stored or
 * published twice. Published only once stored: a gateway that misses the frame finds it in the
 * inbox (see relay.ts). `onAppended`: how long the inbox took (for metrics).
 *
 * An append that fails may still have been stored (its COMMIT was durable, the answer lost): the
 * consumer's retry then finds every record applied and publishes nothing, so the batch's users'
 * tails are repaired from the inbox (tail-repair.ts).
 */
export function createIngest (inbox: Inbox, fanout: Fanout, tail: TailRepair, onAppended?: (seconds: number) => void): BatchHandler {
  return async (batch, positions) => {
    const started = performance.now()
    let result: AppendResult
    try {
      result = await inbox.append(batch, positions)
    } catch (error) {
      tail.repair(new Set(batch.map(({ notification }) => notification.userId)))
      throw error
    }
    onAppended?.((performance.now() - started) / 1000)
    const { appended } = result
    if (appended.length === 0) return
    const timestamps = new Map(batch.map((consumed) => [consumed.notification.id, consumed.timestamp]))
    const messages: FanoutMessage[] = []
    for (const stored of appended) {
      // No frame is made for a recipient nobody can be listening for.
      if (!fanout.mayReach(stored.notification.userId)) continue
      messages.push(liveMessage(inbox.epoch, stored, timestamps.get(stored.notification.id) ?? Date.now()))
    }
    // Not awaited: the inbox has the batch, and a slow Redis must not hold the consumer back.
    tail.publish(messages)
  }
}

/** The fan-out message of a notification just stored: its live frame; `timestamp`: the record's. */
export function liveMessage (epoch: string, { seq, notification, json, unread, rev, group }: AppendedNotification, timestamp: number): FanoutMessage {
  return { userId: notification.userId, text: notificationFrame(json, encodeCursor(epoch, seq, rev), seq, { unread, rev }, group), seq, rev, timestamp }
}
