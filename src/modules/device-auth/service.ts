import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DevicesService } from '../devices/index.ts'
import { HashCache } from './hash-cache.ts'
import * as repo from './repository.ts'
import type { MqttSecret } from './schemas.ts'

/** 32 random bytes: 256 bits of entropy, so one SHA-256 is enough (no guessing to slow down). */
const newSecret = () => randomBytes(32).toString('base64url')
export const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex')

/** What the embedded broker is told to do when a credential changes (disconnect the live session). */
export type SessionKiller = (deviceId: string) => void

/**
 * The devices' MQTT secrets for the embedded broker (MQTT_DEVICE_AUTH=token). Only the SHA-256
 * of each secret is stored: a leaked table does not let anyone connect. A secret is random and
 * high-entropy (not chosen by a person), so a fast hash is as good as a slow one here.
 * Registration issues a secret that nobody sees (the registration answer is unchanged); an admin
 * rotates to get the device's secret — shown once — and rotation revokes the previous one.
 * The broker's checks read the hashes through a bounded cache that every change here clears
 * (`forget` for a deleted device); other replicas see a change within the cache's TTL.
 */
export class DeviceSecrets {
  private killSession: SessionKiller = () => undefined

  constructor(
    private readonly db: Kysely<Database>,
    private readonly devices: Pick<DevicesService, 'get' | 'find'>,
    private readonly hashes = new HashCache(),
  ) {}

  /** The broker's hook that closes a device's connection after its secret changed. */
  onRevoked(kill: SessionKiller): void {
    this.killSession = kill
  }

  /** At registration: a secret nobody knows yet, so the device stays locked out until rotated. */
  async issue(devicePk: number, deviceId: string): Promise<void> {
    await repo.insertHashIfMissing(this.db, devicePk, hashSecret(newSecret()))
    this.hashes.forget(deviceId)
  }

  /** A new secret for the device (shown once); the old one stops working and its session is closed. */
  async rotate(deviceId: string): Promise<MqttSecret> {
    const device = await this.devices.get(deviceId)
    const password = newSecret()
    await repo.replaceHash(this.db, device.id, hashSecret(password))
    this.hashes.forget(device.device_id)
    this.killSession(device.device_id)
    return { device_id: device.device_id, username: device.device_id, password }
  }

  /** Revokes the device's secret without a new one; its session is closed. */
  async revoke(deviceId: string): Promise<void> {
    const device = await this.devices.get(deviceId)
    await repo.deleteHash(this.db, device.id)
    this.hashes.forget(device.device_id)
    this.killSession(device.device_id)
  }

  /**
   * The device was deleted (its secret went with it): no cached hash may admit it any more, and
   * its live session on the embedded broker is closed (it would otherwise go on publishing).
   */
  forget(deviceId: string): void {
    this.hashes.forget(deviceId)
    this.killSession(deviceId)
  }

  /** True when `password` is the current secret of a registered device. */
  async verify(deviceId: string, password: string): Promise<boolean> {
    const stored = await this.hashes.get(deviceId, () => repo.findHash(this.db, deviceId))
    if (!stored) return false
    return timingSafeEqual(Buffer.from(hashSecret(password), 'hex'), Buffer.from(stored, 'hex'))
  }

  async isRegistered(deviceId: string): Promise<boolean> {
    return (await this.devices.find(deviceId)) !== undefined
  }

  /**
   * The simulator's meters in plugin mode: a fresh secret for a simulated device (metadata.simulated),
   * undefined for any other — the simulator never takes over a real device's credential.
   */
  async secretForSimulated(deviceId: string): Promise<string | undefined> {
    const device = await this.devices.find(deviceId)
    if (device?.metadata.simulated !== true) return undefined
    return (await this.rotate(deviceId)).password
  }
}
