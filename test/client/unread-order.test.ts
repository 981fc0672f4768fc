import t from 'tap'
import { UnreadOrder } from '../../client/unread-order.js'

t.test('a count with a lower rev, or the same rev and a lower seq, is older: not taken', async (t) => {
  const order = new UnreadOrder()
  order.reset({ rev: 2, seq: 5 })
  t.equal(order.accept({ rev: 2, seq: 6 }), true, 'a notification after ready')
  t.equal(order.accept({ rev: 2, seq: 5 }), false, 'one before it, at the same rev')
  t.equal(order.accept({ rev: 1, seq: 9 }), false, 'a lower rev, whatever its seq')
  t.equal(order.accept({ rev: 2, seq: 6 }), true, 'the same stamp again (a ping of the same state)')
  t.equal(order.accept({ rev: 3 }), true, 'a read mark after it')
  t.equal(order.accept({ rev: 2, seq: 7 }), false, 'a notification counted before that read mark, arriving late')
  t.equal(order.accept({ rev: 3, seq: 7 }), true, 'one counted after it')
})

t.test('a count without a seq (a read mark\'s) is the first of its rev: one already taken at that rev is as new or newer', async (t) => {
  const order = new UnreadOrder()
  order.reset({ rev: 0, seq: 0 })
  t.equal(order.accept({ rev: 1 }), true, 'the read mark\'s answer')
  t.equal(order.accept({ rev: 1 }), false, 'its unread frame, the same count')
  t.equal(order.accept({ rev: 1, seq: 3 }), true, 'a notification counted after the mark')
  t.equal(order.accept({ rev: 1 }), false, 'a late answer of the mark is older than that')
})

t.test('counts without a rev (an older gateway) are always taken; ready starts over, even lower (a new inbox)', async (t) => {
  const order = new UnreadOrder()
  t.equal(order.accept({}), true)
  t.equal(order.accept({ seq: 3 }), true)
  order.reset({ rev: 5, seq: 10 })
  order.reset({ rev: 0, seq: 0 })
  t.equal(order.accept({ rev: 0, seq: 1 }), true, 'after a ready at rev 0, rev 0 counts again')
  order.reset({})
  t.equal(order.accept({ rev: 0, seq: 0 }), true, 'a ready without a rev forgets every stamp')
})
