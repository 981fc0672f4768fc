import t from 'tap'
import { MAX_DATA_ENTRIES, MAX_DATA_VALUE_LENGTH, dataEntries, imageSource, itemLink, typeLabel } from '../../web/src/item-content.js'

t.test('a path stays in this tab, an absolute http(s) URL opens in a new one, naming its host', async (t) => {
  t.same(itemLink('/posts/42#comment-7'), { href: '/posts/42#comment-7', external: false, host: null })
  t.same(itemLink('https://app.example.com/posts/42'), { href: 'https://app.example.com/posts/42', external: true, host: 'app.example.com' })
  t.same(itemLink('http://127.0.0.1:8080'), { href: 'http://127.0.0.1:8080', external: true, host: '127.0.0.1:8080' })
  t.equal(itemLink(undefined), null, 'no url, no link')
})

t.test('any other url is no link: script, data, other schemes, protocol-relative paths, spaces, control characters, backslashes', async (t) => {
  for (const url of [
    'javascript:alert(1)', 'JavaScript:alert(1)', ' javascript:alert(1)', 'java\tscript:alert(1)', 'data:text/html,<script>alert(1)</script>',
    'vbscript:x', 'ftp://example.com/', 'mailto:a@example.com', '//evil.example.com/', '/\\evil.example.com', 'https:///nohost',
    'https://exa mple.com/', 'posts/42', '', 'https://example.com/\u0000'
  ]) {
    t.equal(itemLink(url), null, JSON.stringify(url))
  }
})

t.test('an avatar is only an absolute http(s) URL', async (t) => {
  t.equal(imageSource('https://cdn.example.com/u-1.png'), 'https://cdn.example.com/u-1.png')
  for (const url of [undefined, '/u-1.png', 'javascript:alert(1)', 'data:image/png;base64,AAAA', '//cdn.example.com/u-1.png']) {
    t.equal(imageSource(url), null, String(url))
  }
})

t.test('data shows its top-level strings, numbers and booleans in order, leaving out nested values, nulls and the rest past the bound', async (t) => {
  t.same(dataEntries({ postId: 42, excerpt: 'Great point!', thread: { depth: 2 }, tags: ['a'], gone: null, paid: true, ratio: Number.NaN }), [
    { key: 'postId', shown: '42', full: '42' },
    { key: 'excerpt', shown: 'Great point!', full: 'Great point!' },
    { key: 'paid', shown: 'true', full: 'true' }
  ])
  const many = Object.fromEntries(Array.from({ length: MAX_DATA_ENTRIES + 3 }, (_, i) => [`k${i}`, i]))
  t.same(dataEntries(many).map(({ key }) => key), Array.from({ length: MAX_DATA_ENTRIES }, (_, i) => `k${i}`), `at most ${MAX_DATA_ENTRIES}`)
  t.same(dataEntries(undefined), [])
})

t.test('a long value is cut to its bound with an ellipsis, the whole of it kept for the tooltip', async (t) => {
  const long = '😀'.repeat(MAX_DATA_VALUE_LENGTH + 1)
  const [entry] = dataEntries({ long })
  t.equal(Array.from(entry!.shown).length, MAX_DATA_VALUE_LENGTH, 'counted in characters, never splitting one')
  t.ok(entry!.shown.endsWith('…'))
  t.equal(entry!.full, long)
  t.equal(dataEntries({ exact: 'x'.repeat(MAX_DATA_VALUE_LENGTH) })[0]!.shown.length, MAX_DATA_VALUE_LENGTH, 'a value at the bound is whole')
})

t.test('follows and messages get no type label; an app\'s own types do', async (t) => {
  t.equal(typeLabel('follow'), null)
  t.equal(typeLabel('message'), null)
  t.equal(typeLabel('comment.reply'), 'comment.reply')
})
