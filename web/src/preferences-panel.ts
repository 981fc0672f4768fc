import type { Muted } from '../../client/types.js'
import { el } from './dom.js'

/**
 * The mute lists: a switch for follows, and the people muted from an item's menu, each with
 * "Unmute". `save` replaces the lists on the server (every tab then hears `preferences`); a failure
 * of the panel's own controls goes to `report` (`mute` rejects: its caller reports).
 */
export class PreferencesPanel {
  readonly #follows: HTMLInputElement
  readonly #people: HTMLElement
  readonly #save: (muted: Muted) => Promise<void>
  readonly #nameOf: (id: string) => string | null
  readonly #report: (error: unknown) => void
  #muted: Muted = { types: [], actors: [] }

  /** `nameOf`: a person's name from the directory, null when it does not list them. */
  constructor (follows: HTMLInputElement, people: HTMLElement, options: {
    save: (muted: Muted) => Promise<void>
    nameOf: (id: string) => string | null
    report: (error: unknown) => void
  }) {
    this.#follows = follows
    this.#people = people
    this.#save = options.save
    this.#nameOf = options.nameOf
    this.#report = options.report
    follows.addEventListener('change', () => {
      const types = this.#muted.types.filter((type) => type !== 'follow')
      this.#saveFromPanel({ ...this.#muted, types: follows.checked ? [...types, 'follow'] : types })
    })
  }

  get muted (): Muted {
    return this.#muted
  }

  show (muted: Muted): void {
    this.#muted = muted
    this.#follows.checked = muted.types.includes('follow')
    this.#people.replaceChildren(...muted.actors.map((id) => {
      const name = this.#nameOf(id) ?? `#${id}`
      const unmute = el('button', { type: 'button', class: 'quiet', 'data-testid': 'unmute', 'aria-label': `Unmute ${name}` }, 'Unmute')
      unmute.addEventListener('click', () => this.#saveFromPanel({ ...this.#muted, actors: this.#muted.actors.filter((actor) => actor !== id) }))
      return el('li', { 'data-user-id': id }, el('span', {}, name), unmute)
    }))
    if (muted.actors.length === 0) this.#people.append(el('li', { class: 'hint' }, 'No one muted. Mute a person from an item\'s ⋯ menu.'))
  }

  #saveFromPanel (muted: Muted): void {
    // The switch goes back to what the server has.
    this.#save(muted).catch((error: unknown) => {
      this.show(this.#muted)
      this.#report(error)
    })
  }

  mute (actorId: string): Promise<void> {
    if (this.#muted.actors.includes(actorId)) return Promise.resolve()
    return this.#save({ ...this.#muted, actors: [...this.#muted.actors, actorId] })
  }
}
