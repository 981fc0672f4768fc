/**
 * Arguments for `spawn('sh', …)` that run a command under a watchdog shell. Node holds the only
 * write end of the shell's stdin: when Node dies for any reason (SIGKILL included) the watcher's
 * read sees EOF and stops the command (SIGTERM, then SIGKILL after `graceSeconds`), so nothing
 * outlives its owner. SIGTERM or SIGINT to the shell is passed on to the command, and the shell
 * exits with the command's status. The shell's first stdout line is the command's pid; the
 * command's own stdout goes to stderr.
 */
export function watchdogArgs (name: string, graceSeconds: number, command: string, args: string[]): string[] {
  return ['-c', script(graceSeconds), name, command, ...args]
}

function script (graceSeconds: number): string {
  return `
exec 3<&0 </dev/null
"$@" >&2 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
echo "$child"
(
  while read -r _ <&3; do :; done
  kill -TERM "$child" 2>/dev/null
  i=0
  while kill -0 "$child" 2>/dev/null && [ "$i" -lt ${graceSeconds} ]; do sleep 1; i=$((i + 1)); done
  kill -KILL "$child" 2>/dev/null
) &
watcher=$!
# 2>/dev/null: the shell would report a command killed by a signal ("Killed") on stderr.
wait "$child" 2>/dev/null
status=$?
while kill -0 "$child" 2>/dev/null; do wait "$child" 2>/dev/null; status=$?; done
kill "$watcher" 2>/dev/null
exit "$status"
`
}
