import { type Kysely, sql } from 'kysely'

/**
 * The index of grouped archive objects (issue 18): which bytes of which object hold one device's
 * lines of one category. `time_key` is the object's key after `.grouped/all/`; byte order
 * ("C") makes its ranges the keys' lexical (time) order.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table archive_sections (
      device_id text not null,
      category text not null,
      time_key text collate "C" not null,
      byte_offset bigint not null,
      byte_length integer not null,
      lines integer not null,
      first_at timestamptz not null,
      last_at timestamptz not null,
      primary key (device_id, category, time_key)
    )`.execute(db)
  await sql`create index archive_sections_time on archive_sections (time_key)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table archive_sections`.execute(db)
}
