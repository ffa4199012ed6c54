const digit = (s: string, i: number) => s.charCodeAt(i) - 48

function num(s: string, from: number, len: number): number {
  let n = 0
  for (let i = from; i < from + len; i++) {
    const d = digit(s, i)
    if (d < 0 || d > 9) return Number.NaN
    n = n * 10 + d
  }
  return n
}

/**
 * Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` to epoch ms, NaN for anything else.
 * Hand-rolled because Date.parse is the slowest step of validating a datagram (20+ timestamps).
 */
export function parseIsoTime(s: string): number {
  if (s.length < 20 || s.length > 35 || s[4] !== '-' || s[7] !== '-' || (s[10] !== 'T' && s[10] !== 't')) {
    return Number.NaN
  }
  if (s[13] !== ':' || s[16] !== ':') return Number.NaN
  const date = dayStart(s)
  const hour = num(s, 11, 2)
  const minute = num(s, 14, 2)
  const second = num(s, 17, 2)
  if (Number.isNaN(date) || hour > 23 || minute > 59 || second > 59) return Number.NaN
  let i = 19
  let ms = 0
  if (s[i] === '.') {
    i++
    const start = i
    while (i < s.length && digit(s, i) >= 0 && digit(s, i) <= 9) i++
    const digits = i - start
    if (digits === 0 || digits > 9) return Number.NaN
    ms = Math.floor(num(s, start, Math.min(digits, 3)) * 10 ** (3 - Math.min(digits, 3)))
  }
  let offsetMin = 0
  if (s[i] === 'Z' || s[i] === 'z') {
    i++
  } else if ((s[i] === '+' || s[i] === '-') && s[i + 3] === ':') {
    const sign = s[i] === '+' ? 1 : -1
    const oh = num(s, i + 1, 2)
    const om = num(s, i + 4, 2)
    if (oh > 23 || om > 59) return Number.NaN
    offsetMin = sign * (oh * 60 + om)
    i += 6
  } else {
    return Number.NaN
  }
  if (i !== s.length) return Number.NaN
  return date + ((hour * 60 + minute - offsetMin) * 60 + second) * 1000 + ms
}

/**
 * The last two dates read and their starts: no Date.UTC per time. Two, because a datagram's
 * envelope (sent now) and its samples (a buffer emptied after an outage, or just past midnight)
 * may lie on different dates, and one entry would then miss at every time.
 */
const dates = ['', '']
const dayStarts = [Number.NaN, Number.NaN]
let older = 0

/** Epoch ms of the `YYYY-MM-DD` that begins `s` (as Date.UTC reads it), NaN if no calendar date. */
function dayStart(s: string): number {
  for (let k = 0; k < 2; k++)
    if (dates[k] !== '' && s.startsWith(dates[k] as string)) return dayStarts[k] as number
  const year = num(s, 0, 4)
  const month = num(s, 5, 2)
  const day = num(s, 8, 2)
  if (!(month >= 1 && month <= 12 && day >= 1 && day <= 31)) return Number.NaN // NaN too
  const t = Date.UTC(year, month - 1, day)
  // Date.UTC rolls 31 February over into March; a real calendar date round-trips.
  if (new Date(t).getUTCDate() !== day) return Number.NaN
  dates[older] = s.slice(0, 10)
  dayStarts[older] = t
  older = 1 - older
  return t
}
