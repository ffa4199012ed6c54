import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { SeqWindowState } from './seq-window.ts'

/** Saved dedup windows of these devices. */
export async function loadSeqStates(
  db: Kysely<Database>,
  pks: number[],
): Promise<Map<number, SeqWindowState>> {
  const states = new Map<number, SeqWindowState>()
  if (pks.length === 0) return states
  const rows = await db
    .selectFrom('device_seq_tracking')
    .select(['device_pk', 'state'])
    // One array parameter, not one per device (PostgreSQL's 65,535 bind-parameter limit).
    .where(sql<boolean>`device_pk = any(${pks}::int[])`)
    .execute()
  for (const r of rows) states.set(Number(r.device_pk), r.state as unknown as SeqWindowState)
  return states
}

/** Saves the windows in one statement (devices deleted meanwhile are skipped). */
export async function saveSeqStates(db: Kysely<Database>, states: { pk: number; state: SeqWindowState }[]) {
  if (states.length === 0) return
  await sql`
    insert into device_seq_tracking (device_pk, state, updated_at)
    select v.pk, v.state, now()
    from unnest(${states.map((s) => s.pk)}::int[], ${states.map((s) => JSON.stringify(s.state))}::jsonb[]) as v(pk, state)
    where exists (select 1 from devices d where d.id = v.pk)
    on conflict (device_pk) do update
      -- keep the gaps declared by any replica (gap-claims.ts): they are not part of one window
      set state = excluded.state || jsonb_strip_nulls(jsonb_build_object('declared', device_seq_tracking.state->'declared')),
        updated_at = now()`.execute(db)
}
