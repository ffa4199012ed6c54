/**
 * The one grammar of a device id, used wherever an id enters or leaves the server: the API, the
 * wire schemas, MQTT topics and authentication, archive keys (files and S3). 1–64 characters of
 * `A–Z a–z 0–9 _ . -`, never starting with `.` — so never `.` or `..`, never a hidden file, and
 * never a `/`, `+`, `#` or NUL: an id is always exactly one path segment and one topic level.
 */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$'
/** The same grammar without anchors, to be embedded in a larger expression (a topic). */
export const DEVICE_ID_BODY = '[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}'
export const DEVICE_ID_DESCRIPTION =
  'letters, digits, "_", "." and "-", not starting with "."; at most 64 characters'

const DEVICE_ID = new RegExp(DEVICE_ID_PATTERN)

export function isDeviceId(value: string): boolean {
  return DEVICE_ID.test(value)
}

/**
 * The grammar ids were registered under before this one (it allowed `.`, `..` and a leading dot).
 * Only for finding and deleting such legacy devices; nothing new may use it.
 */
export const LEGACY_DEVICE_ID_PATTERN = '^[A-Za-z0-9_.-]{1,64}$'
