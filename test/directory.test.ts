import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createDirectory, DEFAULT_USERS, loadDirectory } from '../server/directory.js'
import { tempDir } from './helpers/gateway.js'

t.test('without USERS_FILE the directory is the Go tutorial\'s four users', async (t) => {
  const directory = await loadDirectory(undefined)
  t.same(directory.list(), [
    { id: '1', name: 'Emma' },
    { id: '2', name: 'Bruno' },
    { id: '3', name: 'Rick' },
    { id: '4', name: 'Lena' }
  ])
  t.equal(directory.size, 4)
  t.same(directory.get('2'), { id: '2', name: 'Bruno' })
  t.equal(directory.get('5'), undefined)
  t.equal(directory.get('Emma'), undefined, 'looks up by id, not name')
  t.same(DEFAULT_USERS, directory.list())
})

t.test('the directory cannot be changed through what it returns', async (t) => {
  const directory = createDirectory(DEFAULT_USERS)
  t.ok(Object.isFrozen(directory.list()))
  t.ok(Object.isFrozen(directory.get('1')))
})

t.test('USERS_FILE replaces the default users', async (t) => {
  const file = join(tempDir(t), 'users.json')
  await writeFile(file, JSON.stringify([{ id: 'alice', name: 'Alice' }, { id: 'bob@example.com', name: 'Bob' }]))
  const directory = await loadDirectory(file)
  t.equal(directory.size, 2)
  t.same(directory.list(), [{ id: 'alice', name: 'Alice' }, { id: 'bob@example.com', name: 'Bob' }])
  t.same(directory.get('bob@example.com'), { id: 'bob@example.com', name: 'Bob' })
  t.equal(directory.get('1'), undefined, 'the default users are gone')
})

t.test('a USERS_FILE that is not JSON is refused, naming the file', async (t) => {
  const file = join(tempDir(t), 'users.json')
  await writeFile(file, '[{ id: 1, name: "Emma" ')
  await t.rejects(loadDirectory(file), { message: /USERS_FILE .*users\.json: cannot read it as JSON/ })
})

t.test('a missing USERS_FILE is refused, naming the file', async (t) => {
  const file = join(tempDir(t), 'nowhere.json')
  await t.rejects(loadDirectory(file), { message: /USERS_FILE .*nowhere\.json/ })
})

t.test('a USERS_FILE of the wrong shape is refused, saying where', async (t) => {
  const dir = tempDir(t)
  const shapes: Array<[string, unknown, RegExp]> = [
    ['an object', { users: [] }, /must be an array/],
    ['a numeric id', [{ id: 1, name: 'Emma' }], /\/0\/id/],
    ['a missing name', [{ id: '1' }], /name/],
    ['an empty name', [{ id: '1', name: '' }], /\/0\/name/],
    ['an extra field', [{ id: '1', name: 'Emma', email: 'emma@example.com' }], /additional properties/],
    ['an id with a space', [{ id: '1', name: 'Emma' }, { id: 'a b', name: 'Ab' }], /\/1\/id/],
    ['a null entry', [null], /\/0/]
  ]
  for (const [what, content, detail] of shapes) {
    const file = join(dir, `${what.replaceAll(' ', '-')}.json`)
    await writeFile(file, JSON.stringify(content))
    await t.rejects(loadDirectory(file), { message: /USERS_FILE .*: must be an array of/ }, what)
    await t.rejects(loadDirectory(file), { message: detail }, `${what}: the message says where`)
  }
})

t.test('duplicate ids are refused, naming the id', async (t) => {
  const file = join(tempDir(t), 'users.json')
  await writeFile(file, JSON.stringify([{ id: '7', name: 'Ann' }, { id: '8', name: 'Ben' }, { id: '7', name: 'Another Ann' }]))
  await t.rejects(loadDirectory(file), { message: 'Duplicate user id "7" in the user directory' })
  t.throws(() => createDirectory([{ id: 'x', name: 'X' }, { id: 'x', name: 'Y' }]), { message: /Duplicate user id "x"/ })
})

t.test('50,000 users load, every one of them findable', async (t) => {
  const count = 50_000
  const users = Array.from({ length: count }, (_, i) => ({ id: `user-${i}`, name: `User number ${i}` }))
  const file = join(tempDir(t), 'users.json')
  await writeFile(file, JSON.stringify(users))
  const directory = await loadDirectory(file)
  t.equal(directory.size, count)
  t.equal(directory.list().length, count)
  t.same(directory.list()[0], users[0], 'file order is kept')
  t.same(directory.list()[count - 1], users[count - 1])
  let found = 0
  for (const user of users) {
    const got = directory.get(user.id)
    if (got?.id === user.id && got.name === user.name) found++
  }
  t.equal(found, count, 'every user is found by id with its name')
  t.equal(directory.get(`user-${count}`), undefined)
})
