import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Compiled to dist/kafka/, these modules still read pom.xml and the configs from kafka/.
const here = fileURLToPath(new URL('.', import.meta.url))
const assetsDir = existsSync(join(here, 'pom.xml')) ? here : join(here, '..', '..', 'kafka')

/** The path of one of kafka/'s own files: pom.xml, server.properties, log4j2.yaml. */
export function assetPath (name: string): string {
  return join(assetsDir, name)
}
