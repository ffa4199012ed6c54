/**
 * The archive's key layout, built and read only here:
 * `{device_id}/{category}/{YYYY}/{MM}/{DD}/{HHmmssSSS}-{run}-{n}.ndjson`. Within a category the
 * keys' lexical order is their time order (S3 lists ascending; retention cuts by day).
 */

const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/** `YYYY/MM/DD/HHmmssSSS` of a time: the part of a key after `{device}/{category}/` that orders it. */
export function timeKey(ms: number): string {
  const d = new Date(ms)
  return `${pad(d.getUTCFullYear(), 4)}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}${pad(d.getUTCMilliseconds(), 3)}`
}

/** The time a key's time part stands for, or undefined when it does not follow the layout. */
export function keyTime(timePart: string): number | undefined {
  const m = /^(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(\d{2})(\d{3})/.exec(timePart)
  if (!m) return undefined
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as number[]
  return Date.UTC(y as number, (mo as number) - 1, d, h, mi, s, ms)
}

/** The key of one archive object: a device's lines of one category, from `at` on (run `runId`, its `n`th object). */
export function archiveKey(deviceId: string, category: string, at: number, runId: string, n: number): string {
  return `${deviceId}/${category}/${timeKey(at)}-${runId}-${n.toString(36)}.ndjson`
}

/**
 * Grouped objects (ARCHIVE_OBJECT_PERIOD_S > 0) hold many devices' lines of a period under
 * `.grouped/all/{YYYY}/{MM}/{DD}/{HHmmssSSS}-{run}-{n}.ndjson`: the same five levels as a device's
 * keys, so retention walks both alike, and `.grouped` is no device id (none starts with a dot).
 */
export const GROUP_ROOT = '.grouped/all'

/** The time part (`{YYYY}/…/{HHmmssSSS}-{run}-{n}.ndjson`) of a grouped object written at `at`. */
export function groupTimeKey(at: number, runId: string, n: number): string {
  return `${timeKey(at)}-${runId}-${n.toString(36)}.ndjson`
}

export const groupKey = (groupTime: string) => `${GROUP_ROOT}/${groupTime}`
