const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const

/** A duration like `30s`, `15m`, `1h`, `7d`, in ms; undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,6})(s|m|h|d|w)$/.exec(text)
  if (!m) return undefined
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
  return ms > 0 ? ms : undefined
}

/** Points outside 1970–9999 are refused: PostgreSQL cannot read the ISO text of a year below 0 (a 500). */
const EARLIEST = Date.UTC(1970, 0, 1)
const LATEST = Date.UTC(10000, 0, 1) - 1
const inRange = (t: number) => (t >= EARLIEST && t <= LATEST ? t : undefined)

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)$/

/**
 * A point in time as the API takes it: `now()`, a relative duration in the past (`-30m`, `-24h`,
 * `-7d`), or an ISO 8601 timestamp with a zone. Undefined when it is none of these.
 */
export function parseTimePoint(text: string, now: number): number | undefined {
  if (text === 'now()' || text === 'now') return now
  if (text.startsWith('-')) {
    const ms = parseDuration(text.slice(1))
    return ms === undefined ? undefined : inRange(now - ms)
  }
  if (!ISO.test(text)) return undefined
  const t = Date.parse(text)
  return Number.isFinite(t) ? inRange(t) : undefined
}

export const TIME_POINT_HELP =
  'now(), a relative duration such as -30m, -24h, -7d, or an ISO 8601 timestamp, within 1970–9999'
