import type { Fanout, FanoutMessage } from '../fanout/types.js'
import type { AppendedNotification, Inbox } from '../inbox/types.js'
import type { BatchHandler } from '../kafka/types.js'
import { encodeCursor } from './cursor.js'
import { notificationFrame } from './frames.js'

/**
 * What the consumer does with each batch: store it (each record once, each id once), then publish
 * every new notification to the recipient's open tabs, wherever they are, one frame each, with the
 * unread count in it. A record consumed again (after a crash or rebalance) is not stored or
 * published twice. Published only once stored: a gateway that misses the frame finds it in the
 * inbox (see relay.ts). `onAppended`: how long the inbox took (for metrics).
 */
export function createIngest (inbox: Inbox, fanout: Fanout, onAppended?: (seconds: number) => void): BatchHandler {
  return async (batch) => {
    const started = performance.now()
    const { appended } = await inbox.append(batch)
    onAppended?.((performance.now() - started) / 1000)
    if (appended.length === 0) return
    const timestamps = new Map(batch.map((consumed) => [consumed.notification.id, consumed.timestamp]))
    const messages: FanoutMessage[] = []
    for (const stored of appended) {
      // No frame is made for a recipient nobody can be listening for.
      if (!fanout.mayReach(stored.notification.userId)) continue
      messages.push(liveMessage(inbox.epoch, stored, timestamps.get(stored.notification.id) ?? Date.now()))
    }
    // Not awaited: the inbox has the batch, and a slow Redis must not hold the consumer back.
    void fanout.publish(messages)
  }
}

/** The fan-out message of a notification just stored: its live frame; `timestamp`: the record's. */
export function liveMessage (epoch: string, { seq, notification, json, unread }: AppendedNotification, timestamp: number): FanoutMessage {
  return { userId: notification.userId, text: notificationFrame(json, encodeCursor(epoch, seq), seq, unread), seq, timestamp }
}
