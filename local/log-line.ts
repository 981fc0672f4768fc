// Gateway log lines for a terminal: pino writes one JSON object a line, made for machines.
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

/** A pino line as `INFO  message {the other fields}`, without time, pid and hostname; any other line as it is. */
export function readableLogLine (line: string): string {
  let entry: unknown
  try {
    entry = JSON.parse(line)
  } catch {
    return line
  }
  if (typeof entry !== 'object' || entry === null || !('level' in entry)) return line
  const { level, msg, time: _time, pid: _pid, hostname: _hostname, ...rest } = entry as Record<string, unknown>
  const name = typeof level === 'number' ? LEVELS[level] ?? String(level) : String(level)
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : ''
  return `${name.padEnd(5)} ${typeof msg === 'string' ? msg : ''}${extra}`
}
