import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { watchdogArgs } from './watchdog.js'

export interface KafkaJarsOptions {
  /** Jar cache; default `$KAFKA_NOTIFY_CACHE/kafka-<version>`, else `~/.cache/kafka-notify/kafka-<version>`. */
  cacheDir?: string
  /** Progress lines for humans. */
  log?: (line: string) => void
}

export interface LocalKafkaOptions extends KafkaJarsOptions {
  /** Broker storage, logs and settings go to `<dataDir>/kafka`; a restart on the same dir keeps the data. */
  dataDir: string
  /** PLAINTEXT port; 0 or undefined: the port of the last start on this dataDir, else a free one. */
  port?: number
  /** CONTROLLER port; 0 or undefined: a free one. Ignored once the dataDir is formatted. */
  controllerPort?: number
  /** JVM heap options; default `-Xms128m -Xmx512m`. */
  heap?: string
  /** How long the broker may take to serve requests once its jars are there; default 120 s. */
  startTimeoutMs?: number
}

export interface LocalKafka {
  brokers: string[]
  /** Process id of the broker's JVM. */
  pid: number
  /** Stops the broker (SIGTERM, then SIGKILL after 15 s); safe to call more than once. */
  stop(): Promise<void>
}

export type LocalKafkaErrorCode = 'JAVA_MISSING' | 'MAVEN_MISSING' | 'FETCH_FAILED' | 'START_FAILED' | 'START_TIMEOUT'

export class LocalKafkaError extends Error {
  readonly code: LocalKafkaErrorCode

  constructor (code: LocalKafkaErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'LocalKafkaError'
    this.code = code
  }
}

interface BrokerPorts { port: number, controllerPort: number }

interface BrokerLayout { root: string, data: string, logs: string, properties: string, ports: string }

interface BrokerProcess { pid: number, exited: Promise<string>, stop(): Promise<void> }

type LogExcerpt = () => Promise<string>

type Log = (line: string) => void

const DEFAULT_HEAP = '-Xms128m -Xmx512m'
const DEFAULT_START_TIMEOUT_MS = 120_000
const STOP_GRACE_SECONDS = 15
const PROBE_INTERVAL_MS = 200
const JARS_STAMP = '.complete'
const OR_USE_DOCKER = 'Or use a Kafka broker of your own: set KAFKA_BROKERS, e.g. run `docker compose up -d` ' +
  'with the repo\'s docker-compose.yml and set KAFKA_BROKERS=127.0.0.1:9092.'

// Compiled to dist/kafka/, this module still reads pom.xml and the configs from kafka/.
const here = fileURLToPath(new URL('.', import.meta.url))
const assetsDir = existsSync(join(here, 'pom.xml')) ? here : join(here, '..', '..', 'kafka')
const execFileAsync = promisify(execFile)

/** Fetches the broker's jars with Maven once; returns the directory that holds them. */
export async function ensureKafkaJars (opts: KafkaJarsOptions = {}): Promise<string> {
  const pom = await readFile(join(assetsDir, 'pom.xml'), 'utf8')
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

/** Starts a single-node KRaft broker on 127.0.0.1 and resolves once it serves requests. */
export async function startLocalKafka (opts: LocalKafkaOptions): Promise<LocalKafka> {
  const log = opts.log ?? noop
  await checkJava()
  const libs = await ensureKafkaJars(opts)
  const startedAt = performance.now()

  const layout = brokerLayout(opts.dataDir)
  await mkdir(layout.logs, { recursive: true })
  const ports = await choosePorts(layout, opts, log)
  await writeFile(layout.ports, JSON.stringify(ports) + '\n')
  await writeServerProperties(layout, ports)
  const jvm = jvmArgs(libs, layout, opts.heap ?? DEFAULT_HEAP)
  await formatStorage(jvm, layout)

  const excerpt = await logExcerptFromHere(layout)
  const broker = await launch([...jvm, 'kafka.Kafka', layout.properties], layout, excerpt, log)
  const address = `127.0.0.1:${ports.port}`
  try {
    await waitUntilReady(address, broker, opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS, excerpt)
  } catch (err) {
    await broker.stop()
    throw err
  }
  log(`Kafka ready at ${address} in ${secondsSince(startedAt)} s`)
  return { brokers: [address], pid: broker.pid, stop: broker.stop }
}

async function checkJava (): Promise<void> {
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

function defaultCacheDir (pom: string): string {
  const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1] ?? 'unknown'
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
  const mvn = spawn('mvn', ['-B', '-f', join(assetsDir, 'pom.xml'), 'dependency:copy-dependencies',
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

function brokerLayout (dataDir: string): BrokerLayout {
  const root = join(dataDir, 'kafka')
  return {
    root,
    data: join(root, 'data'),
    logs: join(root, 'logs'),
    properties: join(root, 'server.properties'),
    ports: join(root, 'ports.json')
  }
}

// `StorageTool format --standalone` records the controller's endpoint in the metadata log, so a
// formatted dataDir must keep its controller port for good; reformatting would lose its data.
// The client port may change (the broker registers its listeners anew at each start), but
// reusing it keeps a restarted broker at the same address.
async function choosePorts (layout: BrokerLayout, opts: LocalKafkaOptions, log: Log): Promise<BrokerPorts> {
  const stored = await readFile(layout.ports, 'utf8').then(text => JSON.parse(text) as BrokerPorts).catch(() => undefined)
  const formatted = existsSync(join(layout.data, 'meta.properties'))
  if (formatted && stored === undefined) {
    throw new LocalKafkaError('START_FAILED',
      `${layout.root} holds Kafka data but not ${layout.ports}, which records its controller port; delete ${layout.root} to start afresh.`)
  }
  const [freePort = 0, freeControllerPort = 0] = await freePorts(2)
  const requested = opts.controllerPort || undefined
  if (stored !== undefined && requested !== undefined && requested !== stored.controllerPort) {
    log(`Kafka: keeping controller port ${stored.controllerPort} of ${layout.root} (it is recorded in its metadata), not ${requested}`)
  }
  const ports = {
    port: opts.port || stored?.port || freePort,
    controllerPort: stored?.controllerPort ?? requested ?? freeControllerPort
  }
  // Another broker on the port would answer the readiness probe while ours fails to bind.
  for (const [name, port] of [['LOCAL_KAFKA_PORT', ports.port], ['LOCAL_KAFKA_CONTROLLER_PORT', ports.controllerPort]] as const) {
    if (!await isFree(port)) {
      throw new LocalKafkaError('START_FAILED',
        `Port ${port} on 127.0.0.1 is in use (another Kafka?): set ${name} to a free port. ${OR_USE_DOCKER}`)
    }
  }
  return ports
}

async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  try {
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    return true
  } catch {
    return false
  } finally {
    server.close()
  }
}

async function freePorts (count: number): Promise<number[]> {
  // All listen at once, so the ports differ from each other.
  const servers = Array.from({ length: count }, () => createServer().listen(0, '127.0.0.1'))
  await Promise.all(servers.map(async server => await once(server, 'listening')))
  const ports = servers.map(server => (server.address() as AddressInfo).port)
  await Promise.all(servers.map(async server => await new Promise(resolve => server.close(resolve))))
  return ports
}

async function writeServerProperties (layout: BrokerLayout, ports: BrokerPorts): Promise<void> {
  const values: Record<string, string> = {
    PORT: String(ports.port),
    CONTROLLER_PORT: String(ports.controllerPort),
    LOG_DIR: layout.data
  }
  const template = await readFile(join(assetsDir, 'server.properties'), 'utf8')
  const properties = template.replace(/@([A-Z_]+)@/g, (_match, name: string) => {
    const value = values[name]
    if (value === undefined) throw new Error(`kafka/server.properties: unknown placeholder @${name}@`)
    return value
  })
  await writeFile(layout.properties, properties)
}

function jvmArgs (libs: string, layout: BrokerLayout, heap: string): string[] {
  return [
    ...heap.split(/\s+/).filter(Boolean),
    // The GC settings of Kafka's own start scripts: short pauses matter more than throughput.
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    // Log4j's own shutdown hook races Kafka's and would drop the log of the broker's shutdown.
    '-Dlog4j2.shutdownHookEnabled=false',
    `-Dlog4j2.configurationFile=${join(assetsDir, 'log4j2.yaml')}`,
    `-Dkafka.logs.dir=${layout.logs}`,
    '-cp',
    join(libs, '*')
  ]
}

async function formatStorage (jvm: string[], layout: BrokerLayout): Promise<void> {
  if (existsSync(join(layout.data, 'meta.properties'))) return
  // The format of Kafka's Uuid; like Kafka's own generator, never one starting with '-', which
  // the storage tool's argument parser would take for an option.
  let clusterId = randomBytes(16).toString('base64url')
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url')
  try {
    await execFileAsync('java', [...jvm, 'kafka.tools.StorageTool', 'format', '--standalone',
      '-t', clusterId, '-c', layout.properties, '-g'])
  } catch (err) {
    throw new LocalKafkaError('START_FAILED', `Could not format Kafka storage in ${layout.data}: ${errorText(err)}`, { cause: err })
  }
}

async function launch (args: string[], layout: BrokerLayout, excerpt: LogExcerpt, log: Log): Promise<BrokerProcess> {
  const watchdog = spawn('sh', watchdogArgs('kafka-watchdog', STOP_GRACE_SECONDS, 'java', args), {
    detached: true, // its own process group, so one signal reaches the JVM and the watcher
    stdio: ['pipe', 'pipe', 'inherit']
  })
  let stopping = false
  const exited = new Promise<string>(resolve => {
    watchdog.once('error', err => { resolve(err.message) })
    watchdog.once('exit', (code, signal) => {
      killGroup(watchdog, 'SIGKILL') // if the shell was killed, its JVM must not outlive it
      const status = code === null ? `signal ${signal ?? '?'}` : `exit code ${code}`
      if (!stopping) log(`Kafka broker at ${layout.root} exited unexpectedly (${status})`)
      resolve(status)
    })
  })
  const pidLine = once(createInterface({ input: watchdog.stdout as Socket }), 'line') as Promise<[string]>
  const [pid] = await Promise.race([pidLine, failOnExit(exited, excerpt)])
  // A forgotten broker must not keep Node running: when Node exits, the watchdog stops the JVM.
  // (Only from here on: until the pid line came, nothing else kept Node running.)
  watchdog.unref()
  for (const pipe of [watchdog.stdin, watchdog.stdout]) (pipe as Socket | null)?.unref()

  const terminate = async (): Promise<void> => {
    stopping = true
    watchdog.kill('SIGTERM')
    const grace = new AbortController()
    const timedOut = await Promise.race([
      exited.then(() => false),
      delay(STOP_GRACE_SECONDS * 1000, true, { signal: grace.signal })
    ])
    grace.abort()
    if (timedOut) {
      killGroup(watchdog, 'SIGKILL')
      await exited
    }
  }
  let stopped: Promise<void> | undefined
  return { pid: Number(pid), exited, stop: async () => { stopped ??= terminate(); await stopped } }
}

function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // the group is already gone
  }
}

async function failOnExit (exited: Promise<string>, excerpt: LogExcerpt): Promise<never> {
  const status = await exited
  throw new LocalKafkaError('START_FAILED', `The Kafka broker exited during start-up (${status}).${await excerpt()}`)
}

async function waitUntilReady (address: string, broker: BrokerProcess, timeoutMs: number, excerpt: LogExcerpt): Promise<void> {
  const abort = new AbortController()
  const timeout = async (): Promise<never> => {
    await delay(timeoutMs, undefined, { signal: abort.signal })
    throw new LocalKafkaError('START_TIMEOUT',
      `The Kafka broker at ${address} did not serve requests within ${timeoutMs / 1000} s.${await excerpt()}`)
  }
  try {
    await Promise.race([waitUntilServing(address, abort.signal), failOnExit(broker.exited, excerpt), timeout()])
  } finally {
    abort.abort()
  }
}

// A broker accepts connections before it is unfenced and able to serve: only a real request
// answered tells that it is ready. Asking about a group also creates the offsets topic on a
// new broker and waits out its loading on a restarted one, so the owner's consumer group can
// join at once instead of retrying "coordinator not available / loading".
async function waitUntilServing (address: string, signal: AbortSignal): Promise<void> {
  const kafka = new Kafka({
    clientId: 'kafka-notify-launcher',
    brokers: [address],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 0 }
  })
  for (;;) {
    const admin = kafka.admin()
    try {
      await admin.connect()
      await admin.describeCluster() // fills kafkajs's broker pool, which findCoordinator needs
      await admin.describeGroups(['kafka-notify-launcher-probe'])
      return
    } catch {
      // not listening or not unfenced yet
    } finally {
      await admin.disconnect()
    }
    await delay(PROBE_INTERVAL_MS, undefined, { signal })
  }
}

// What the broker logs from now on: the server.log of a data dir grows across restarts. The
// first errors tell why a start failed; the shutdown that follows them only adds noise.
async function logExcerptFromHere (layout: BrokerLayout): Promise<LogExcerpt> {
  const file = join(layout.logs, 'server.log')
  const offset = await stat(file).then(({ size }) => size, () => 0)
  return async () => {
    const text = await readFile(file).then(bytes => bytes.subarray(offset).toString('utf8'), () => '')
    const lines = text.trimEnd().split('\n').filter(Boolean)
    const errors = lines.filter(line => /^\[[^\]]+\] (ERROR|FATAL) /.test(line)).slice(0, 10)
    const excerpt = errors.length > 0 ? errors : lines.slice(-20)
    return excerpt.length > 0 ? `\nFrom ${file}:\n${excerpt.join('\n')}` : ''
  }
}

function errorText (err: unknown): string {
  // execFile's message already holds the command's stderr; StorageTool reports on stdout
  const { message, stdout } = err as { message?: string, stdout?: string }
  return [message, stdout].filter(Boolean).join('\n').trim() || String(err)
}

function megabytes (bytes: number): string {
  return (bytes / 1e6).toFixed(1)
}

function secondsSince (start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1)
}

function noop (): void {}
