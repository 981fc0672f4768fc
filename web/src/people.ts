import { describeError } from './describe-error.js'
import { el } from './dom.js'
import { FollowKeys } from './follow-keys.js'
import type { User } from '../../client/types.js'

/** Users whose name or id contains the query, case-insensitive: the first `limit` of them and how many matched. */
export function matchUsers (users: readonly User[], query: string, limit: number, except: string | null = null): { matches: User[], total: number } {
  const needle = query.trim().toLowerCase()
  const matches: User[] = []
  let total = 0
  for (const user of users) {
    if (user.id === except) continue
    if (needle !== '' && !user.name.toLowerCase().includes(needle) && !user.id.includes(needle)) continue
    total++
    if (matches.length < limit) matches.push(user)
  }
  return { matches, total }
}

const SHOWN = 50

/** The people list: a follow button next to every other user, filtered for large directories. */
export class People {
  readonly #list: HTMLElement
  readonly #summary: HTMLElement
  readonly #send: (followeeId: string, idempotencyKey: string) => Promise<unknown>
  #users: readonly User[] = []
  #self: string | null = null
  #query = ''
  readonly #keys = new FollowKeys()
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>()

  constructor (list: HTMLElement, summary: HTMLElement, send: (followeeId: string, idempotencyKey: string) => Promise<unknown>) {
    this.#list = list
    this.#summary = summary
    this.#send = send
  }

  update (change: { users?: readonly User[], self?: string | null, query?: string }): void {
    if (change.users !== undefined) this.#users = change.users
    if (change.self !== undefined) this.#self = change.self
    if (change.query !== undefined) this.#query = change.query
    this.#render()
  }

  #render (): void {
    const { matches, total } = matchUsers(this.#users, this.#query, SHOWN, this.#self)
    this.#list.replaceChildren(...matches.map((user) => this.#row(user)))
    this.#summary.textContent = total === 0
      ? 'Nobody matches.'
      : total > matches.length ? `Showing ${matches.length} of ${total.toLocaleString()}; type to narrow down.` : ''
  }

  #row (user: User): HTMLLIElement {
    const button = el('button', { type: 'button', class: 'follow', 'data-testid': 'follow', 'data-user-id': user.id, 'aria-label': `Follow ${user.name}` }, 'Follow')
    const status = el('span', { class: 'follow-status', role: 'status', 'data-testid': 'follow-status', 'data-user-id': user.id })
    button.addEventListener('click', () => { void this.#follow(user, button, status) })
    return el('li', { class: 'person' },
      el('span', { class: 'name' }, user.name, ' ', el('span', { class: 'user-id' }, `#${user.id}`)),
      status,
      button
    )
  }

  async #follow (user: User, button: HTMLButtonElement, status: HTMLElement): Promise<void> {
    clearTimeout(this.#timers.get(user.id))
    const key = this.#keys.keyFor(user.id)
    button.disabled = true
    button.textContent = 'Following…'
    status.textContent = ''
    status.classList.remove('error')
    let done: string
    try {
      await this.#send(user.id, key)
      this.#keys.succeeded(user.id)
      button.textContent = done = 'Sent'
    } catch (error) {
      this.#keys.failed(user.id, error)
      button.textContent = 'Follow'
      status.textContent = done = describeError(error)
      status.classList.add('error')
    }
    button.disabled = false
    this.#timers.set(user.id, setTimeout(() => {
      if (button.textContent === done) button.textContent = 'Follow'
      if (status.textContent === done) status.textContent = ''
    }, done === 'Sent' ? 2_000 : 6_000))
  }
}
