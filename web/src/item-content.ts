/**
 * What of a notification's app fields the page may show, decided before anything reaches the DOM:
 * which `url` becomes a link (and where it opens), which `avatarUrl` an image, which `data` entries a
 * line of text. The gateway refuses anything else already; the page checks again, so a record that
 * reached the inbox some other way still cannot make it run script.
 */

/** Where a click on an item leads: `external` opens in a new tab. */
export interface ItemLink {
  href: string
  external: boolean
  /** The host an external link leads to, shown beside it. */
  host: string | null
}

/** Data entries shown at most; the rest are for the app's own client. */
export const MAX_DATA_ENTRIES = 6
/** Longer values are cut, with the whole value in a tooltip. */
export const MAX_DATA_VALUE_LENGTH = 80

/** Spaces, control characters and backslashes: browsers drop or reinterpret them (`/\host` is `//host`). */
function hasUnsafeCharacter (url: string): boolean {
  for (let i = 0; i < url.length; i++) {
    const code = url.charCodeAt(i)
    if (code <= 0x20 || code === 0x7f || code === 0x5c) return true
  }
  return false
}

/**
 * A path (`/…`, never `//…`) stays in this tab; an absolute http(s) URL with a host opens in a new
 * one, as a link out of the feed; anything else is no link (null).
 */
export function itemLink (url: string | undefined): ItemLink | null {
  if (url === undefined || hasUnsafeCharacter(url)) return null
  if (url.startsWith('/')) {
    if (url.startsWith('//')) return null
    return { href: url, external: false, host: null }
  }
  const target = webUrl(url)
  return target === null ? null : { href: url, external: true, host: target.host }
}

/** An avatar's source: only absolute http(s) URLs. */
export function imageSource (url: string | undefined): string | null {
  return url === undefined || hasUnsafeCharacter(url) || webUrl(url) === null ? null : url
}

function webUrl (url: string): URL | null {
  if (!/^https?:\/\/[^/?#]/i.test(url)) return null
  try {
    const parsed = new URL(url)
    return (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.host !== '' ? parsed : null
  } catch {
    return null
  }
}

/** One `data` entry as text: `full` is the whole value, `shown` at most MAX_DATA_VALUE_LENGTH characters of it. */
export interface DataEntry {
  key: string
  shown: string
  full: string
}

/**
 * The top-level entries of `data` whose values are strings, finite numbers or booleans, in the
 * object's own order, at most MAX_DATA_ENTRIES. Nested objects, arrays and nulls are left out: they
 * have no one-line form worth reading.
 */
export function dataEntries (data: Record<string, unknown> | undefined): DataEntry[] {
  if (data === undefined || data === null || typeof data !== 'object') return []
  const entries: DataEntry[] = []
  for (const [key, value] of Object.entries(data)) {
    if (entries.length === MAX_DATA_ENTRIES) break
    const full = scalarText(value)
    if (full === null) continue
    const characters = Array.from(full)
    const shown = characters.length > MAX_DATA_VALUE_LENGTH ? `${characters.slice(0, MAX_DATA_VALUE_LENGTH - 1).join('')}…` : full
    entries.push({ key, shown, full })
  }
  return entries
}

function scalarText (value: unknown): string | null {
  if (typeof value === 'string') return value
  if (typeof value === 'boolean') return String(value)
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return null
}

/** The type shown as a label: an app's own types; follows and messages speak for themselves. */
export function typeLabel (type: string): string | null {
  return type === 'follow' || type === 'message' ? null : type
}
