// The Redis fan-out as a contract node, for the standalone and the cluster test files.
import type { Test } from 'tap'
import { RedisFanout } from '../../server/fanout/redis-fanout.js'
import { RecordingReceiver, type FanoutNode } from '../fanout/contract.js'
import { eventually } from './eventually.js'
import { quiet } from './quiet-log.js'

/** A RedisFanout on `url` (a cluster's seeds with `cluster`), closed at teardown; `watch` waits for the SSUBSCRIBE to be confirmed. */
export async function redisFanoutNode (t: Test, url: string, cluster = false): Promise<FanoutNode & { fanout: RedisFanout }> {
  const receiver = new RecordingReceiver()
  const fanout = new RedisFanout({ url, ...(cluster ? { cluster: true } : {}), receiver, log: quiet })
  t.teardown(() => fanout.close())
  await eventually('connected', () => fanout.unreadyReasons().length === 0)
  return {
    fanout,
    receiver,
    watch: async (userId) => {
      const before = receiver.resubscriptions.length
      fanout.watch(userId)
      await receiver.until(`${userId} subscribed`, () => receiver.resubscriptions.slice(before).some((users) => users.includes(userId)))
    }
  }
}
