import { getToken } from './session.js'

/** An API failure: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, message, retryAfterS) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.retryAfterS = retryAfterS
  }
}

const emit = (name, detail) => window.dispatchEvent(new CustomEvent(name, { detail }))

/** `?a=1&b=x` from an object; undefined, null and '' values are left out. */
export function qs(params) {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value))
  }
  const text = search.toString()
  return text ? `?${text}` : ''
}

const MESSAGES = {
  401: 'Your token was not accepted (missing, wrong, revoked or expired).',
  403: 'Your role does not allow this.',
  429: 'Too many requests: the dashboard slows down for a moment.',
}

async function send(path, { method = 'GET', body, token = getToken(), signal, quiet = false } = {}) {
  const headers = { accept: 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  let res
  try {
    res = await fetch(path, {
      method,
      headers,
      signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (error) {
    if (error.name === 'AbortError') throw error
    if (!quiet) emit('api:network', { up: false })
    throw new ApiError(0, 'Cannot reach the server. Is it running? Retrying…')
  }
  if (!quiet) emit('api:network', { up: ![502, 503, 504].includes(res.status) })
  if (res.ok) return res
  let message = MESSAGES[res.status] ?? `The server answered ${res.status}.`
  try {
    const data = await res.json()
    if (data && typeof data.error === 'string') message = data.error
  } catch {}
  const retryAfter = Number(res.headers.get('retry-after'))
  if (res.status === 401 && !quiet) emit('api:unauthorized', { message })
  throw new ApiError(res.status, message, Number.isFinite(retryAfter) ? retryAfter : undefined)
}

/**
 * Calls the API with the session's bearer token and returns the parsed JSON. Throws ApiError. A 401
 * signs the user out (event `api:unauthorized`) unless `quiet` is set (the login form's own check).
 */
export async function api(path, options) {
  const res = await send(path, options)
  return res.status === 204 ? null : res.json()
}

/** Downloads an API resource with the token and saves it through a temporary blob URL. */
export async function download(path, filename, options) {
  const res = await send(path, { ...options, method: 'GET' })
  const blob = await res.blob()
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 30_000)
  return blob.size
}
