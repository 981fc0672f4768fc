import { encodeCursor } from './cursor.js'
import type { Fanout, FanoutMessage } from '../fanout/types.js'
import { notificationFrame } from './frames.js'
import type { Inbox } from '../inbox/types.js'
import type { BatchHandler } from '../kafka/types.js'

/**
 * What the consumer does with each batch: persist it (each record once, each id once), then
 * publish every new notification to the recipient's open tabs, wherever they are, one frame each,
 * with the unread count in it. A record consumed again (after a crash or rebalance) is not stored
 * or published twice. Published only once stored: a gateway that misses the frame finds it in the
 * inbox (see relay.ts).
 */
export function createDeliveryHandler (inbox: Inbox, fanout: Fanout, onAppended?: (seconds: number) => void): BatchHandler {
  return async (batch) => {
    const started = performance.now()
    const { appended } = await inbox.append(batch)
    onAppended?.((performance.now() - started) / 1000)
    if (appended.length === 0) return
    const timestamps = new Map(batch.map((consumed) => [consumed.notification.id, consumed.timestamp]))
    const messages: FanoutMessage[] = []
    for (const { seq, notification, json, unread } of appended) {
      // No frame is made for a recipient nobody can be listening for.
      if (!fanout.mayReach(notification.userId)) continue
      messages.push({
        userId: notification.userId,
        text: notificationFrame(json, encodeCursor(inbox.epoch, seq), seq, unread),
        seq,
        timestamp: timestamps.get(notification.id) ?? Date.now()
      })
    }
    // Not awaited: the inbox has the batch, and a slow Redis must not hold the consumer back.
    void fanout.publish(messages)
  }
}
