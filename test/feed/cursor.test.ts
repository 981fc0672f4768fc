import t from 'tap'
import { CURSOR_PATTERN, decodeCursor, encodeCursor, resumeAfter } from '../../server/feed/cursor.js'

t.test('a cursor is the epoch, the seq and the rev, and reads back as them', async (t) => {
  t.equal(encodeCursor('9f3a0c21', 7, 3), '9f3a0c21.7.3')
  t.same(decodeCursor(encodeCursor('9f3a0c21', 7, 3)), { epoch: '9f3a0c21', seq: 7, rev: 3 })
  t.equal(encodeCursor('9f3a0c21', 7), '9f3a0c21.7', 'without a rev: a position among notifications only (history\'s cursors)')
  t.same(decodeCursor(encodeCursor('9f3a0c21', 7)), { epoch: '9f3a0c21', seq: 7, rev: undefined }, 'which resumes no state change')
  t.same(decodeCursor('0'), { epoch: undefined, seq: 0, rev: undefined }, '"0": the beginning of any feed')
  t.same(decodeCursor('42'), { epoch: undefined, seq: 42, rev: undefined }, 'a bare seq of the old, epoch-less format')
})

t.test('the pattern takes the cursors the gateway hands out, "0" and the old format, and nothing else', async (t) => {
  const pattern = new RegExp(CURSOR_PATTERN)
  for (const cursor of ['0', '42', '9f3a0c21.0', '9f3a0c21.0.0', 'k3j9x2.123456789012345.123456789012345', encodeCursor('z'.repeat(16), 1), encodeCursor('z'.repeat(16), 1, 2)]) t.match(cursor, pattern, cursor)
  for (const cursor of ['', '.1', '9f3a0c21.', '9F3A.1', 'a.b', '1.2.3.4', '9f3a.1.', '9f3a.1.x', '-1', 'a'.repeat(17) + '.1', '1'.repeat(16)]) t.notMatch(cursor, pattern, JSON.stringify(cursor))
})

t.test('a feed continues after a cursor of its epoch that it reached; anything else cannot be continued', async (t) => {
  t.equal(resumeAfter(decodeCursor('e1.5'), 'e1', 9), 5)
  t.equal(resumeAfter(decodeCursor('e1.9'), 'e1', 9), 9, 'the newest position')
  t.equal(resumeAfter(decodeCursor('0'), 'e1', 9), 0, '"0" is the beginning of any feed')
  t.equal(resumeAfter(decodeCursor('0'), 'e1', 0), 0, 'also of an empty one')
  t.equal(resumeAfter(decodeCursor('e1.10'), 'e1', 9), undefined, 'a position this feed never reached')
  t.equal(resumeAfter(decodeCursor('e0.5'), 'e1', 9), undefined, 'another epoch: the store may have lost writes since')
  t.equal(resumeAfter(decodeCursor('5'), 'e1', 9), undefined, 'the old format names no epoch')
})
