import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { ConflictError, NotFoundError } from '../../platform/domain-errors.ts'
import { toIso } from '../../platform/schemas.ts'
import type { AlertsService } from '../alerts/index.ts'
import type { DeviceConfig, DevicesService } from '../devices/index.ts'
import type { CommandKeys } from './command-keys.ts'
import { validateParams } from './command-params.ts'
import type { CommandsConfig } from './commands-config.ts'
import { advanceOta, judgeHello, type OtaStatusReport } from './ota-progress.ts'
import type { CommandOutbox } from './outbox.ts'
import * as repo from './repository.ts'
import {
  ACK_RESULTS,
  type AckBody,
  type AckResult,
  type Command,
  type CommandCreate,
  type CommandIssued,
  type CommandKey,
  type CommandListQuery,
  type CommandStatus,
  type OtaProgress,
} from './schemas.ts'

/** A `command_ack` message of a device, as the ingest module hands it over. */
export interface CommandAck {
  cmd_id: string
  result: AckResult
  detail?: string
  ts: string
}

export interface CommandsDeps {
  db: Kysely<Database>
  devices: DevicesService
  alerts: AlertsService
  config: CommandsConfig
  log: FastifyBaseLogger
}

export const COMMAND_NOT_FOUND = 'Command not found'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function toCommand(row: repo.CommandRow): Command {
  return {
    cmd_id: row.cmd_id,
    device_id: row.device_id,
    cmd: row.cmd,
    params: row.params ?? {},
    status: row.status as CommandStatus,
    detail: row.detail,
    ota: (row.ota as OtaProgress | null) ?? null,
    created_at: toIso(row.created_at) as string,
    sent_at: toIso(row.sent_at),
    acked_at: toIso(row.acked_at),
    updated_at: toIso(row.updated_at) as string,
  }
}

type AckOutcome = 'applied' | 'duplicate' | 'conflict'

/**
 * Commands to devices: the commands module's public facade. Stores and publishes commands, follows
 * them through their acknowledgement (or timeout) and, for start_ota, through the upgrade.
 */
export class CommandsService {
  constructor(
    private readonly deps: CommandsDeps,
    private readonly keys: CommandKeys,
    private readonly outbox: CommandOutbox,
  ) {}

  /** Stores a command as pending and publishes it; `sent` once a broker took it, else it is sent later. */
  async issue(deviceId: string, input: CommandCreate): Promise<{ sent: boolean; body: CommandIssued }> {
    const params = validateParams(input.cmd, input.params)
    const device = await this.deps.devices.get(deviceId)
    const cmdId = randomUUID()
    await repo.insertCommand(this.deps.db, { cmd_id: cmdId, device_pk: device.id, cmd: input.cmd, params })
    const sent = await this.outbox.publish({
      cmd_id: cmdId,
      device_id: deviceId,
      device_pk: device.id,
      cmd: input.cmd,
      params,
    })
    const row = await repo.findCommand(this.deps.db, cmdId)
    const status = (row?.status ?? 'pending') as CommandStatus
    const body = { cmd_id: cmdId, device_id: deviceId, cmd: input.cmd, status }
    return sent
      ? { sent, body: { ...body, message: 'Command sent' } }
      : {
          sent,
          body: {
            ...body,
            message:
              'No broker took the command yet: it is stored and will be sent when a broker is reachable',
          },
        }
  }

  async get(cmdId: string): Promise<Command> {
    const row = await repo.findCommand(this.deps.db, cmdId)
    if (!row) throw new NotFoundError(COMMAND_NOT_FOUND)
    return toCommand(row)
  }

  /** The device's commands, newest first. */
  async listForDevice(deviceId: string, query: CommandListQuery): Promise<Command[]> {
    const device = await this.deps.devices.get(deviceId)
    return (await repo.listCommands(this.deps.db, device.id, query)).map(toCommand)
  }

  /** The manual acknowledgement (PUT /api/commands/{cmd_id}/ack); 409 when another result is recorded. */
  async acknowledge(cmdId: string, ack: AckBody): Promise<Command> {
    const row = await repo.findCommand(this.deps.db, cmdId)
    if (!row) throw new NotFoundError(COMMAND_NOT_FOUND)
    const outcome = await this.applyAck(row, ack.result, ack.detail ?? null)
    if (outcome === 'conflict') {
      throw new ConflictError(`Command already acknowledged with result "${row.status}"`)
    }
    return this.get(cmdId)
  }

  /**
   * A device's `command_ack`. Acks of unknown commands or of another device's command are ignored.
   * An accepted update_config becomes the device's configuration (REQ-CONFIG-001). A late ack
   * (after `timeout`) still records the result and says so in `detail`; once a result is recorded,
   * repeats are ignored.
   */
  async handleAck(deviceId: string, ack: CommandAck): Promise<void> {
    const row = await this.commandOf(deviceId, ack.cmd_id)
    if (!row) return
    if (!ACK_RESULTS.includes(ack.result)) {
      this.deps.log.debug(
        { device_id: deviceId, cmd_id: ack.cmd_id, result: ack.result },
        'ack result unknown',
      )
      return
    }
    const outcome = await this.applyAck(row, ack.result, ack.detail ?? null)
    if (outcome !== 'applied') {
      this.deps.log.debug({ device_id: deviceId, cmd_id: ack.cmd_id, outcome }, 'ack changes nothing')
    }
  }

  private async applyAck(
    row: repo.CommandRow,
    result: AckResult,
    detail: string | null,
  ): Promise<AckOutcome> {
    if (!repo.ACKABLE.includes(row.status as CommandStatus)) {
      return row.status === result ? 'duplicate' : 'conflict'
    }
    if (result === 'accepted' && row.cmd === 'update_config') {
      // Before the status changes: should this fail, the ack can be retried and nothing is lost.
      await this.deps.devices.applyConfig(
        row.device_id,
        (row.params ?? {}) as Partial<DeviceConfig>,
        'update_config',
        row.cmd_id,
      )
    }
    const text =
      row.status === 'timeout'
        ? `${detail ? `${detail}; ` : ''}late acknowledgement, after the ${this.deps.config.COMMAND_ACK_TIMEOUT_S} s timeout`
        : detail
    if (await repo.recordAck(this.deps.db, row.cmd_id, result, text)) return 'applied'
    const now = await repo.findCommand(this.deps.db, row.cmd_id)
    return now?.status === result ? 'duplicate' : 'conflict'
  }

  /**
   * A device's `ota_status` for a start_ota command: advances the command's `ota` progress. The
   * first report also counts as the device's acceptance when its ack has not arrived. `failed`
   * raises an `ota_failed` alert.
   */
  async handleOtaStatus(deviceId: string, report: OtaStatusReport): Promise<void> {
    const row = await this.commandOf(deviceId, report.cmd_id)
    if (!row) return
    if (row.cmd !== 'start_ota') {
      this.deps.log.debug(
        { device_id: deviceId, cmd_id: report.cmd_id },
        'ota_status for a command not start_ota',
      )
      return
    }
    const target = typeof row.params?.fw_version === 'string' ? row.params.fw_version : null
    const next = await this.deps.db.transaction().execute(async (trx) => {
      const locked = await repo.lockCommand(trx, row.cmd_id)
      if (!locked) return undefined
      const ota = advanceOta(locked.ota as OtaProgress | null, report, target, new Date())
      if (!ota) return undefined
      const accepts = repo.ACKABLE.includes(locked.status as CommandStatus)
      await repo.setOta(trx, row.cmd_id, ota, accepts ? 'accepted' : undefined)
      return ota
    })
    if (next?.state === 'failed') {
      await this.deps.alerts.raise({
        device_pk: row.device_pk,
        alert_type: 'ota_failed',
        severity: 'error',
        message: `Firmware upgrade to ${next.fw_version_target ?? 'a new version'} failed${next.detail ? `: ${next.detail}` : ''}`,
        details: { cmd_id: row.cmd_id, fw_version_target: next.fw_version_target, detail: next.detail },
      })
    }
  }

  /**
   * A device's hello: confirms its latest upgrade when it reports the target version, raises
   * `fw_mismatch` when it runs another one after the upgrade. Pass `uptimeS` (the hello's uptime_s)
   * so a hello sent during `applying`, before the reboot, is not taken for a failed upgrade.
   */
  async handleHello(deviceId: string, fwVersion: string, uptimeS?: number): Promise<void> {
    const row = await repo.latestOtaCommand(this.deps.db, deviceId)
    const ota = row?.ota as OtaProgress | null | undefined
    if (!row || !ota || ota.confirmed || (ota.state !== 'applying' && ota.state !== 'success')) return
    const target = typeof row.params?.fw_version === 'string' ? row.params.fw_version : null
    const verdict = await this.deps.db.transaction().execute(async (trx) => {
      const locked = await repo.lockCommand(trx, row.cmd_id)
      const result = judgeHello(
        (locked?.ota as OtaProgress | null) ?? null,
        target,
        fwVersion,
        new Date(),
        uptimeS,
      )
      if (result.kind !== 'none') await repo.setOta(trx, row.cmd_id, result.ota)
      return result
    })
    if (verdict.kind === 'mismatch') {
      await this.deps.alerts.raise({
        device_pk: row.device_pk,
        alert_type: 'fw_mismatch',
        severity: 'error',
        message: `Device runs firmware ${fwVersion} after the upgrade to ${verdict.expected}`,
        details: { cmd_id: row.cmd_id, expected: verdict.expected, reported: fwVersion },
      })
    }
  }

  /** The device's latest start_ota command (with its `ota` progress), or null when it has none. */
  async latestOta(deviceId: string): Promise<Command | null> {
    await this.deps.devices.get(deviceId)
    const row = await repo.latestOtaCommand(this.deps.db, deviceId)
    return row ? toCommand(row) : null
  }

  /** The device's command key (created when missing). */
  commandKey(deviceId: string): Promise<CommandKey> {
    return this.keys.get(deviceId)
  }

  /** Replaces the device's command key; commands published from now on are signed with the new one. */
  rotateCommandKey(deviceId: string): Promise<CommandKey> {
    return this.keys.rotate(deviceId)
  }

  /** sent → timeout for commands unacknowledged past COMMAND_ACK_TIMEOUT_S; one alert per device. */
  async sweepTimeouts(): Promise<number> {
    const timeoutS = this.deps.config.COMMAND_ACK_TIMEOUT_S
    const rows = await repo.markTimedOut(this.deps.db, timeoutS)
    for (const row of rows) {
      this.deps.log.warn({ cmd_id: row.cmd_id, cmd: row.cmd }, 'command timed out')
      await this.deps.alerts.raise({
        device_pk: row.device_pk,
        alert_type: 'command_timeout',
        severity: 'warning',
        message: `Command ${row.cmd} (${row.cmd_id}) got no acknowledgement within ${timeoutS} s`,
        details: { cmd_id: row.cmd_id, cmd: row.cmd },
      })
    }
    return rows.length
  }

  /** How many commands are in each state (for /api/stats). */
  countByStatus(): Promise<Record<string, number>> {
    return repo.countByStatus(this.deps.db)
  }

  /** Publishes the outbox (pending commands) to the connected brokers. */
  flushOutbox(): Promise<void> {
    return this.outbox.flush()
  }

  /** The command of this device, or undefined (logged at debug) for an unknown id or another device's. */
  private async commandOf(deviceId: string, cmdId: string): Promise<repo.CommandRow | undefined> {
    const row = UUID.test(cmdId) ? await repo.findCommand(this.deps.db, cmdId) : undefined
    if (row && row.device_id === deviceId) return row
    this.deps.log.debug({ device_id: deviceId, cmd_id: cmdId }, 'message for an unknown command ignored')
    return undefined
  }
}
