import t from 'tap'
import { closeFrame, frameHead, notificationFrame, pingFrame, readyFrame, syncedFrame, unreadFrame, type Frame, type NotificationFrame } from '../../server/feed/frames.js'
import { followNotification, type Notification } from '../../server/notification.js'

const emma = { id: '1', name: 'Emma' }
const bruno = { id: '2', name: 'Bruno' }

t.test('a notification frame splices the stored JSON in and is the same as the object written out', async (t) => {
  const notification = followNotification(bruno, emma)
  const live = notificationFrame(JSON.stringify(notification), '9f3a0c21.7', 7, { unread: 3, rev: 2 })
  const expected: NotificationFrame<Notification> = { type: 'notification', notification, cursor: '9f3a0c21.7', seq: 7, unread: 3, rev: 2 }
  t.same(JSON.parse(live), expected)
  t.equal(live, JSON.stringify(expected), 'byte for byte')
  const replayed = JSON.parse(notificationFrame(JSON.stringify(notification), '9f3a0c21.7', 7)) as Record<string, unknown>
  t.notOk('unread' in replayed || 'rev' in replayed, 'a replayed frame has no unread count, nor its rev')
  const spaced = JSON.parse(notificationFrame(` ${JSON.stringify(notification, null, 2)} `, 'e.1', 1, { unread: 0, rev: 0 })) as { notification: unknown }
  t.same(spaced.notification, notification, 'JSON as an external producer wrote it (whitespace) stays valid')
})

t.test('the other frames', async (t) => {
  const expected: Array<[string, Frame<Notification>]> = [
    [readyFrame(emma, 'e.5', { seq: 5, rev: 3, unread: 2 }, 30_000), { type: 'ready', user: emma, unread: 2, cursor: 'e.5', seq: 5, rev: 3, pingMs: 30_000 }],
    [syncedFrame('e.5', 5, false), { type: 'synced', cursor: 'e.5', seq: 5 }],
    [syncedFrame('e.5', 5, true), { type: 'synced', cursor: 'e.5', seq: 5, reset: true }],
    [unreadFrame(4, 3), { type: 'unread', unread: 4, rev: 3 }],
    [pingFrame({ seq: 5, rev: 3, unread: 4 }), { type: 'ping', seq: 5, rev: 3, unread: 4 }],
    [pingFrame(undefined), { type: 'ping' }]
  ]
  for (const [text, frame] of expected) {
    t.same(JSON.parse(text), frame)
    t.equal(text, JSON.stringify(frame), `${frame.type}: byte for byte, keys in the documented order`)
  }
})

t.test('a ready frame names the user by id and name only', async (t) => {
  t.same(JSON.parse(readyFrame({ ...emma, role: 'admin' } as typeof emma, 'e.0', { seq: 0, rev: 0, unread: 0 }, 30_000)).user, emma)
})

t.test('a close frame carries a WebSocket close code and its reason', async (t) => {
  const text = closeFrame(4029, 'too many connections for this user (at most 20)')
  t.equal(text, '{"type":"close","code":4029,"reason":"too many connections for this user (at most 20)"}')
})

t.test('frameHead reads the type and cursor of every frame without parsing it, whatever the notification and the user name hold', async (t) => {
  const notification = { ...followNotification(bruno, emma), message: 'say ,"cursor":"e.999" and {"type":"x"}' }
  const tricky = { id: '1', name: 'x","cursor":"e.666' }
  const cases: Array<[string, { type: string, cursor: string | undefined }]> = [
    [notificationFrame(JSON.stringify(notification), 'e.7', 7, { unread: 1, rev: 0 }), { type: 'notification', cursor: 'e.7' }],
    [notificationFrame(`{"data":{"cursor":"e.1"},${JSON.stringify(notification).slice(1)}`, 'e.8', 8), { type: 'notification', cursor: 'e.8' }],
    [readyFrame(tricky, 'e.5', { seq: 5, rev: 3, unread: 2 }, 30_000), { type: 'ready', cursor: 'e.5' }],
    [syncedFrame('e.5', 5, true), { type: 'synced', cursor: 'e.5' }],
    [unreadFrame(4, 3), { type: 'unread', cursor: undefined }],
    [pingFrame({ seq: 5, rev: 3, unread: 4 }), { type: 'ping', cursor: undefined }],
    [closeFrame(1001, 'server shutting down'), { type: 'close', cursor: undefined }]
  ]
  for (const [text, head] of cases) {
    t.same(frameHead(text), head, text)
    const parsed = JSON.parse(text) as { type: string, cursor?: string }
    t.same(frameHead(text), { type: parsed.type, cursor: parsed.cursor }, 'as parsing it would say')
  }
})
