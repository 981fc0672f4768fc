/** The feed's views: what is unread, everything in the inbox, the archive. */
export type InboxView = 'unread' | 'all' | 'archived'

/**
 * The tab bar over the feed (WAI-ARIA tabs: arrow keys move between them, only the selected one is
 * in the tab order). `onChange` hears the view the user picked.
 */
export class InboxTabs {
  readonly #tabs: HTMLButtonElement[]
  #view: InboxView = 'all'

  constructor (bar: HTMLElement, onChange: (view: InboxView) => void) {
    this.#tabs = [...bar.querySelectorAll<HTMLButtonElement>('[role="tab"]')]
    for (const tab of this.#tabs) {
      tab.addEventListener('click', () => {
        const view = tab.dataset.view as InboxView
        if (view === this.#view) return
        this.select(view)
        onChange(view)
      })
    }
    bar.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return
      const index = this.#tabs.findIndex((tab) => tab.dataset.view === this.#view)
      const next = this.#tabs[(index + (event.key === 'ArrowRight' ? 1 : this.#tabs.length - 1)) % this.#tabs.length]
      next?.click()
      next?.focus()
    })
    this.select('all')
  }

  get view (): InboxView {
    return this.#view
  }

  select (view: InboxView): void {
    this.#view = view
    for (const tab of this.#tabs) {
      const selected = tab.dataset.view === view
      tab.setAttribute('aria-selected', String(selected))
      tab.tabIndex = selected ? 0 : -1
    }
  }
}
