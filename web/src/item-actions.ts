import { el } from './dom.js'

/** What a row's controls do; the row's group id (or its notification's id) names what they act on. */
export type ItemAction = 'read' | 'unread' | 'archive' | 'unarchive' | 'delete' | 'mute'

export interface ActionTarget {
  groupId: string
  /** Whether every notification of the row is read. */
  read: boolean
  archived: boolean
  /** The actor to mute from the menu, when the row has one. */
  actor: { id: string, name: string } | null
  /** What the row says, for the buttons' accessible names. */
  label: string
}

/**
 * A row's controls: mark read or unread and archive (or unarchive) as buttons, delete and mute in a
 * small menu (a `<details>`: keyboard and screen readers know it), so a phone-width row keeps room
 * for its text. Each control has `data-action`, and an aria label naming the row.
 */
export function itemActions (target: ActionTarget): HTMLElement {
  const button = (action: ItemAction, text: string, label: string): HTMLButtonElement =>
    el('button', { type: 'button', class: 'action', 'data-action': action, 'data-testid': `action-${action}`, 'aria-label': `${label}: ${target.label}` }, text)
  const menuItems = [button('delete', 'Delete', 'Delete')]
  if (target.actor !== null) menuItems.push(button('mute', `Mute ${target.actor.name}`, `Mute ${target.actor.name}, from`))
  return el('div', { class: 'actions' },
    target.read ? button('unread', 'Mark unread', 'Mark unread') : button('read', 'Mark read', 'Mark read'),
    target.archived ? button('unarchive', 'Unarchive', 'Unarchive') : button('archive', 'Archive', 'Archive'),
    el('details', { class: 'menu' },
      el('summary', { 'aria-label': `More actions: ${target.label}`, 'data-testid': 'action-menu' }, '⋯'),
      el('div', { class: 'menu-items' }, ...menuItems)))
}
