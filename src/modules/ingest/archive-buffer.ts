import type { ArchiveStore } from '../archive/index.ts'
import type { Category } from './parse-message.ts'

const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/** `{device_id}/{category}/{YYYY}/{MM}/{DD}/{HHmmssSSS}-{run}-{n}.ndjson` */
export function archiveKey(deviceId: string, category: string, at: number, runId: string, n: number): string {
  const d = new Date(at)
  const day = `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}`
  const time = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}${pad(d.getUTCMilliseconds(), 3)}`
  return `${deviceId}/${category}/${day}/${time}-${runId}-${n.toString(36)}.ndjson`
}

interface Group {
  deviceId: string
  category: Category
  lines: string[]
  firstAt: number
}

/**
 * Collects archive lines across store flushes and writes one object per device and category at
 * most every `flushMs` (the old collector wrote one object per message). The journal keeps
 * every record whose line is not written yet, so a crash loses no line.
 */
export class ArchiveBuffer {
  private groups = new Map<string, Group>()
  private lines = 0
  private oldestAt = Number.POSITIVE_INFINITY
  /** The smallest journal id whose line is still only in memory. */
  private firstId = Number.POSITIVE_INFINITY
  private counter = 0

  constructor(
    private readonly store: ArchiveStore,
    private readonly runId: string,
    private readonly flushMs: number,
  ) {}

  add(recordId: number, deviceId: string, category: Category, line: string, receivedAt: number): void {
    const key = `${deviceId}\u0000${category}`
    let group = this.groups.get(key)
    if (!group) {
      group = { deviceId, category, lines: [], firstAt: receivedAt }
      this.groups.set(key, group)
    }
    group.lines.push(line)
    this.lines++
    this.oldestAt = Math.min(this.oldestAt, receivedAt)
    this.firstId = Math.min(this.firstId, recordId)
  }

  get buffered(): number {
    return this.lines
  }

  /** Journal ids below this are archived (or never needed archiving). */
  get pendingFromId(): number {
    return this.firstId
  }

  /** Writes every group when the oldest line has waited `flushMs` (or at once with `force`). */
  async flush(now: number, force = false): Promise<void> {
    if (this.lines === 0 || (!force && now - this.oldestAt < this.flushMs)) return
    const groups = [...this.groups.values()]
    const concurrency = 16
    for (let i = 0; i < groups.length; i += concurrency) {
      await Promise.all(
        groups.slice(i, i + concurrency).map(async (g) => {
          if (g.lines.length === 0) return
          const key = archiveKey(g.deviceId, g.category, g.firstAt, this.runId, this.counter++)
          await this.store.put(key, Buffer.from(`${g.lines.join('\n')}\n`))
          // Written: a retry after a failure elsewhere must not write it again.
          g.lines = []
        }),
      )
    }
    this.groups = new Map()
    this.lines = 0
    this.oldestAt = Number.POSITIVE_INFINITY
    this.firstId = Number.POSITIVE_INFINITY
  }
}
