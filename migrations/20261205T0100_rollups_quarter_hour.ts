import { type Kysely, sql } from 'kysely'

/**
 * 15-minute rollups (module telemetry, rollups.ts), between the 1-minute and the 1-hour ones: a
 * fleet view of 24 h at every=15m reads 96 rows a meter instead of 1,440. Each recompute of a
 * device-hour writes them from its 1-minute rollups; the rollups already stored get theirs here,
 * from their 1-minute rows, so no hour has to be recomputed.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table telemetry_rollups drop constraint if exists telemetry_rollups_bucket_s_check`.execute(
    db,
  )
  await sql`alter table telemetry_rollups add constraint telemetry_rollups_bucket_s_check
    check (bucket_s in (60, 900, 3600))`.execute(db)
  await sql`
    insert into telemetry_rollups (device_pk, metric, bucket_s, start, count, sum, min, max, first, last)
    select device_pk, metric, 900, to_timestamp(floor(date_part('epoch', start) / 900) * 900), sum(count),
      greatest(least(sum(sum::numeric), 1e308), -1e308)::float8, min(min), max(max),
      (array_agg(first order by start))[1], (array_agg(last order by start desc))[1]
    from telemetry_rollups where bucket_s = 60
    group by device_pk, metric, 4
    on conflict do nothing`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from telemetry_rollups where bucket_s = 900`.execute(db)
  await sql`alter table telemetry_rollups drop constraint if exists telemetry_rollups_bucket_s_check`.execute(
    db,
  )
  await sql`alter table telemetry_rollups add constraint telemetry_rollups_bucket_s_check
    check (bucket_s in (60, 3600))`.execute(db)
}
