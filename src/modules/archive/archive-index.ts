import type { Kysely, Selectable } from 'kysely'
import type { Database } from '../../platform/db/index.ts'

/** One device's lines of one category inside a grouped object (a row of archive_sections). */
export interface Section {
  deviceId: string
  category: string
  /** The grouped object's key after `.grouped/all/`: `{YYYY}/{MM}/{DD}/{HHmmssSSS}-{run}-{n}.ndjson`. */
  timeKey: string
  offset: number
  length: number
  lines: number
  firstAt: number
  lastAt: number
}

/** Keys sort below this after any prefix: "~" follows every character of the layout. */
const AFTER = '~'

export async function insertSections(db: Kysely<Database>, sections: Section[]): Promise<void> {
  // 8 columns a row: 4,000 rows stay well below PostgreSQL's 65,535 bind parameters.
  for (let i = 0; i < sections.length; i += 4000) {
    await db
      .insertInto('archive_sections')
      .values(
        sections.slice(i, i + 4000).map((s) => ({
          device_id: s.deviceId,
          category: s.category,
          time_key: s.timeKey,
          byte_offset: s.offset,
          byte_length: s.length,
          lines: s.lines,
          first_at: new Date(s.firstAt),
          last_at: new Date(s.lastAt),
        })),
      )
      // A replayed checkpoint writes a new object under a new key; the same key again is the same bytes.
      .onConflict((oc) => oc.doNothing())
      .execute()
  }
}

/** A device's newest sections in `categories` whose time key starts with `timePrefix`, newest first. */
export async function listSections(
  db: Kysely<Database>,
  deviceId: string,
  categories: readonly string[],
  timePrefix: string,
  limit: number,
): Promise<Section[]> {
  if (categories.length === 0 || limit <= 0) return []
  let query = db
    .selectFrom('archive_sections')
    .selectAll()
    .where('device_id', '=', deviceId)
    .where('category', 'in', categories)
  if (timePrefix !== '')
    query = query.where('time_key', '>=', timePrefix).where('time_key', '<', timePrefix + AFTER)
  const rows = await query.orderBy('time_key', 'desc').limit(limit).execute()
  return rows.map(toSection)
}

export async function findSection(
  db: Kysely<Database>,
  deviceId: string,
  category: string,
  timeKey: string,
): Promise<Section | undefined> {
  const row = await db
    .selectFrom('archive_sections')
    .selectAll()
    .where('device_id', '=', deviceId)
    .where('category', '=', category)
    .where('time_key', '=', timeKey)
    .executeTakeFirst()
  return row && toSection(row)
}

/** Retention: forgets the sections of objects of days up to `lastDay` (`YYYY/MM/DD`); returns how many. */
export async function deleteSectionsUpTo(db: Kysely<Database>, lastDay: string): Promise<number> {
  const result = await db
    .deleteFrom('archive_sections')
    .where('time_key', '<', `${lastDay}/${AFTER}`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

const toSection = (r: Selectable<Database['archive_sections']>): Section => ({
  deviceId: r.device_id,
  category: r.category,
  timeKey: r.time_key,
  offset: Number(r.byte_offset),
  length: r.byte_length,
  lines: r.lines,
  firstAt: r.first_at.getTime(),
  lastAt: r.last_at.getTime(),
})
