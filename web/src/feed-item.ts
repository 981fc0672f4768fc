import { el } from './dom.js'
import { groupSummary, type RowGroup } from './group-row.js'
import { itemActions } from './item-actions.js'
import { dataEntries, imageSource, itemLink, typeLabel } from './item-content.js'
import type { FeedNotification } from '../../client/types.js'

/** One row of the feed: a group's newest notification, with the group it stands for. */
export interface FeedEntry {
  notification: FeedNotification
  cursor: string
  /** The notification's place in the user's feed. */
  seq: number
  group: RowGroup
  archived: boolean
  /** Receive time minus createdAt, for notifications that arrived live. */
  latencyMs: number | null
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' })

export function relativeTime (time: number, now = Date.now()): string {
  const seconds = Math.round((time - now) / 1000)
  const size = Math.abs(seconds)
  if (size < 45) return relative.format(0, 'second')
  if (size < 45 * 60) return relative.format(Math.round(seconds / 60), 'minute')
  if (size < 22 * 3600) return relative.format(Math.round(seconds / 3600), 'hour')
  return relative.format(Math.round(seconds / 86_400), 'day')
}

/**
 * One feed item. Every field of the notification goes in as text or as an attribute of a vetted
 * URL (item-content.ts), never as markup: a notification is written by whoever can publish.
 */
export function feedItem ({ notification, cursor, seq, group, archived, latencyMs }: FeedEntry): HTMLLIElement {
  const read = group.unread === 0
  const created = Date.parse(notification.createdAt)
  const actorName = notification.actor?.name ?? 'kafka-notify'
  const link = itemLink(notification.url)
  const label = typeLabel(notification.type)
  const meta = el('p', { class: 'meta' },
    el('span', { class: 'new' }, 'New'),
    el('span', { class: 'actor' }, actorName),
    ' · ',
    el('time', { datetime: notification.createdAt, title: new Date(created).toLocaleString() }, relativeTime(created))
  )
  if (label !== null) meta.append(' · ', el('span', { class: 'type', 'data-testid': 'item-type' }, label))
  if (link?.host != null) meta.append(' · ', el('span', { class: 'host', 'data-testid': 'item-host' }, `${link.host} ↗`))
  if (latencyMs !== null) {
    meta.append(' · ', el('span', { class: 'latency', 'data-testid': 'latency' }, `arrived in ${Math.max(0, Math.round(latencyMs))} ms`))
  }

  // The link is the item's heading (the title, or else the message, or the group's summary); CSS
  // stretches it over the item.
  const summary = groupSummary(notification.type, group, notification.title ?? notification.message)
  const heading = summary ?? notification.title ?? notification.message
  const headingContent = link === null
    ? heading
    : el('a', {
      class: 'link',
      href: link.href,
      'data-testid': 'item-link',
      ...(link.external ? { target: '_blank', rel: 'noopener noreferrer' } : {})
    }, heading)
  const body = el('div', { class: 'body' })
  if (notification.title !== undefined && summary === null) {
    body.append(el('p', { class: 'title', 'data-testid': 'item-title' }, headingContent), el('p', { class: 'message' }, notification.message))
  } else {
    body.append(el('p', { class: 'message' }, headingContent))
  }
  const data = dataEntries(notification.data)
  if (data.length > 0) {
    body.append(el('dl', { class: 'data', 'data-testid': 'item-data' }, ...data.map(({ key, shown, full }) =>
      el('div', { title: `${key}: ${full}` }, el('dt', {}, key), el('dd', {}, shown)))))
  }
  body.append(meta)
  const actor = notification.actor === null ? null : { id: notification.actor.id, name: notification.actor.name }
  const controls = itemActions({ groupId: group.id, read, archived, actor, label: heading })

  return el('li', {
    class: link === null ? 'item' : 'item linked',
    'data-testid': 'feed-item',
    'data-id': notification.id,
    'data-group': group.id,
    'data-count': String(group.count),
    'data-type': notification.type,
    'data-cursor': cursor,
    'data-seq': String(seq),
    'data-created': String(created),
    'data-read': String(read)
  }, stackedAvatars(group) ?? avatar(actorName, imageSource(notification.actor?.avatarUrl)), body, controls)
}

/** Stacked initials of the group's actors, newest on top; null for a row of one actor (drawn by `avatar`). */
function stackedAvatars (group: RowGroup): HTMLElement | null {
  if (group.actorCount <= 1 || group.actors.length < 2) return null
  return el('span', { class: 'avatars', 'aria-hidden': 'true', 'data-testid': 'avatars' },
    ...group.actors.slice(0, 3).map((actor) => el('span', { class: 'avatar' }, initial(actor.name))))
}

function initial (name: string): string {
  return (Array.from(name)[0] ?? '').toUpperCase()
}

/** The actor's initial, under their picture when there is one: a picture that fails to load is removed, showing the initial. */
function avatar (name: string, source: string | null): HTMLElement {
  const node = el('span', { class: 'avatar', 'aria-hidden': 'true', 'data-testid': 'avatar' }, initial(name))
  if (source !== null) {
    // No referrer: the picture's host need not learn where the feed is.
    const image = el('img', { src: source, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer', 'data-testid': 'avatar-image' })
    image.addEventListener('error', () => image.remove(), { once: true })
    node.append(image)
  }
  return node
}
