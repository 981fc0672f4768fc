import { readFile } from 'node:fs/promises'
import { Ajv } from 'ajv'
import type { FromSchema } from 'json-schema-to-ts'

export const USER_ID_PATTERN = '^[A-Za-z0-9_.@-]{1,64}$'

/** A user as every API shows one: a directory entry, a notification's actor. */
export const userRefSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    id: { type: 'string', pattern: USER_ID_PATTERN },
    name: { type: 'string', minLength: 1, maxLength: 200 }
  }
} as const

export type User = FromSchema<typeof userRefSchema>

/** The users the gateway knows: who may sign in, follow and be notified. Read-only at run time. */
export interface Directory {
  get (id: string): User | undefined
  list (): readonly User[]
  readonly size: number
}

/** The directory of the original Go tutorial. */
export const DEFAULT_USERS: readonly User[] = [
  { id: '1', name: 'Emma' },
  { id: '2', name: 'Bruno' },
  { id: '3', name: 'Rick' },
  { id: '4', name: 'Lena' }
]

const validateUsers = new Ajv().compile({ type: 'array', items: userRefSchema })

export function createDirectory (users: readonly User[]): Directory {
  const byId = new Map<string, User>()
  for (const user of users) {
    if (byId.has(user.id)) throw new Error(`Duplicate user id ${JSON.stringify(user.id)} in the user directory`)
    byId.set(user.id, Object.freeze({ id: user.id, name: user.name }))
  }
  const list = Object.freeze([...byId.values()])
  return {
    get: (id) => byId.get(id),
    list: () => list,
    size: list.length
  }
}

/** Loads USERS_FILE (a JSON array of `{ id, name }`), or the default directory when none is given. */
export async function loadDirectory (file: string | undefined): Promise<Directory> {
  if (file === undefined) return createDirectory(DEFAULT_USERS)
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch (error) {
    throw new Error(`USERS_FILE ${file}: cannot read it as JSON (${(error as Error).message})`, { cause: error })
  }
  if (!validateUsers(parsed)) {
    const first = validateUsers.errors?.[0]
    throw new Error(`USERS_FILE ${file}: must be an array of { "id", "name" }: ${first?.instancePath ?? ''} ${first?.message ?? ''}`)
  }
  return createDirectory(parsed as User[])
}
