import { type Kysely, sql } from 'kysely'

const DAY_MS = 86_400_000
const dayName = (ms: number) => `telemetry_p${new Date(ms).toISOString().slice(0, 10).replace(/-/g, '')}`

/**
 * Time-partitioned telemetry (module retention): one partition per UTC day of t0, plus a default
 * partition for rows no day partition holds yet, so that expiring a day is dropping a table, not
 * deleting rows. The new table copies whatever columns telemetry has now (LIKE … INCLUDING ALL:
 * columns in order, defaults, checks, indexes — whatever other migrations added), so the binary
 * row encoder (built from pg_attribute of `telemetry`) and `insert … select … from
 * unnest($1::telemetry[])` work unchanged: `telemetry` is still the row type. Partitions for the
 * days that hold data and the next 7 are created here; the retention job keeps creating them ahead.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table telemetry rename to telemetry_unpartitioned`.execute(db)
  await sql`create table telemetry (like telemetry_unpartitioned including all) partition by range (t0)`.execute(
    db,
  )
  await sql`alter table telemetry
    add constraint telemetry_device_fk foreign key (device_pk) references devices (id) on delete cascade`.execute(
    db,
  )
  await sql`create table telemetry_default partition of telemetry default`.execute(db)
  const { rows } = await sql<{
    first: Date | null
  }>`select min(t0) as first from telemetry_unpartitioned`.execute(db)
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS
  const first = rows[0]?.first ? Math.floor(new Date(rows[0].first).getTime() / DAY_MS) * DAY_MS : today
  for (let day = Math.min(first, today); day <= today + 7 * DAY_MS; day += DAY_MS) {
    const from = new Date(day).toISOString()
    const to = new Date(day + DAY_MS).toISOString()
    await sql`create table ${sql.id(dayName(day))} partition of telemetry for values from (${sql.lit(from)}) to (${sql.lit(to)})`.execute(
      db,
    )
  }
  await sql`insert into telemetry select * from telemetry_unpartitioned`.execute(db)
  await sql`drop table telemetry_unpartitioned`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table telemetry rename to telemetry_partitioned`.execute(db)
  await sql`create table telemetry (like telemetry_partitioned including all)`.execute(db)
  await sql`alter table telemetry
    add constraint telemetry_device_fk foreign key (device_pk) references devices (id) on delete cascade`.execute(
    db,
  )
  await sql`insert into telemetry select * from telemetry_partitioned`.execute(db)
  await sql`drop table telemetry_partitioned cascade`.execute(db)
}
