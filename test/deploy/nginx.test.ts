import { readFileSync } from 'node:fs'
import t from 'tap'

const conf = readFileSync(new URL('../../deploy/nginx.conf', import.meta.url), 'utf8')
  .split('\n').map((line) => line.replace(/#.*$/, '')).join('\n')

/** nginx variables that hold the query string: `$request` (the request line), `$request_uri`, `$args`, `$query_string`, `$arg_…`. */
const QUERY = /\$(request|request_uri|args|query_string|arg_\w+)\b/

// The shipped nginx.conf logged nginx's default format, whose request line
// carries /ws?token=… into the access log.
t.test('deploy/nginx.conf logs no query string: every access log uses a format without one', async (t) => {
  const formats = new Map([...conf.matchAll(/log_format\s+(\S+)\s+([^;]+);/g)].map((match) => [match[1]!, match[2]!]))
  const logs = [...conf.matchAll(/access_log\s+([^;]+);/g)].map((match) => match[1]!.trim().split(/\s+/))
  t.ok(logs.length > 0, 'it sets its access log')
  for (const [path, format] of logs) {
    if (path === 'off') continue
    t.ok(format !== undefined && formats.has(format), `${path} names a format of its own (nginx's default, combined, logs the query)`)
    t.notMatch(formats.get(format ?? '') ?? '$request', QUERY, `${format ?? 'combined'} has no variable holding the query`)
  }
})
