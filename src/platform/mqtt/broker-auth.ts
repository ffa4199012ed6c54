import { timingSafeEqual } from 'node:crypto'
import { TLSSocket } from 'node:tls'
import type {
  Aedes,
  AuthenticateError,
  AuthorizePublishHandler,
  AuthorizeSubscribeHandler,
  Client,
} from 'aedes'
import { deviceMayPublish, deviceMaySubscribe, isDeviceId } from '../../protocol/index.ts'
import {
  BLOCKED_REASONS,
  type BlockedBy,
  type FailedConnectPolicy,
  FailedConnects,
  LOOPBACK,
  remoteAddress,
} from './failed-connects.ts'
import { RetainPolicy } from './retain-policy.ts'

/** How devices prove who they are to the embedded broker (config MQTT_DEVICE_AUTH). */
export type DeviceAuthMode = 'token' | 'mtls' | 'none'

/** The device registry's answers the broker needs; supplied by the device-auth module at start. */
export interface DeviceCredentialCheck {
  /** True when `password` is the device's current MQTT secret. */
  verifySecret(deviceId: string, password: string): Promise<boolean>
  /** True when the device is registered (a certificate alone does not admit a deleted device). */
  isRegistered(deviceId: string): Promise<boolean>
}

/** The process's own MQTT clients (the hub): a credential generated at start, never stored. */
export interface InternalCredential {
  clientId: string
  username: string
  password: string
}

export type DeniedAction = 'connect' | 'publish' | 'will' | 'subscribe'

export interface BrokerAuthOptions {
  mode: DeviceAuthMode
  internal: InternalCredential
  /** Counts refusals (mqtt_denied_total{action}); `address` is the client's remote address. */
  onDenied?: (action: DeniedAction, clientId: string, reason: string, address: string | undefined) => void
  /** Counts CONNECTs refused unchecked, by what reached its failure limit (also passed to onDenied). */
  onBlocked?: (by: BlockedBy) => void
  /** A connection's CONNECT was accepted (its socket, for the PreAuthGuard). */
  onAuthenticated?: (conn: object, clientId: string) => void
  /** What failing costs (FailedConnects); unset: refusals are immediate and unlimited. */
  failedConnects?: FailedConnectPolicy
}

const NO_PRICE: FailedConnectPolicy = { delayMs: 0, maxHeld: 0, max: 0, windowMs: 60_000 }

type Identity = { kind: 'internal' } | { kind: 'anonymous' } | { kind: 'device'; deviceId: string }

function authError(returnCode: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

function sameSecret(given: Buffer | undefined, expected: string): boolean {
  if (!given) return false
  const want = Buffer.from(expected)
  return given.length === want.length && timingSafeEqual(given, want)
}

/**
 * Authentication and topic isolation of the embedded broker (aedes).
 *
 * - The server's own clients present the process-local credential, with their fixed client id,
 *   from loopback. Nobody else may use that client id (it would take over the server's session).
 * - `token`: username = client id = device_id, password = the device's current secret.
 * - `mtls`: only connections on the TLS listener, whose verified client certificate's CN is the
 *   device_id and equals the client id; plain-TCP connections are refused for devices.
 * - `none` (labs): anonymous, no ACL — as before this existed.
 * - ACL for devices (the protocol's table, src/protocol): publish only the device → server kinds on
 *   `iot/{own id}/…` (the will included), subscribe only to `iot/{own id}/command`. A denied publish is an error, which
 *   makes aedes drop the message unacknowledged and close the connection; a denied subscription is
 *   granted 0x80 and the connection stays.
 *
 * - Failing has a price (FailedConnects): refusals are answered after a delay; an address with too
 *   many refused CONNECTs, or a device closed too often for forbidden publishes, is refused before
 *   any credential check (the address is looked at in aedes preConnect) until its window ends.
 *
 * Install before anything wraps `aedes.authorizePublish` (the ingest's tap calls the handler it
 * wrapped first and journals only what it allowed).
 */
export class BrokerAuth {
  private credentials: DeviceCredentialCheck | undefined
  private readonly identities = new WeakMap<Client, Identity>()
  private readonly failed: FailedConnects
  private aedes: Aedes | undefined
  private readonly retained = new RetainPolicy()

  constructor(private readonly options: BrokerAuthOptions) {
    this.failed = new FailedConnects(options.failedConnects ?? NO_PRICE, options.internal.clientId)
  }

  get mode(): DeviceAuthMode {
    return this.options.mode
  }

  /** Refusals held in their delay now; addresses and devices tracked for the failure limit. */
  get refusalState(): { held: number; addresses: number; devices: number } {
    return this.failed.state
  }

  /** The device-auth module supplies the registry checks; until then devices get "server unavailable". */
  setCredentialCheck(check: DeviceCredentialCheck): void {
    this.credentials = check
  }

  /** Closes the device's connection (its credential was rotated or revoked); it must reconnect. */
  disconnect(deviceId: string): void {
    const clients = (this.aedes as unknown as { clients?: Record<string, Client> } | undefined)?.clients
    const client = clients?.[deviceId]
    if (client && this.identities.get(client)?.kind === 'device') client.close()
  }

  /** The accept-time gate of the embedded broker (see EmbeddedBroker.admit). */
  admits(socket: { remoteAddress?: string }): boolean {
    if (this.failed.admits(socket.remoteAddress)) return true
    this.options.onBlocked?.('address')
    return false
  }

  install(aedes: Aedes): void {
    this.aedes = aedes
    const defaultPublish = aedes.authorizePublish.bind(aedes) as AuthorizePublishHandler
    aedes.preConnect = (client, packet, done) => {
      // Only noted here: aedes sends no CONNACK for a preConnect error, authenticate sends the refusal.
      this.failed.screen(client, packet.clientId)
      done(null, true)
    }
    aedes.authenticate = (client, username, password, done) => {
      // Over a failure limit: refused before any credential is looked at (never the server's own id).
      const blocked = this.failed.blockedBy(client)
      const checked = blocked
        ? Promise.reject(authError(5, BLOCKED_REASONS[blocked]))
        : this.authenticate(client, username, password)
      checked.then(
        (identity) => {
          this.identities.set(client, identity)
          this.options.onAuthenticated?.(client.conn, client.id)
          done(null, true)
        },
        (error: AuthenticateError) => this.refuse(client, error, blocked, done),
      )
    }
    const authorizePublish: AuthorizePublishHandler = (client, packet, callback) => {
      // client null: a publish of the broker itself (a will of a dead broker instance, $SYS).
      const identity = client ? this.identities.get(client) : undefined
      if (client && identity?.kind === 'device' && !deviceMayPublish(identity.deviceId, packet.topic)) {
        const action = packet === (client as unknown as { will?: unknown }).will ? 'will' : 'publish'
        this.deny(action, client, `topic ${packet.topic}`)
        this.failed.forbiddenPublish(identity.deviceId)
        return callback(new Error(`not authorized to publish to ${packet.topic}`))
      }
      if (client && !identity && this.options.mode !== 'none') {
        this.deny('publish', client, 'unauthenticated')
        return callback(new Error('not authenticated'))
      }
      if (packet.retain && !this.retained.admit(packet.topic, packet.payload.length)) packet.retain = false
      defaultPublish(client, packet, callback)
    }
    aedes.authorizePublish = authorizePublish
    const authorizeSubscribe: AuthorizeSubscribeHandler = (client, subscription, callback) => {
      const identity = this.identities.get(client)
      const allowed =
        identity?.kind === 'device'
          ? deviceMaySubscribe(identity.deviceId, subscription.topic)
          : identity !== undefined || this.options.mode === 'none'
      if (allowed) return callback(null, subscription)
      this.deny('subscribe', client, `topic ${subscription.topic}`)
      // null, not an error: an error would close the connection; null grants 0x80 (failure).
      callback(null, null)
    }
    aedes.authorizeSubscribe = authorizeSubscribe
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<Identity> {
    const { internal, mode } = this.options
    if (client.id === internal.clientId) {
      if (
        username === internal.username &&
        sameSecret(password, internal.password) &&
        LOOPBACK.has(remoteAddress(client) ?? '')
      )
        return { kind: 'internal' }
      throw authError(5, 'the client id of the server is reserved')
    }
    if (mode === 'none') return { kind: 'anonymous' }
    const check = this.credentials
    if (!check) throw Object.assign(new Error('device registry not ready'), { returnCode: 3 })
    const deviceId = client.id
    if (!isDeviceId(deviceId)) throw authError(5, 'client id is not a valid device id')
    const socket = client.conn
    if (mode === 'mtls') {
      if (!(socket instanceof TLSSocket) || !socket.authorized)
        throw authError(5, 'a client certificate on the TLS listener is required')
      const cn = socket.getPeerCertificate()?.subject?.CN
      if (cn !== deviceId) throw authError(5, `certificate CN ${String(cn)} is not the client id`)
      if (username !== undefined && username !== deviceId) throw authError(4, 'username is not the device id')
      if (!(await check.isRegistered(deviceId))) throw authError(5, 'device not registered')
      return { kind: 'device', deviceId }
    }
    if (username === undefined || password === undefined) throw authError(4, 'username and password required')
    if (username !== deviceId) throw authError(5, 'username is not the client id')
    if (!(await check.verifySecret(deviceId, password.toString('utf8'))))
      throw authError(4, 'bad username or password')
    return { kind: 'device', deviceId }
  }

  /** Counts the refusal, and answers it after the delay. */
  private refuse(
    client: Client,
    error: AuthenticateError,
    blocked: BlockedBy | undefined,
    done: (e: AuthenticateError, ok: false) => void,
  ) {
    const answer = () => done(error.returnCode ? error : authError(5, 'not authorized'), false)
    this.deny('connect', client, error.message)
    // 3 = the server is not ready: not the client's fault, so neither counted nor delayed.
    if (error.returnCode === 3) return answer()
    if (blocked) this.options.onBlocked?.(blocked)
    this.failed.refused(client, answer)
  }

  private deny(action: DeniedAction, client: Client, reason: string): void {
    this.options.onDenied?.(action, client.id, reason, remoteAddress(client))
  }
}
