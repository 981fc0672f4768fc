/**
 * The bell: how many notifications came since the user last saw the feed (`unseen`), on the bell
 * and in the document title. The feed counts as seen while the page is visible, the inbox (not the
 * archive) is shown and the top of the list is on screen (`top`: what new rows appear under; a list
 * scrolled past its top shows none of them); then `markSeen` is called (once at a time), and the server's
 * `unseen` follows in every tab.
 */
export class Bell {
  readonly #badge: HTMLElement
  readonly #bell: HTMLElement
  readonly #markSeen: () => Promise<unknown>
  #title = 'kafka-notify'
  #unseen = 0
  #onScreen = false
  #inboxShown = true
  #marking = false

  constructor (bell: HTMLElement, badge: HTMLElement, top: HTMLElement, markSeen: () => Promise<unknown>) {
    this.#bell = bell
    this.#badge = badge
    this.#markSeen = markSeen
    new IntersectionObserver((entries) => {
      this.#onScreen = entries.some((entry) => entry.isIntersecting)
      this.#check()
    }).observe(top)
    document.addEventListener('visibilitychange', () => this.#check())
  }

  /** The title without the count ("Emma · kafka-notify"). */
  setTitle (title: string): void {
    this.#title = title
    this.#draw()
  }

  /** Whether the list shows the inbox (Unread, All), where new notifications are, or the archive. */
  showingInbox (value: boolean): void {
    this.#inboxShown = value
    this.#check()
  }

  show (unseen: number): void {
    this.#unseen = unseen
    this.#draw()
    this.#check()
  }

  #draw (): void {
    const count = this.#unseen
    this.#badge.textContent = count > 99 ? '99+' : String(count)
    this.#badge.dataset.count = String(count)
    this.#badge.hidden = count === 0
    this.#bell.setAttribute('aria-label', count === 0 ? 'No new notifications' : `${count} new notifications: show them`)
    document.title = count === 0 ? this.#title : `(${count}) ${this.#title}`
  }

  #check (): void {
    if (this.#unseen === 0 || !this.#onScreen || !this.#inboxShown || document.visibilityState !== 'visible' || this.#marking) return
    this.#marking = true
    // A failure leaves the count as it is; the next change of it tries again.
    this.#markSeen().catch(() => {}).finally(() => { this.#marking = false })
  }
}
