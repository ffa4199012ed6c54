import { setTimeout as sleep } from 'node:timers/promises'
import type { OtaRequest } from './command-params.ts'
import type { OtaState } from './messages.ts'

export interface OtaTarget {
  otaStatus(body: {
    cmd_id: string
    ota_state: OtaState
    progress_pct: number
    fw_version_target: string
    detail?: string
  }): void
  /** The new image is in place: report it after the next boot and reboot into it. */
  installAndReboot(fwVersion: string): void
}

/** The image a test can make fail on purpose: an all-zero SHA-256 never matches a download. */
const BROKEN_IMAGE = /^0{64}$/

/**
 * A firmware upgrade as the device reports it: downloading 0..100 % in 10 % steps, verifying,
 * then failed (checksum) or applying → success → reboot into the new version. Runs beside the
 * sampling and sending, which do not pause. An abort (another reboot, a stop) ends it silently.
 */
export async function runOta(
  target: OtaTarget,
  cmdId: string,
  request: OtaRequest,
  stepMs: number,
  signal: AbortSignal,
): Promise<void> {
  const report = (ota_state: OtaState, progress_pct: number, detail?: string) =>
    target.otaStatus({
      cmd_id: cmdId,
      ota_state,
      progress_pct,
      fw_version_target: request.fw_version,
      ...(detail ? { detail } : {}),
    })
  try {
    for (let pct = 0; pct <= 100; pct += 10) {
      report('downloading', pct)
      await sleep(stepMs, undefined, { signal })
    }
    report('verifying', 100)
    await sleep(stepMs, undefined, { signal })
    if (BROKEN_IMAGE.test(request.fw_sha256)) {
      report('failed', 100, 'checksum mismatch: the image does not match fw_sha256')
      return
    }
    report('applying', 100)
    await sleep(2 * stepMs, undefined, { signal })
    report('success', 100)
    target.installAndReboot(request.fw_version)
  } catch (error) {
    if (!signal.aborted) throw error
  }
}
