import type { Logger } from '../../server/logger.js'

/** A logger that drops everything: for units whose failures a test asserts by other means. */
export const quiet: Logger = { error () {}, warn () {}, info () {}, debug () {}, child: () => quiet }
