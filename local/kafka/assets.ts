import { join } from 'node:path'
import { projectRoot } from '../../server/project-root.js'

/** The path of one of local/kafka's own files (pom.xml, server.properties, log4j2.yaml), whether running from the sources or from dist/. */
export function assetPath (name: string): string {
  return join(projectRoot(), 'local', 'kafka', name)
}
