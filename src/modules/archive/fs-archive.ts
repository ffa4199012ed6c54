import { closeSync, createReadStream, openSync, renameSync, writevSync } from 'node:fs'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'
import type { ArchiveBody, ArchiveObject, ArchiveStore } from './archive-store.ts'
import { checkArchiveKey, lastExpiredDay, timePart } from './archive-store.ts'

const MAX_KNOWN_DIRS = 100_000

/** Archive objects as files under a root directory (DATA_DIR/archive), written atomically. */
export class FsArchiveStore implements ArchiveStore {
  readonly name = 'filesystem'
  private tmpCounter = 0
  /** Directories known to exist: a busy fleet writes ~1 object per device per second into few. */
  private readonly dirs = new Set<string>()

  constructor(private readonly root: string) {}

  private path(key: string): string {
    checkArchiveKey(key)
    return join(this.root, ...key.split('/'))
  }

  async put(key: string, body: ArchiveBody): Promise<void> {
    const path = this.path(key)
    const dir = dirname(path)
    if (!this.dirs.has(dir)) {
      await mkdir(dir, { recursive: true })
      if (this.dirs.size >= MAX_KNOWN_DIRS) this.dirs.clear()
      this.dirs.add(dir)
    }
    const tmp = `${path}.${process.pid}.${this.tmpCounter++}.tmp`
    try {
      writeFileNow(tmp, body)
    } catch (error) {
      // The directory may have been removed behind our back (retention, an operator): once more.
      if ((error as { code?: string }).code !== 'ENOENT') throw error
      this.dirs.delete(dir)
      await mkdir(dir, { recursive: true })
      writeFileNow(tmp, body)
    }
    renameSync(tmp, path)
  }

  async list(prefix: string, limit: number): Promise<ArchiveObject[]> {
    // Walk from the deepest directory the prefix names fully, newest (lexically last) entries first.
    const parts = prefix.split('/')
    const partial = parts.pop() ?? ''
    const baseKey = parts.join('/')
    const found: string[] = []
    const deviceLevel = parts.length === 1
    if (deviceLevel) {
      // Under a device, each category is walked on its own and the results merged by time.
      for (const category of await this.entries(baseKey)) {
        if (!category.startsWith(partial)) continue
        const keys: string[] = []
        await this.walk(`${baseKey}/${category}`, '', limit, keys)
        found.push(...keys)
      }
      found.sort((a, b) => (timePart(a) < timePart(b) ? 1 : timePart(a) > timePart(b) ? -1 : 0))
    } else {
      await this.walk(baseKey, partial, limit, found)
    }
    const keys = found.slice(0, limit)
    return Promise.all(
      keys.map(async (key) => {
        const s = await stat(this.path(key))
        return { key, size: s.size, lastModified: s.mtime }
      }),
    )
  }

  /** Appends up to `limit` file keys under `dirKey` (entries starting with `partial`), newest first. */
  private async walk(dirKey: string, partial: string, limit: number, out: string[]): Promise<void> {
    for (const name of await this.entries(dirKey)) {
      if (out.length >= limit) return
      if (!name.startsWith(partial) || name.endsWith('.tmp')) continue
      const key = dirKey ? `${dirKey}/${name}` : name
      if (name.endsWith('.ndjson')) out.push(key)
      else await this.walk(key, '', limit, out)
    }
  }

  private async entries(dirKey: string): Promise<string[]> {
    try {
      const names = await readdir(dirKey ? this.path(dirKey) : this.root)
      return names.sort().reverse()
    } catch {
      return []
    }
  }

  async get(key: string) {
    try {
      const path = this.path(key)
      const s = await stat(path)
      if (!s.isFile()) return undefined
      return { body: createReadStream(path), size: s.size }
    } catch {
      return undefined
    }
  }

  async getRange(key: string, offset: number, length: number) {
    const path = this.path(key)
    const s = await stat(path).catch(() => undefined)
    if (!s?.isFile() || offset + length > s.size) return undefined
    return { body: createReadStream(path, { start: offset, end: offset + length - 1 }), size: length }
  }

  async deleteBefore(cutoff: Date): Promise<number> {
    const last = lastExpiredDay(cutoff)
    let deleted = 0
    // {device}/{category}/{YYYY}/{MM}/{DD}: whole day directories go, then months and years left empty.
    for (const device of await this.entries('')) {
      for (const category of await this.entries(device)) {
        const base = `${device}/${category}`
        for (const year of await this.entries(base)) {
          if (year > last.slice(0, 4)) continue
          for (const month of await this.entries(`${base}/${year}`)) {
            if (`${year}/${month}` > last.slice(0, 7)) continue
            for (const day of await this.entries(`${base}/${year}/${month}`)) {
              if (`${year}/${month}/${day}` > last) continue
              const dir = `${base}/${year}/${month}/${day}`
              deleted += (await this.entries(dir)).filter((n) => n.endsWith('.ndjson')).length
              await rm(this.path(dir), { recursive: true, force: true })
            }
            await removeIfEmpty(this.path(`${base}/${year}/${month}`))
          }
          await removeIfEmpty(this.path(`${base}/${year}`))
        }
      }
    }
    this.dirs.clear()
    return deleted
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true })
    await stat(this.root)
  }

  async close(): Promise<void> {}
}

async function removeIfEmpty(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => ['?'])
  if (names.length === 0) await rm(dir, { recursive: true, force: true })
}

export const archiveRoot = (dataDir: string) => join(dataDir, 'archive') + sep

/**
 * open, writev, close and (in `put`) rename, synchronously: a checkpoint writes up to one object
 * per device and category every second, and each of these calls returns from the page cache (no
 * fsync; the journal, not the archive, is what survives a crash). Through libuv's thread pool
 * each call was a round trip of its own (a queued task, futex wake-ups of four contending threads,
 * an eventfd and a callback): 3–4 futex calls per file operation on the server's profile, more CPU
 * than the operations themselves. The caller yields between small groups of objects
 * (archive-buffer.ts), so a checkpoint stalls the event loop briefly at a time. The DATA_DIR must
 * be a local disk, as for the journal (docs/OPERATIONS.md). The parts go to the file as they are.
 */
function writeFileNow(path: string, body: ArchiveBody): void {
  const fd = openSync(path, 'w')
  try {
    let parts: readonly Buffer[] = Buffer.isBuffer(body) ? [body] : body
    while (parts.length > 0) parts = after(parts, writevSync(fd, parts))
  } finally {
    closeSync(fd)
  }
}

/** What is left of `parts` once their first `bytes` are written (a short write). */
function after(parts: readonly Buffer[], bytes: number): readonly Buffer[] {
  let i = 0
  let skip = bytes
  while (i < parts.length && skip >= (parts[i] as Buffer).length) skip -= (parts[i++] as Buffer).length
  if (i === parts.length) return []
  const rest = parts.slice(i)
  rest[0] = (rest[0] as Buffer).subarray(skip)
  return rest
}
