import { type EnergyPeriod, periodBounds } from './calendar.ts'
import { addInto as add, type EnergyInterval, type EnergyTotals, emptyInterval } from './energy-integrator.ts'
import type { EnergyPiece, EnergyService } from './energy-service.ts'

/** One row of a window: [start, end) and its registers (Wh, unrounded), final when nothing may change it. */
export interface WindowRow extends EnergyInterval {
  end: number
  final: boolean
}

export interface EnergyWindow {
  rows: WindowRow[]
  totals: EnergyTotals & { final: boolean }
}

/**
 * The registers of exactly [start, stop), one row per period (clipped to the window, empty ones
 * listed). Whole stored registers are summed; where a row's edge cuts a register, that piece is
 * computed from the samples with the same integration, so the pieces of a register add up to it
 * and the totals (and coverage) of a window are the same at any period.
 */
export async function energyWindow(
  energy: EnergyService,
  devicePk: number,
  window: { start: number; stop: number; period: EnergyPeriod; tz: string; now: number },
): Promise<EnergyWindow> {
  const { start, stop } = window
  const I = energy.intervalMs
  const bounds = periodBounds(start, stop, window.period, window.tz)
  const stored = await energy.intervals(devicePk, Math.floor(start / I) * I, stop)
  const byStart = new Map(stored.map((r) => [r.start, r]))
  const rows: WindowRow[] = []
  const pieces: { row: WindowRow; piece: EnergyPiece }[] = []
  for (let k = 0; k + 1 < bounds.length; k++) {
    const a = bounds[k] as number
    const b = bounds[k + 1] as number
    const row: WindowRow = { ...emptyInterval(a), end: b, final: false }
    rows.push(row)
    const firstWhole = Math.ceil(a / I) * I
    const lastWhole = Math.floor(b / I) * I
    if (firstWhole >= lastWhole) {
      pieces.push({ row, piece: { from: a, to: b } })
      continue
    }
    if (a < firstWhole) pieces.push({ row, piece: { from: a, to: firstWhole } })
    for (let s = firstWhole; s < lastWhole; s += I) {
      const register = byStart.get(s)
      if (register) add(row, register)
    }
    if (lastWhole < b) pieces.push({ row, piece: { from: lastWhole, to: b } })
  }
  const computed = await energy.pieces(
    devicePk,
    pieces.map((p) => p.piece),
  )
  for (const [i, p] of pieces.entries()) add(p.row, computed[i] as EnergyInterval)

  // Final: ended longer than the grace period ago, and no recorded seq gap next to it.
  const gaps = await energy.openGaps(devicePk, start, stop)
  for (const row of rows) {
    const open = gaps.some((g) => g.to >= row.start && g.from <= row.end)
    row.final = row.end + energy.graceMs <= window.now && !open
  }
  const totals = { ...emptyInterval(start), final: rows.every((r) => r.final) }
  for (const row of rows) add(totals, row)
  const { start: _, ...sum } = totals
  return { rows, totals: sum }
}
