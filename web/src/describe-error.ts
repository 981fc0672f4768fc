import { ApiError } from '../../client/api.js'

/** A short sentence for the user; the server's own message when there is nothing better to say. */
export function describeError (error: unknown): string {
  if (!(error instanceof ApiError)) return 'Something went wrong'
  const later = error.retryAfter === null ? 'later' : `in ${error.retryAfter} s`
  switch (error.code) {
    case 'NETWORK': return 'No connection to the server'
    case 'TIMEOUT': return 'The server did not answer in time, try again'
    case 'SELF_FOLLOW': return 'You cannot follow yourself'
    case 'UNKNOWN_USER': return 'That user does not exist'
    case 'UNAUTHORIZED':
    case 'TOKEN_EXPIRED': return 'Your session expired, sign in again'
  }
  if (error.status === 429) return `Too many requests, try again ${later}`
  if (error.status === 503) return `Service unavailable, try again ${later}`
  if (error.status >= 500) return 'Server error, try again'
  return error.message
}
