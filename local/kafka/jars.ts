import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { assetPath } from './assets.js'
import { errorText, LocalKafkaError, OR_USE_DOCKER } from './errors.js'
import { secondsSince } from './node.js'

export interface KafkaJarsOptions {
  /** Jar cache; default `$KAFKA_NOTIFY_CACHE/kafka-<version>`, else `~/.cache/kafka-notify/kafka-<version>`. */
  cacheDir?: string
  /** Progress lines for humans. */
  log?: (line: string) => void
}

type Log = (line: string) => void

const JARS_STAMP = '.complete'
const execFileAsync = promisify(execFile)

/** Fetches the broker's jars with Maven once; returns the directory that holds them. */
export async function ensureKafkaJars (opts: KafkaJarsOptions = {}): Promise<string> {
  const pom = await readFile(assetPath('pom.xml'), 'utf8')
  const stamp = createHash('sha256').update(pom).digest('hex')
  const dir = opts.cacheDir ?? defaultCacheDir(pom)
  if (await isFetched(dir, stamp)) return dir

  await checkMaven()
  // Maven writes into a private directory that is renamed into place only when complete,
  // so an interrupted fetch never leaves a cache that looks usable.
  const partial = `${dir}.partial-${process.pid}`
  await rm(partial, { recursive: true, force: true })
  await mkdir(partial, { recursive: true })
  try {
    await fetchJars(partial, opts.log ?? noop)
    await writeFile(join(partial, JARS_STAMP), stamp)
    if (await isFetched(dir, stamp)) return dir // another process finished first
    // Replace only a cache of another pom.xml: never delete a directory we did not write.
    if (existsSync(join(dir, JARS_STAMP))) await rm(dir, { recursive: true, force: true })
    await rename(partial, dir)
  } catch (err) {
    if (err instanceof LocalKafkaError) throw err
    throw new LocalKafkaError('FETCH_FAILED', `Could not store the Kafka jars in ${dir}: ${String(err)}`, { cause: err })
  } finally {
    await rm(partial, { recursive: true, force: true })
  }
  return dir
}

/** Fails with JAVA_MISSING, saying what to install, unless `java` on PATH is Java 17 or later. */
export async function checkJava (): Promise<void> {
  const install = 'Install a JDK or JRE 17+ (e.g. `apt-get install openjdk-17-jre-headless`, or from adoptium.net).'
  let versionText: string
  try {
    versionText = (await execFileAsync('java', ['-version'])).stderr
  } catch (err) {
    throw new LocalKafkaError('JAVA_MISSING',
      `The local Kafka broker needs Java 17 or later, and \`java -version\` failed: ${errorText(err)}. ${install} ${OR_USE_DOCKER}`,
      { cause: err })
  }
  const major = javaMajorVersion(versionText)
  if (major < 17) {
    throw new LocalKafkaError('JAVA_MISSING',
      `The local Kafka broker needs Java 17 or later; \`java\` on PATH is Java ${major}. ${install} ${OR_USE_DOCKER}`)
  }
}

function javaMajorVersion (versionText: string): number {
  const [, first = '0', second = '0'] = /version "(\d+)(?:\.(\d+))?/.exec(versionText) ?? []
  return first === '1' ? Number(second) : Number(first) // "1.8.0" is Java 8
}

async function checkMaven (): Promise<void> {
  try {
    await execFileAsync('mvn', ['-v'])
  } catch (err) {
    throw new LocalKafkaError('MAVEN_MISSING',
      `The first start of the local Kafka broker downloads its jars with Maven, and \`mvn -v\` failed: ${errorText(err)}. ` +
      `Install Maven 3.6+ (e.g. \`apt-get install maven\`, or from maven.apache.org). ${OR_USE_DOCKER}`,
      { cause: err })
  }
}

/** The Kafka version a pom.xml fetches. */
export function kafkaVersionOf (pom: string): string {
  return /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1] ?? 'unknown'
}

function defaultCacheDir (pom: string): string {
  const version = kafkaVersionOf(pom)
  const root = process.env.KAFKA_NOTIFY_CACHE || join(homedir(), '.cache', 'kafka-notify')
  return join(root, `kafka-${version}`)
}

async function isFetched (dir: string, stamp: string): Promise<boolean> {
  return await readFile(join(dir, JARS_STAMP), 'utf8').catch(() => '') === stamp
}

const DOWNLOADED = /^\[INFO\] Downloaded from [^:]+: \S+ \(([\d.]+) (B|kB|MB|GB) at/
const UNIT_BYTES: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }

async function fetchJars (outDir: string, log: Log): Promise<void> {
  const startedAt = performance.now()
  log(`Fetching Apache Kafka with Maven (first start only, about 45 MB) into ${outDir.replace(/\.partial-\d+$/, '')}`)
  const mvn = spawn('mvn', ['-B', '-f', assetPath('pom.xml'), 'dependency:copy-dependencies',
    '-DincludeScope=runtime', `-DoutputDirectory=${outDir}`], { stdio: ['ignore', 'pipe', 'pipe'] })

  const tail: string[] = []
  const downloaded = { files: 0, bytes: 0 }
  const onLine = (line: string): void => {
    tail.push(line)
    if (tail.length > 40) tail.shift()
    const [, size, unit = 'B'] = DOWNLOADED.exec(line) ?? []
    if (size === undefined) return
    downloaded.files++
    downloaded.bytes += Number(size) * (UNIT_BYTES[unit] ?? 1)
  }
  createInterface({ input: mvn.stdout }).on('line', onLine)
  createInterface({ input: mvn.stderr }).on('line', onLine)

  let reported = 0
  const ticker = setInterval(() => {
    if (downloaded.files === reported) return
    reported = downloaded.files
    log(`  downloaded ${downloaded.files} files, ${megabytes(downloaded.bytes)} MB`)
  }, 2000)
  let exitCode: number | null
  try {
    [exitCode] = await once(mvn, 'close') as [number | null]
  } catch (err) {
    throw new LocalKafkaError('FETCH_FAILED', `Could not run Maven: ${errorText(err)}`, { cause: err })
  } finally {
    clearInterval(ticker)
  }
  if (exitCode !== 0) {
    const errors = tail.filter(line => line.startsWith('[ERROR]'))
    throw new LocalKafkaError('FETCH_FAILED',
      `Maven could not fetch the Kafka jars (exit code ${exitCode}):\n${(errors.length > 0 ? errors : tail).join('\n')}`)
  }
  const jars = (await readdir(outDir)).filter(name => name.endsWith('.jar'))
  const sizes = await Promise.all(jars.map(async name => (await stat(join(outDir, name))).size))
  log(`Kafka jars ready: ${jars.length} jars, ${megabytes(sizes.reduce((a, b) => a + b, 0))} MB in ${secondsSince(startedAt)} s`)
}

function megabytes (bytes: number): string {
  return (bytes / 1e6).toFixed(1)
}

function noop (): void {}
