/** How long ago (or how long) in words: "4 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  const min = Math.floor(s / 60)
  if (min < 60) return `${min} min`
  const hours = Math.floor(min / 60)
  if (hours < 48) return min % 60 ? `${hours} h ${min % 60} min` : `${hours} h`
  const days = Math.floor(hours / 24)
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`
}

export const since = (iso) => (iso ? duration(Date.now() - Date.parse(iso)) : null)

/** A local date and time, e.g. "27/11/2026, 00:55:27" in the browser's locale. */
export function dateTime(iso) {
  if (!iso) return '—'
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' })
}

export function time(iso) {
  if (!iso) return '—'
  return new Date(iso).toLocaleTimeString(undefined, { timeStyle: 'medium' })
}

export function number(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  return value.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Power in W, kW or MW; negative = power fed back to the line (regenerative braking). */
export function power(watts) {
  if (watts === null || watts === undefined || !Number.isFinite(watts)) return '—'
  const abs = Math.abs(watts)
  if (abs >= 1e6) return `${number(watts / 1e6, 2)} MW`
  if (abs >= 1e3) return `${number(watts / 1e3, 1)} kW`
  return `${number(watts, 0)} W`
}

export const kwh = (v) => (v === null || v === undefined ? '—' : `${number(v, 3)} kWh`)

export const percent = (share) => (Number.isFinite(share) ? `${number(share * 100, 1)} %` : '—')

export function bytes(n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${number(n / 1024, 1)} KiB`
  return `${number(n / 1024 / 1024, 1)} MiB`
}

/** Local midnight of a `yyyy-mm-dd` date input value. */
export function localDay(value) {
  const [y, m, d] = value.split('-').map(Number)
  return new Date(y, m - 1, d)
}

/** Today's date as a `yyyy-mm-dd` input value, in local time. */
export function todayValue(date = new Date()) {
  const pad = (n) => String(n).padStart(2, '0')
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
}
