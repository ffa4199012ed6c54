import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { toIso } from '../../platform/schemas.ts'
import type { DevicesService } from '../devices/index.ts'
import * as repo from './key-repository.ts'
import type { CommandKey } from './schemas.ts'

const newKey = () => randomBytes(32).toString('hex')

/**
 * The per-device HMAC keys. Issued at registration, lazily for devices registered before keys
 * existed, replaced on rotation. Kept in clear in the database: the server needs the key itself
 * to sign, and the device holds the same secret.
 */
export class CommandKeys {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly devices: DevicesService,
  ) {}

  /** Gives a newly registered device its key (keeps one it already has). */
  async issue(devicePk: number): Promise<void> {
    await repo.insertKeyIfMissing(this.db, devicePk, newKey())
  }

  /** The device's current key, created on first use. */
  async keyFor(devicePk: number): Promise<string> {
    const found = await repo.findKey(this.db, devicePk)
    if (found) return found.command_key
    await this.issue(devicePk)
    const created = await repo.findKey(this.db, devicePk)
    if (!created) throw new Error(`no command key for device ${devicePk}`)
    return created.command_key
  }

  async get(deviceId: string): Promise<CommandKey> {
    const device = await this.devices.get(deviceId)
    await this.keyFor(device.id)
    const row = await repo.findKey(this.db, device.id)
    if (!row) throw new Error(`no command key for device ${deviceId}`)
    return toCommandKey(deviceId, row)
  }

  async rotate(deviceId: string): Promise<CommandKey> {
    const device = await this.devices.get(deviceId)
    return toCommandKey(deviceId, await repo.replaceKey(this.db, device.id, newKey()))
  }
}

function toCommandKey(
  deviceId: string,
  row: { command_key: string; created_at: Date; rotated_at: Date | null },
): CommandKey {
  return {
    device_id: deviceId,
    command_key: row.command_key,
    created_at: toIso(row.created_at) as string,
    rotated_at: toIso(row.rotated_at),
  }
}
