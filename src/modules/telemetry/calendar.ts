import { InvalidInputError } from '../../platform/domain-errors.ts'

/** Load-profile periods of /energy: fixed lengths (epoch-aligned), or calendar days and months in a zone. */
export const ENERGY_PERIODS = ['5m', '15m', '1h', '1d', '1mo'] as const
export type EnergyPeriod = (typeof ENERGY_PERIODS)[number]

const FIXED_MS: Partial<Record<EnergyPeriod, number>> = { '5m': 300_000, '15m': 900_000, '1h': 3_600_000 }
/** The most rows one answer may hold. */
export const MAX_ROWS = 50_000

const formats = new Map<string, Intl.DateTimeFormat>()

/** The zone's formatter, or a 400 naming `tz` when the zone is unknown. */
function formatOf(tz: string): Intl.DateTimeFormat {
  let f = formats.get(tz)
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      })
    } catch {
      throw new InvalidInputError(
        `tz: "${tz.slice(0, 60)}" is not an IANA time zone (e.g. UTC, Europe/Berlin)`,
      )
    }
    if (formats.size > 1000) formats.clear()
    formats.set(tz, f)
  }
  return f
}

/** Assertion helper: the zone exists (400 otherwise). */
export const checkZone = (tz: string) => void formatOf(tz)

/** Epoch ms of a UTC calendar date (years 1–9999, months may overflow: Date normalises). */
function utc(y: number, m: number, d: number, h = 0, mi = 0, s = 0): number {
  const x = new Date(0)
  x.setUTCFullYear(y, m - 1, d)
  x.setUTCHours(h, mi, s, 0)
  return x.getTime()
}

/** The local wall-clock fields of instant t in the zone. */
function local(tz: string, t: number): { y: number; m: number; d: number; h: number; mi: number; s: number } {
  const parts: Record<string, string> = {}
  for (const p of formatOf(tz).formatToParts(new Date(t))) parts[p.type] = p.value
  const year = Number(parts.year)
  return {
    y: parts.era === 'BC' || parts.era === 'B' ? 1 - year : year,
    m: Number(parts.month),
    d: Number(parts.day),
    h: Number(parts.hour),
    mi: Number(parts.minute),
    s: Number(parts.second),
  }
}

/** The zone's offset from UTC at instant t, ms (whole seconds). */
function offsetAt(tz: string, t: number): number {
  const l = local(tz, t)
  return utc(l.y, l.m, l.d, l.h, l.mi, l.s) - Math.floor(t / 1000) * 1000
}

/** The instant of local midnight starting the date y-m-d in the zone (DST-correct, iterated twice). */
function midnight(tz: string, y: number, m: number, d: number): number {
  const wall = utc(y, m, d)
  const first = wall - offsetAt(tz, wall)
  return wall - offsetAt(tz, first)
}

/**
 * The boundaries of the rows of a window [start, stop): start, every period boundary strictly
 * inside, stop. Fixed periods are epoch-aligned; 1d and 1mo start at local midnight in `tz`
 * (23 h and 25 h days where the clock changes). A 400 when there would be more than MAX_ROWS.
 */
export function periodBounds(start: number, stop: number, period: EnergyPeriod, tz: string): number[] {
  const out = [start]
  const fixed = FIXED_MS[period]
  const tooMany = () =>
    new InvalidInputError(
      `interval: ${period} makes more than ${MAX_ROWS} rows for this window; choose a longer one`,
    )
  if (fixed) {
    if ((stop - start) / fixed > MAX_ROWS) throw tooMany()
    for (let b = Math.floor(start / fixed) * fixed + fixed; b < stop; b += fixed) out.push(b)
  } else {
    const l = local(tz, start)
    for (let k = 1; ; k++) {
      const b = period === '1d' ? midnight(tz, l.y, l.m, l.d + k) : midnight(tz, l.y, l.m + k, 1)
      if (b >= stop) break
      if (b > start) out.push(b)
      if (out.length > MAX_ROWS) throw tooMany()
    }
  }
  out.push(stop)
  return out
}
