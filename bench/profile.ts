import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface HotFunction {
  function: string
  /** Where it lives: a project file, a package (`node_modules/<name>`), or Node's internals. */
  location: string
  /** Share of the time the process was busy (idle samples left out). */
  selfPercent: number
}

export interface ProfileSummary {
  file: string
  seconds: number
  /** Share of samples in which the process was idle (waiting in the event loop). */
  idlePercent: number
  top: HotFunction[]
  /** Self time summed by package or project directory, as a share of the busy time. */
  byOwner: Array<{ owner: string, selfPercent: number }>
}

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number } }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

/** Reads the newest V8 CPU profile in `dir` (written by `node --cpu-prof`) and ranks self time. */
export async function summarizeProfile (dir: string, top = 20): Promise<ProfileSummary | undefined> {
  const files = (await readdir(dir).catch(() => [])).filter((name) => name.endsWith('.cpuprofile')).sort()
  const newest = files.at(-1)
  if (newest === undefined) return undefined
  const file = join(dir, newest)
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + delta)
    total += delta
  }
  const functions = new Map<string, HotFunction & { micros: number }>()
  const owners = new Map<string, number>()
  let idle = 0
  for (const [id, micros] of self) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    const name = frame.functionName || '(anonymous)'
    if (name === '(idle)') idle += micros
    const location = locate(frame.url, frame.lineNumber)
    const key = `${name} ${location}`
    const entry = functions.get(key) ?? { function: name, location, selfPercent: 0, micros: 0 }
    entry.micros += micros
    functions.set(key, entry)
    const owner = ownerOf(frame.url, name)
    owners.set(owner, (owners.get(owner) ?? 0) + micros)
  }
  // Idle time only says how long the run was; shares of the busy time compare across runs.
  const busy = Math.max(1, total - idle)
  const percent = (micros: number): number => Math.round(micros / busy * 1000) / 10
  return {
    file,
    seconds: Math.round((profile.endTime - profile.startTime) / 1e5) / 10,
    idlePercent: Math.round(idle / Math.max(1, total) * 1000) / 10,
    top: [...functions.values()].filter((entry) => entry.function !== '(idle)').sort((a, b) => b.micros - a.micros).slice(0, top)
      .map(({ micros, ...entry }) => ({ ...entry, selfPercent: percent(micros) })),
    byOwner: [...owners].filter(([owner]) => owner !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 15)
      .map(([owner, micros]) => ({ owner, selfPercent: percent(micros) }))
  }
}

function locate (url: string, line: number): string {
  if (url === '') return '(native)'
  const path = url.replace(/^file:\/\//, '')
  const inModules = path.lastIndexOf('node_modules/')
  const short = inModules >= 0 ? path.slice(inModules) : path.replace(/^.*?\/(dist|server|kafka)\//, '$1/')
  return `${short}:${line + 1}`
}

function ownerOf (url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)'
  if (url.startsWith('node:')) return 'node internals'
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (match !== null) return match[1]!
  const project = /\/(dist\/server|server|dist\/kafka|kafka)\/([^/]+)/.exec(url)
  return project === null ? url : `${project[1]}/${project[2]}`
}
