import type { Readable } from 'node:stream'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import {
  deleteSectionsUpTo,
  findSection,
  insertSections,
  listSections,
  type Section,
} from './archive-index.ts'
import { groupKey } from './archive-key.ts'
import type { ArchiveBody, ArchiveObject, ArchiveStore } from './archive-store.ts'
import { CATEGORIES, lastExpiredDay, timePart } from './archive-store.ts'

const byTimeDesc = (a: ArchiveObject, b: ArchiveObject) =>
  timePart(a.key) < timePart(b.key) ? 1 : timePart(a.key) > timePart(b.key) ? -1 : 0

/**
 * The raw archive as the ingest, the routes and retention see it: an object store (files or S3)
 * plus the database index of grouped objects. A device's section of a grouped object is listed
 * and downloaded under `{device}/{category}/{the grouped object's time part}` — the same shape as
 * the per-device objects of ARCHIVE_OBJECT_PERIOD_S=0 and of earlier versions, which stay readable.
 *
 * Why a table and not an index object per grouped object: listing one device's newest objects
 * must not read every grouped object's index (a device heard once a day would mean thousands of
 * GETs); one indexed query answers it, on PostgreSQL and PGlite alike.
 */
export class RawArchive {
  readonly name: string

  constructor(
    readonly store: ArchiveStore,
    private readonly db: Kysely<Database>,
    /** 0 = one object per device and category per checkpoint; else grouped objects of this period. */
    readonly objectPeriodMs: number,
  ) {
    this.name = store.name
  }

  /** A per-device object (ARCHIVE_OBJECT_PERIOD_S=0). */
  put(key: string, body: ArchiveBody): Promise<void> {
    return this.store.put(key, body)
  }

  /** A grouped object, then its index: a section is listed only once its bytes are stored. */
  async putGroup(groupTime: string, body: ArchiveBody, sections: Section[]): Promise<void> {
    await this.store.put(groupKey(groupTime), body)
    await insertSections(this.db, sections)
  }

  /** A device's objects under `prefix` (`{category}/{YYYY}/…`, or part of a category), newest first. */
  async list(deviceId: string, prefix: string, limit: number): Promise<ArchiveObject[]> {
    const [categoryPart = '', ...rest] = prefix.split('/')
    const categories =
      rest.length === 0
        ? CATEGORIES.filter((c) => c.startsWith(categoryPart))
        : CATEGORIES.filter((c) => c === categoryPart)
    const [sections, objects] = await Promise.all([
      listSections(this.db, deviceId, categories, rest.join('/'), limit),
      this.store.list(`${deviceId}/${prefix}`, limit),
    ])
    const grouped = sections.map((s) => ({
      key: `${deviceId}/${s.category}/${s.timeKey}`,
      size: s.length,
      lastModified: new Date(s.lastAt),
    }))
    return [...grouped, ...objects].sort(byTimeDesc).slice(0, limit)
  }

  /** One listed object of a device (`{category}/{YYYY}/{MM}/{DD}/{name}`), or undefined. */
  async get(deviceId: string, path: string): Promise<{ body: Readable; size: number } | undefined> {
    const [category = '', ...rest] = path.split('/')
    const section = await findSection(this.db, deviceId, category, rest.join('/'))
    if (section) return this.store.getRange(groupKey(section.timeKey), section.offset, section.length)
    return this.store.get(`${deviceId}/${path}`)
  }

  /**
   * Retention: objects of days up to the cutoff's last whole day, grouped or not. The index goes
   * first: a failure in between leaves unlisted objects (deleted by the next run), never listed
   * sections of deleted objects. `db`: the caller's connection when it holds one (retention holds
   * its advisory lock's; PGlite has only one).
   */
  async deleteBefore(cutoff: Date, db: Kysely<Database> = this.db): Promise<number> {
    await deleteSectionsUpTo(db, lastExpiredDay(cutoff))
    return this.store.deleteBefore(cutoff)
  }

  ping(): Promise<void> {
    return this.store.ping()
  }

  close(): Promise<void> {
    return this.store.close()
  }
}
