import type { OtaProgress, OtaState } from './schemas.ts'

/** An `ota_status` message of a device, as the ingest module hands it over. */
export interface OtaStatusReport {
  cmd_id: string
  ota_state: OtaState
  progress_pct?: number
  fw_version_target?: string
  detail?: string
  ts: string
}

const TERMINAL: ReadonlySet<string> = new Set(['success', 'failed'])

const validTime = (ts: string): string | null => {
  const ms = Date.parse(ts)
  return Number.isNaN(ms) ? null : new Date(ms).toISOString()
}

const validPct = (v: unknown): number | null =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 100 ? v : null

/**
 * The upgrade's state after a report, or undefined when the report changes nothing: the upgrade
 * already ended (success/failed are final), or the report is older (device `ts`) than the last one
 * applied — QoS 1 copies from several brokers may arrive out of order.
 */
export function advanceOta(
  current: OtaProgress | null,
  report: OtaStatusReport,
  target: string | null,
  now: Date,
): OtaProgress | undefined {
  if (current && TERMINAL.has(current.state)) return undefined
  const reportedAt = validTime(report.ts)
  if (current?.reported_at && reportedAt && reportedAt < current.reported_at) return undefined
  const sameState = current?.state === report.ota_state
  const progress =
    validPct(report.progress_pct) ?? (report.ota_state === 'success' ? 100 : (current?.progress_pct ?? null))
  const at = now.toISOString()
  return {
    ...current,
    state: report.ota_state,
    progress_pct: progress,
    fw_version_target: report.fw_version_target ?? current?.fw_version_target ?? target,
    detail: report.detail ?? (sameState ? (current?.detail ?? null) : null),
    updated_at: at,
    reported_at: reportedAt ?? current?.reported_at ?? null,
    history: sameState
      ? (current?.history ?? [])
      : [...(current?.history ?? []), { state: report.ota_state, progress_pct: progress, at }],
  }
}

export type HelloVerdict =
  | { kind: 'none' }
  | { kind: 'confirmed'; ota: OtaProgress }
  | { kind: 'mismatch'; ota: OtaProgress; expected: string }

/**
 * What a hello with `fwVersion` says about the device's latest upgrade once it is applying or
 * succeeded and not yet confirmed. The target version → confirmed (and `success`, since a device
 * may reboot straight from `applying`). Another version → a mismatch, but only from a boot after
 * the upgrade began applying: hellos go on during the upgrade with the old firmware. `uptimeS`
 * tells when the device booted; without it only a mismatch after `success` counts. Each reported
 * version is a mismatch once per command.
 */
export function judgeHello(
  ota: OtaProgress | null,
  target: string | null,
  fwVersion: string,
  now: Date,
  uptimeS?: number,
): HelloVerdict {
  if (!ota || ota.confirmed || (ota.state !== 'applying' && ota.state !== 'success')) return { kind: 'none' }
  const expected = ota.fw_version_target ?? target
  if (!expected) return { kind: 'none' }
  const at = now.toISOString()
  if (fwVersion === expected) {
    const history =
      ota.state === 'success' ? ota.history : [...ota.history, { state: 'success', progress_pct: 100, at }]
    return {
      kind: 'confirmed',
      ota: {
        ...ota,
        state: 'success',
        progress_pct: ota.state === 'success' ? ota.progress_pct : 100,
        detail: ota.state === 'success' ? ota.detail : 'success: a hello reported the target version',
        history,
        confirmed: true,
        confirmed_at: at,
        updated_at: at,
      },
    }
  }
  if (ota.mismatch_fw_version === fwVersion) return { kind: 'none' }
  const applyingAt = ota.history.find((h) => h.state === 'applying')?.at ?? ota.updated_at
  const bootedAfterApplying =
    uptimeS !== undefined && Number.isFinite(uptimeS)
      ? now.getTime() - uptimeS * 1000 >= Date.parse(applyingAt)
      : ota.state === 'success'
  if (!bootedAfterApplying) return { kind: 'none' }
  return {
    kind: 'mismatch',
    expected,
    ota: { ...ota, confirmed: false, mismatch_fw_version: fwVersion, mismatch_at: at, updated_at: at },
  }
}
