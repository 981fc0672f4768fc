import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { FakeBus } from '../helpers/fake-bus.js'
import { startGateway, tempDir } from '../helpers/gateway.js'

t.test('GET /api/users lists the directory, to anyone', async (t) => {
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false })
  const response = await app.inject({ method: 'GET', url: '/api/users' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^application\/json/)
  t.same(response.json(), {
    users: [
      { id: '1', name: 'Emma' },
      { id: '2', name: 'Bruno' },
      { id: '3', name: 'Rick' },
      { id: '4', name: 'Lena' }
    ]
  })
})

t.test('GET /api/users lists the users of USERS_FILE', async (t) => {
  const file = join(tempDir(t), 'users.json')
  await writeFile(file, JSON.stringify([{ id: 'ada', name: 'Ada' }, { id: 'alan', name: 'Alan' }]))
  const { app } = await startGateway(t, { bus: new FakeBus(), listen: false, env: { USERS_FILE: file } })
  const response = await app.inject({ method: 'GET', url: '/api/users' })
  t.same(response.json(), { users: [{ id: 'ada', name: 'Ada' }, { id: 'alan', name: 'Alan' }] })
})
