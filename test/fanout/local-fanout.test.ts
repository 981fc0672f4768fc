import t from 'tap'
import { LocalFanout } from '../../server/fanout/local-fanout.js'
import { fanoutContract, notification, RecordingReceiver, unread } from './contract.js'

fanoutContract(t, async (t) => {
  const receiver = new RecordingReceiver()
  const fanout = new LocalFanout(receiver)
  t.teardown(() => fanout.close())
  return { fanout, receiver, watch: async (userId) => { fanout.watch(userId) } }
})

t.test('a publish is delivered before it returns, in one corked call', async (t) => {
  const receiver = new RecordingReceiver()
  const fanout = new LocalFanout(receiver)
  fanout.watch('1')
  void fanout.publish([notification('1', 1), unread('1', 1), notification('1', 2)])
  t.equal(receiver.delivered.length, 3, 'synchronously')
  t.equal(receiver.corkings, 1, 'one corked call: the sockets it writes to are corked once')
  void fanout.publish([])
  t.equal(receiver.corkings, 1, 'an empty publish corks nothing')
})

t.test('a user nobody watches here cannot be reached, so no frame need be made for them', async (t) => {
  const fanout = new LocalFanout(new RecordingReceiver())
  t.equal(fanout.mayReach('1'), false)
  fanout.watch('1')
  t.equal(fanout.mayReach('1'), true)
  fanout.unwatch('1')
  t.equal(fanout.mayReach('1'), false)
})

t.test('it never reports a resubscribe: nothing it carries is ever lost', async (t) => {
  const receiver = new RecordingReceiver()
  const fanout = new LocalFanout(receiver)
  fanout.watch('1')
  fanout.unwatch('1')
  fanout.watch('1')
  await fanout.publish([notification('1', 1)])
  t.same(receiver.resubscriptions, [])
})
