import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DigestBlock, SeqWindowState } from './seq-window.ts'

/** A dedup window as saved: its state and its digest blocks (see seq-digests.ts). */
export interface SavedWindow {
  state: SeqWindowState
  blocks: DigestBlock[]
}

/** Saved dedup windows of these devices. */
export async function loadSeqStates(db: Kysely<Database>, pks: number[]): Promise<Map<number, SavedWindow>> {
  const saved = new Map<number, SavedWindow>()
  if (pks.length === 0) return saved
  const rows = await db
    .selectFrom('device_seq_tracking')
    .select(['device_pk', 'state'])
    // One array parameter, not one per device (PostgreSQL's 65,535 bind-parameter limit).
    .where(sql<boolean>`device_pk = any(${pks}::int[])`)
    .execute()
  for (const r of rows)
    saved.set(Number(r.device_pk), { state: r.state as unknown as SeqWindowState, blocks: [] })
  // As base64 text: both drivers read that quickly (PGlite parses a bytea byte by byte).
  const blocks = await sql<{ device_pk: number; boot: number; block: number; base64: string }>`
    select device_pk, boot, block, encode(digests, 'base64') as base64 from device_seq_digests
    where device_pk = any(${pks}::int[])`.execute(db)
  for (const b of blocks.rows) {
    const base64 = b.base64.replaceAll('\n', '') // encode() breaks lines every 76 characters
    saved.get(Number(b.device_pk))?.blocks.push({ boot: b.boot === 1 ? 1 : 0, block: b.block, base64 })
  }
  return saved
}

/**
 * Saves the windows in one statement (devices deleted meanwhile are skipped): their states, and
 * the digest blocks that changed since the last save (a few hundred bytes per device, not the
 * whole window).
 */
export async function saveSeqStates(
  db: Kysely<Database>,
  windows: { pk: number; state: SeqWindowState; blocks: DigestBlock[] }[],
) {
  if (windows.length === 0) return
  const blocks = windows.flatMap((w) => w.blocks.map((b) => ({ pk: w.pk, ...b })))
  await sql`
    with saved as (
      insert into device_seq_tracking (device_pk, state, updated_at)
      select v.pk, v.state, now()
      from unnest(${windows.map((w) => w.pk)}::int[], ${windows.map((w) => JSON.stringify(w.state))}::jsonb[]) as v(pk, state)
      where exists (select 1 from devices d where d.id = v.pk)
      on conflict (device_pk) do update
        -- keep the gaps declared by any replica (gap-claims.ts): they are not part of one window
        set state = excluded.state || jsonb_strip_nulls(jsonb_build_object('declared', device_seq_tracking.state->'declared')),
          updated_at = now()
      returning device_pk
    )
    insert into device_seq_digests (device_pk, boot, block, digests)
    select b.pk, b.boot, b.block, decode(b.base64, 'base64')
    from unnest(${blocks.map((b) => b.pk)}::int[], ${blocks.map((b) => b.boot)}::int2[],
      ${blocks.map((b) => b.block)}::int[], ${blocks.map((b) => b.base64)}::text[]) as b(pk, boot, block, base64)
    where b.pk in (select device_pk from saved)
    order by 1, 2, 3
    on conflict (device_pk, boot, block) do update set digests = excluded.digests`.execute(db)
}
