import t from 'tap'
import { notificationFrame, readyFrame, syncedFrame, unreadFrame, type Frame, type NotificationFrame } from '../../server/feed/frames.js'
import { followNotification, type Notification } from '../../server/notification.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }

t.test('a notification frame splices the stored JSON in and is the same as the object written out', async (t) => {
  const notification = followNotification(bruno, emma)
  const live = notificationFrame(JSON.stringify(notification), '9f3a0c21.7', 7, 3)
  const expected: NotificationFrame<Notification> = { type: 'notification', notification, cursor: '9f3a0c21.7', seq: 7, unread: 3 }
  t.same(JSON.parse(live), expected)
  t.equal(live, JSON.stringify(expected), 'byte for byte')
  const replayed = JSON.parse(notificationFrame(JSON.stringify(notification), '9f3a0c21.7', 7)) as Record<string, unknown>
  t.notOk('unread' in replayed, 'a replayed frame has no unread')
  const spaced = JSON.parse(notificationFrame(` ${JSON.stringify(notification, null, 2)} `, 'e.1', 1, 0)) as { notification: unknown }
  t.same(spaced.notification, notification, 'JSON as an external producer wrote it (whitespace) stays valid')
})

t.test('the other frames', async (t) => {
  const expected: Array<[string, Frame<Notification>]> = [
    [readyFrame(emma, 2, 'e.5', 5), { type: 'ready', user: emma, unread: 2, cursor: 'e.5', seq: 5 }],
    [syncedFrame('e.5', 5, false), { type: 'synced', cursor: 'e.5', seq: 5 }],
    [syncedFrame('e.5', 5, true), { type: 'synced', cursor: 'e.5', seq: 5, reset: true }],
    [unreadFrame(4), { type: 'unread', unread: 4 }]
  ]
  for (const [text, frame] of expected) {
    t.same(JSON.parse(text), frame)
    t.equal(text, JSON.stringify(frame), `${frame.type}: byte for byte, keys in the documented order`)
  }
})

t.test('a ready frame names the user by id and name only', async (t) => {
  t.same(JSON.parse(readyFrame({ ...emma, role: 'admin' } as typeof emma, 0, 'e.0', 0)).user, emma)
})
