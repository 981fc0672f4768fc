import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { FeedClient, signIn } from '../helpers/clients.js'
import { startGateway } from '../helpers/gateway.js'

const run = promisify(execFile)

/** Runs curl exactly as the Go tutorial's README does, against this gateway. */
async function curl (...args: string[]): Promise<unknown> {
  const { stdout } = await run('curl', ['-s', ...args])
  return JSON.parse(stdout)
}

t.test('the Go tutorial\'s three curl commands, then its GET, with COMPAT_TUTORIAL=1', async (t) => {
  const gateway = await startGateway(t, { env: { COMPAT_TUTORIAL: '1' } })
  const emmaTab = await FeedClient.connect(gateway.url, await signIn(gateway.url, '1'))
  t.teardown(() => emmaTab.close())
  t.equal((await emmaTab.next()).type, 'ready')

  const sent = { message: 'Notification sent successfully!' }
  t.same(await curl('-X', 'POST', `${gateway.url}/send`, '-d', 'fromID=2&toID=1&message=Bruno started following you.'), sent)
  t.same(await curl('-X', 'POST', `${gateway.url}/send`, '-d', 'fromID=1&toID=2&message=Emma mentioned you in a comment: \'Great seeing you yesterday, @Bruno!\''), sent)
  t.same(await curl('-X', 'POST', `${gateway.url}/send`, '-d', 'fromID=4&toID=1&message=Lena liked your post: \'My weekend getaway!\''), sent)

  const live = [await emmaTab.nextOf('notification'), await emmaTab.nextOf('notification')]
  t.match(live[0]!.notification, { type: 'message', userId: '1', actor: { id: '2' }, message: 'Bruno started following you.' })
  t.match(live[1]!.notification, { type: 'message', userId: '1', actor: { id: '4' }, message: 'Lena liked your post: \'My weekend getaway!\'' },
    'Emma\'s open page gets both of hers live, as generic messages')

  t.same(await curl(`${gateway.url}/notifications/1`), {
    notifications: [
      { from: { id: 2, name: 'Bruno' }, to: { id: 1, name: 'Emma' }, message: 'Bruno started following you.' },
      { from: { id: 4, name: 'Lena' }, to: { id: 1, name: 'Emma' }, message: 'Lena liked your post: \'My weekend getaway!\'' }
    ]
  }, 'GET /notifications/1 answers in the tutorial\'s shape, oldest first')
  t.same(await curl(`${gateway.url}/notifications/3`), { message: 'No notifications found for user', notifications: [] })
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `${gateway.url}/send`, '-d', 'fromID=2&toID=42&message=hi'])
  t.equal(stdout, '404', 'an unknown user is a 404, as in the tutorial')
})
