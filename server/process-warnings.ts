/**
 * Keeps the process's warning printers (Node's own, unless --no-warnings) from printing warnings
 * of the given names; every other warning reaches them as before.
 */
export function muteWarnings (names: readonly string[]): void {
  const printers = process.listeners('warning')
  for (const printer of printers) process.off('warning', printer)
  process.on('warning', (warning) => {
    if (names.includes(warning.name)) return
    for (const printer of printers) printer(warning)
  })
}
