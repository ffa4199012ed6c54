import { keyTime, timeKey } from './archive-key.ts'
import type { ArchiveObject } from './archive-store.ts'

/** One ListObjectsV2 page: keys ascending, as S3 returns them. */
export interface KeyPage {
  objects: ArchiveObject[]
  truncated: boolean
  token?: string
}
export type ListPage = (request: {
  prefix: string
  startAfter?: string
  token?: string
  maxKeys?: number
}) => Promise<KeyPage>

const HOUR = 3_600_000
/** The end of the year, month or day a prefix's time part names completely ("2026/11" → 2026-12-01). */
function periodEnd(timePart: string): number | undefined {
  const m = /^(\d{4})(?:\/(\d{2})(?:\/(\d{2}))?)?/.exec(timePart)
  if (!m) return undefined
  const [y, mo, d] = [Number(m[1]), m[2] ? Number(m[2]) : undefined, m[3] ? Number(m[3]) : undefined]
  if (mo === undefined) return Date.UTC(y + 1, 0, 1)
  if (d === undefined) return Date.UTC(y, mo, 1)
  return Date.UTC(y, mo - 1, d + 1)
}

/**
 * The newest `limit` objects under `prefix` inside one category (`base` = `{device}/{category}/`),
 * newest first. S3 lists ascending only, so this reads time windows backwards from `now` — one hour,
 * then twice as long each step until the oldest key — each window with StartAfter, and halves a window
 * that holds more than a page until its newest part fits in one. It reads about what it returns plus
 * a page per step, never the device's whole history (keys dated after `now` are read first).
 */
export async function newestInCategory(
  list: ListPage,
  base: string,
  prefix: string,
  limit: number,
  now: number,
): Promise<ArchiveObject[]> {
  const first = await list({ prefix, maxKeys: 1 })
  const oldestKey = first.objects[0]?.key
  if (oldestKey === undefined || limit <= 0) return []
  const oldest = keyTime(oldestKey.slice(base.length))
  const bound = (ms: number) => base + timeKey(ms)
  const window = new WindowReader(list, prefix, bound, oldest)

  const end = periodEnd(prefix.slice(base.length))
  let hi = end !== undefined && end < now ? end : now
  const out = hi === now ? await window.read(hi, undefined, limit) : []
  for (let width = HOUR; out.length < limit; width *= 2) {
    const lo = oldest === undefined || hi - width <= oldest ? undefined : hi - width
    for (const o of await window.read(lo, hi, limit - out.length)) out.push(o)
    if (lo === undefined) break
    hi = lo
  }
  return out
}

/** Reads the keys of one time window [lo, hi) (undefined = unbounded), newest first. */
class WindowReader {
  constructor(
    private readonly list: ListPage,
    private readonly prefix: string,
    private readonly bound: (ms: number) => string,
    private readonly oldest: number | undefined,
  ) {}

  async read(
    lo: number | undefined,
    hi: number | undefined,
    need: number,
    page?: KeyPage,
  ): Promise<ArchiveObject[]> {
    // A key at time t is `bound(t)` plus a suffix: after bound(lo), before bound(hi) is exactly [lo, hi).
    const after = lo === undefined ? undefined : this.bound(lo)
    const before = hi === undefined ? undefined : this.bound(hi)
    const inWindow = (key: string) => before === undefined || key < before
    const firstPage = page ?? (await this.list({ prefix: this.prefix, startAfter: after }))
    const found = firstPage.objects.filter((o) => inWindow(o.key))
    if (!firstPage.truncated || found.length < firstPage.objects.length) return found.reverse().slice(0, need)

    // More than a page in the window: the newer half first, if the window can still be halved.
    const from = lo ?? this.oldest
    if (hi !== undefined && from !== undefined && hi - from > 1) {
      const mid = from + Math.floor((hi - from) / 2)
      const newer = await this.read(mid, hi, need)
      if (newer.length >= need) return newer
      return newer.concat(await this.read(lo, mid, need - newer.length, firstPage))
    }
    // Unbounded above, or many keys in one millisecond: page through.
    let token = firstPage.token
    while (token) {
      const next = await this.list({ prefix: this.prefix, startAfter: after, token })
      const inside = next.objects.filter((o) => inWindow(o.key))
      for (const o of inside) found.push(o)
      token = next.truncated && inside.length === next.objects.length ? next.token : undefined
    }
    return found.reverse().slice(0, need)
  }
}

/** Every key under `prefix`, ascending (all pages). */
export async function readAll(list: ListPage, prefix: string): Promise<ArchiveObject[]> {
  const out: ArchiveObject[] = []
  let token: string | undefined
  do {
    const page = await list({ prefix, token })
    for (const o of page.objects) out.push(o)
    token = page.truncated ? page.token : undefined
  } while (token)
  return out
}
