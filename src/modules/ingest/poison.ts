import type { FastifyBaseLogger } from 'fastify'
import type { FlushPlan, PendingRecord } from './flush-plan.ts'
import { parseTopic } from './parse-message.ts'

/** Failures of one batch in a row, the same way, before its devices are stored apart. */
export const SPLIT_AFTER = 3
/** How long a device whose records were quarantined is stored apart from the others. */
const SUSPECT_MS = 10 * 60_000
const MAX_SUSPECTS = 10_000
/** A single-device batch counts as that device's own failure if the store worked this recently. */
const RECENT_SUCCESS_MS = 60_000

export interface PoisonGuardOptions {
  execute: (plan: FlushPlan) => Promise<void>
  /** Keeps a device's records of this batch out of the way (durably: throws if it cannot). */
  quarantine: (
    deviceId: string,
    devicePk: number | undefined,
    records: PendingRecord[],
    error: Error,
  ) => Promise<void>
  log: FastifyBaseLogger
}

/** The devices a plan writes something for. */
export function devicesOf(plan: FlushPlan): string[] {
  const ids = new Set<string>()
  for (const d of plan.datagrams) ids.add(d.deviceId)
  for (const x of [...plan.gaps, ...plan.acks, ...plan.otas, ...plan.hellos]) ids.add(x.deviceId)
  return [...ids]
}

/** The writes of a plan that concern these devices (or all others, with `except`): what execute reads. */
export function narrow(plan: FlushPlan, ids: Set<string>, except = false): FlushPlan {
  const keep = (x: { deviceId: string }) => ids.has(x.deviceId) !== except
  return {
    ...plan,
    datagrams: plan.datagrams.filter(keep),
    gaps: plan.gaps.filter(keep),
    acks: plan.acks.filter(keep),
    otas: plan.otas.filter(keep),
    hellos: plan.hellos.filter(keep),
  }
}

const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)))

/**
 * Poison isolation (issue 16): a batch that fails the same way again and again is split by device
 * (bisection) until the failing devices are found; their records are quarantined when others were
 * stored meanwhile — proof that the failure is theirs, not the store's. When nothing can be stored
 * the error is the caller's to retry (an outage is not poison). A device once quarantined is
 * stored apart from the others for a while, so it costs them nothing; once its records store
 * again it is trusted again, without a restart.
 */
export class PoisonGuard {
  private readonly suspects = new Map<string, number>()
  private lastSuccessAt = Number.NEGATIVE_INFINITY

  constructor(private readonly o: PoisonGuardOptions) {}

  /** Executes a plan; with `isolate`, bisects it by device. Throws when no failure is one device's own. */
  async execute(plan: FlushPlan, batch: PendingRecord[], isolate: boolean): Promise<void> {
    const now = Date.now()
    const ids = devicesOf(plan)
    const suspects = ids.filter((id) => (this.suspects.get(id) ?? 0) > now)
    if (!isolate && suspects.length === 0) {
      await this.o.execute(plan)
      this.lastSuccessAt = Date.now()
      return
    }
    if (!isolate) {
      await this.o.execute(narrow(plan, new Set(suspects), true))
      this.lastSuccessAt = Date.now()
      for (const id of suspects) await this.alone(plan, batch, id)
      return
    }
    const singleRecentlyFine = ids.length === 1 && now - this.lastSuccessAt < RECENT_SUCCESS_MS
    const failed = await this.bisect(plan, ids)
    if (!failed.stored && !singleRecentlyFine) throw failed.errors[0] ?? new Error('batch failed')
    for (const id of failed.ids) await this.alone(plan, batch, id)
  }

  /** Finds the devices whose part fails; gives up when two fail before anything was stored. */
  private async bisect(plan: FlushPlan, ids: string[]) {
    const out = { stored: false, ids: [] as string[], errors: [] as Error[] }
    const visit = async (part: string[]): Promise<void> => {
      if (part.length === 0 || (!out.stored && out.ids.length >= 2)) return
      try {
        await this.o.execute(narrow(plan, new Set(part)))
        out.stored = true
        this.lastSuccessAt = Date.now()
      } catch (error) {
        if (part.length === 1) {
          out.ids.push(part[0] as string)
          out.errors.push(asError(error))
          return
        }
        const mid = part.length >> 1
        await visit(part.slice(0, mid))
        await visit(part.slice(mid))
      }
    }
    const mid = ids.length >> 1
    await visit(ids.slice(0, mid))
    await visit(ids.slice(mid))
    return out
  }

  /** One device's part once more, on its own; failing again, its records of the batch are quarantined. */
  private async alone(plan: FlushPlan, batch: PendingRecord[], id: string): Promise<void> {
    try {
      await this.o.execute(narrow(plan, new Set([id])))
      if (this.suspects.delete(id)) this.o.log.info({ device_id: id }, 'ingest: device stores again')
    } catch (error) {
      const records = batch.filter((r) => parseTopic(r.topic)?.deviceId === id)
      const pk =
        plan.datagrams.find((d) => d.deviceId === id)?.devicePk ??
        plan.gaps.find((g) => g.deviceId === id)?.pk
      await this.o.quarantine(id, pk, records, asError(error))
      if (this.suspects.size >= MAX_SUSPECTS)
        this.suspects.delete(this.suspects.keys().next().value as string)
      this.suspects.set(id, Date.now() + SUSPECT_MS)
    }
  }
}
