import t from 'tap'
import { notificationFrame, readyFrame, syncedFrame, unreadFrame } from '../../server/feed/frames.js'
import { followNotification } from '../../server/notification.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }

t.test('a notification frame splices the stored JSON in and is the same as the object written out', async (t) => {
  const notification = followNotification(bruno, emma)
  const live = notificationFrame(JSON.stringify(notification), '9f3a0c21.7', 7, 3)
  t.same(JSON.parse(live), { type: 'notification', notification, cursor: '9f3a0c21.7', seq: 7, unread: 3 })
  t.equal(live, JSON.stringify({ type: 'notification', notification, cursor: '9f3a0c21.7', seq: 7, unread: 3 }), 'byte for byte')
  const replayed = JSON.parse(notificationFrame(JSON.stringify(notification), '9f3a0c21.7', 7)) as Record<string, unknown>
  t.notOk('unread' in replayed, 'a replayed frame has no unread')
  const spaced = JSON.parse(notificationFrame(` ${JSON.stringify(notification, null, 2)} `, 'e.1', 1, 0)) as { notification: unknown }
  t.same(spaced.notification, notification, 'JSON as an external producer wrote it (whitespace) stays valid')
})

t.test('the other frames', async (t) => {
  t.same(JSON.parse(readyFrame(emma, 2, 'e.5', 5)), { type: 'ready', user: emma, unread: 2, cursor: 'e.5', seq: 5 })
  t.same(JSON.parse(syncedFrame('e.5', 5, false)), { type: 'synced', cursor: 'e.5', seq: 5 })
  t.same(JSON.parse(syncedFrame('e.5', 5, true)), { type: 'synced', cursor: 'e.5', seq: 5, reset: true })
  t.same(JSON.parse(unreadFrame(4)), { type: 'unread', unread: 4 })
})
