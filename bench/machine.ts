import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg, totalmem, release, platform } from 'node:os'
import { join } from 'node:path'
import { assetPath } from '../local/kafka/assets.js'
import { kafkaVersionOf } from '../local/kafka/jars.js'
import { projectRoot } from '../server/project-root.js'

export interface Machine {
  platform: string
  kernel: string
  cpus: number
  cpuModel: string
  memoryBytes: number
  /** 1, 5 and 15 minute load averages just before the run started. */
  loadAverageBefore: number[]
  openFilesHardLimit: string
  node: string
  kafka: string
  kafkajs: string
  /** The gateway's code: commit, and whether the working tree differed from it. */
  commit: string
  dirty: boolean
}

export function describeMachine (): Machine {
  const processors = cpus()
  return {
    platform: platform(),
    kernel: release(),
    cpus: processors.length,
    cpuModel: processors[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    loadAverageBefore: loadavg().map((value) => Math.round(value * 100) / 100),
    openFilesHardLimit: run('sh', ['-c', 'ulimit -Hn']) ?? 'unknown',
    node: process.version,
    kafka: kafkaVersion(),
    kafkajs: packageVersion('kafkajs'),
    commit: run('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown',
    dirty: (run('git', ['status', '--porcelain', '--', 'server', 'local', 'package.json']) ?? '') !== ''
  }
}

function kafkaVersion (): string {
  try {
    return kafkaVersionOf(readFileSync(assetPath('pom.xml'), 'utf8'))
  } catch {
    return 'unknown'
  }
}

function packageVersion (name: string): string {
  try {
    return (JSON.parse(readFileSync(join(projectRoot(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

function run (command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { cwd: projectRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}
