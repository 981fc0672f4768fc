import t from 'tap'
import { closeFrame, frameHead, notificationFrame, pingFrame, preferencesFrame, readyFrame, stateFrame, syncedFrame, unreadFrame, type Frame, type NotificationFrame } from '../../server/feed/frames.js'
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
  const group = { id: notification.id, key: 'follow', count: 2, actorCount: 2, actors: [bruno, { id: '3', name: 'Rick' }] }
  const grouped = notificationFrame(JSON.stringify(notification), '9f3a0c21.7.2', 7, { unread: 3, rev: 2 }, group)
  const expectedGrouped: NotificationFrame<Notification> = { type: 'notification', notification, cursor: '9f3a0c21.7.2', seq: 7, unread: 3, rev: 2, group }
  t.equal(grouped, JSON.stringify(expectedGrouped), 'a grouped live frame carries its group last, byte for byte')
  t.same(frameHead(grouped), { type: 'notification', cursor: '9f3a0c21.7.2' }, 'the group (names included) does not hide the cursor')
})

t.test('the other frames', async (t) => {
  const expected: Array<[string, Frame<Notification>]> = [
    [readyFrame(emma, 'e.5', { seq: 5, rev: 3, unread: 2 }, 0, 30_000), { type: 'ready', user: emma, unread: 2, unseen: 0, cursor: 'e.5', seq: 5, rev: 3, pingMs: 30_000 }],
    [syncedFrame('e.5.2', 5, 2, false), { type: 'synced', cursor: 'e.5.2', seq: 5, rev: 2 }],
    [syncedFrame('e.5.2', 5, 2, true), { type: 'synced', cursor: 'e.5.2', seq: 5, rev: 2, reset: true }],
    [stateFrame({ rev: 4, seq: 5, changes: [{ op: 'archive', ids: ['a'] }], unread: 1, unseen: 2, cursor: 'e.5.4' }), { type: 'state', rev: 4, seq: 5, changes: [{ op: 'archive', ids: ['a'] }], unread: 1, unseen: 2, cursor: 'e.5.4' }],
    [preferencesFrame({ types: ['follow'], actors: [] }), { type: 'preferences', muted: { types: ['follow'], actors: [] } }],
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
  t.same(JSON.parse(readyFrame({ ...emma, role: 'admin' } as typeof emma, 'e.0', { seq: 0, rev: 0, unread: 0 }, 0, 30_000)).user, emma)
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
    [readyFrame(tricky, 'e.5', { seq: 5, rev: 3, unread: 2 }, 0, 30_000), { type: 'ready', cursor: 'e.5' }],
    [syncedFrame('e.5', 5, 0, true), { type: 'synced', cursor: 'e.5' }],
    [stateFrame({ rev: 1, seq: 5, changes: [{ op: 'seen', upToSeq: 5 }], unread: 0, unseen: 0, cursor: 'e.5.1' }), { type: 'state', cursor: 'e.5.1' }],
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
