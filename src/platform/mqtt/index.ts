import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Config } from '../../config.ts'
import { BrokerAuth, type DeviceAuthMode } from './broker-auth.ts'
import { type EmbeddedBroker, startEmbeddedBroker } from './embedded-broker.ts'
import { MqttHub } from './hub.ts'
import { LogBudget } from './log-budget.ts'
import { PreAuthGuard } from './pre-auth-guard.ts'
import { startTlsListener, type TlsListener } from './tls-listener.ts'

export {
  BrokerAuth,
  type DeniedAction,
  type DeviceAuthMode,
  type DeviceCredentialCheck,
} from './broker-auth.ts'
export type { EmbeddedBroker } from './embedded-broker.ts'
export { startEmbeddedBroker } from './embedded-broker.ts'
export { BLOCKED_REASONS, type BlockedBy, type FailedConnectPolicy } from './failed-connects.ts'
export type { BrokerLink, MessageHandler } from './hub.ts'
export { MqttHub } from './hub.ts'
export { type MeterBroker, meterBroker } from './meter-broker.ts'

declare module 'fastify' {
  interface FastifyInstance {
    mqtt: MqttHub
    /** Present when MQTT_URL is unset and the process runs its own broker. */
    embeddedBroker: EmbeddedBroker | null
    /** Authentication and ACL of the embedded broker (null with external brokers). */
    brokerAuth: BrokerAuth | null
    /** Port of the embedded broker's TLS listener, when MQTT_TLS_PORT is set. */
    brokerTlsPort: number | null
  }
}

export interface MqttPluginOptions {
  config: Config
}

/** Bytes a connection may send before its CONNECT is accepted: a CONNECT with a status will is ~0.5 KB. */
const PRE_AUTH_MAX_BYTES = 16 * 1024

/** The embedded broker's TLS listener when MQTT_TLS_PORT is set (required by MQTT_DEVICE_AUTH=mtls). */
async function startTls(
  broker: EmbeddedBroker,
  config: Config,
  auth: BrokerAuth,
  guard: PreAuthGuard,
): Promise<TlsListener | null> {
  const mtls = config.MQTT_DEVICE_AUTH === 'mtls'
  if (config.MQTT_TLS_PORT === undefined) {
    if (mtls)
      throw new Error('MQTT_DEVICE_AUTH=mtls needs MQTT_TLS_PORT, MQTT_TLS_CERT, MQTT_TLS_KEY, MQTT_TLS_CA')
    return null
  }
  if (!config.MQTT_TLS_CERT || !config.MQTT_TLS_KEY)
    throw new Error('MQTT_TLS_PORT needs MQTT_TLS_CERT and MQTT_TLS_KEY')
  return startTlsListener(broker.aedes, {
    port: config.MQTT_TLS_PORT,
    host: config.HOST,
    certFile: config.MQTT_TLS_CERT,
    keyFile: config.MQTT_TLS_KEY,
    caFile: config.MQTT_TLS_CA,
    requireClientCert: mtls,
    admit: (socket) => auth.admits(socket),
    prepare: (socket) => guard.watch(socket),
  })
}

/** The MQTT connections of the process: to the configured brokers, or to an embedded one. */
export const mqttPlugin = fp<MqttPluginOptions>(
  async (app, { config }) => {
    let broker: EmbeddedBroker | null = null
    let brokerAuth: BrokerAuth | null = null
    let tls: TlsListener | null = null
    let urls: string[]
    // The server's own client proves itself with a password that lives only in this process.
    const internal = {
      clientId: config.MQTT_CLIENT_ID,
      username: config.MQTT_CLIENT_ID,
      password: randomBytes(32).toString('base64url'),
    }
    if (config.MQTT_URL) {
      urls = config.MQTT_URL.split(',').map((u) => u.trim())
    } else {
      broker = await startEmbeddedBroker(config.MQTT_BROKER_PORT, config.HOST, {
        connectTimeout: config.MQTT_CONNECT_TIMEOUT_MS,
      })
      const metrics = app.hasDecorator('metrics') ? app.metrics.client : undefined
      /** A labelled counter of the embedded broker, when the app has a metrics registry. */
      const counter = <L extends string>(name: string, help: string, label: L) =>
        metrics
          ? new metrics.Counter({ name, help, labelNames: [label] as const, registers: [metrics.register] })
          : undefined
      const denied = counter(
        'mqtt_denied_total',
        'Embedded broker refusals: CONNECT, publish, will, subscribe',
        'action',
      )
      const blocked = counter(
        'mqtt_connect_blocked_total',
        'CONNECTs refused unchecked: their address or device reached MQTT_AUTH_FAIL_MAX (also in mqtt_denied_total)',
        'by',
      )
      const guarded = counter(
        'mqtt_connections_closed_total',
        'Embedded broker connections closed by the pre-authentication guard, by reason',
        'reason',
      )
      const log = app.log.child({ component: 'broker-auth' })
      // Shared by the access refusals and the oversized-packet closures below.
      const logBudget = new LogBudget(20, 10_000, (suppressed) =>
        log.warn(
          { suppressed },
          'mqtt access denied or connection closed: more in the last 10 s, not logged one by one',
        ),
      )
      const maxPacketBytes = Math.max(16 * config.INGEST_MAX_BYTES, 1024 * 1024) + 4096
      const guard = new PreAuthGuard(
        {
          preAuthBytes: PRE_AUTH_MAX_BYTES,
          // Up to this, an oversized payload is still taken and rejected by the ingest (counted, the
          // connection stays); beyond, the connection is closed before the bytes are buffered.
          maxPacketBytes,
          perAddress: config.MQTT_UNAUTH_PER_ADDRESS,
        },
        (reason, { address, clientId, announcedBytes }) => {
          guarded?.inc({ reason })
          // A logged-in device over the packet limit: MQTT 3.1.1 cannot refuse one PUBLISH, so the
          // connection goes, and a QoS 1/2 publish is sent again after every reconnect (the device
          // loops and nothing it sends arrives). Named, so an operator can find it.
          if (clientId !== undefined && logBudget.take())
            log.warn(
              {
                client_id: clientId.slice(0, 64),
                address,
                reason,
                bytes: announcedBytes,
                limit: maxPacketBytes,
              },
              'mqtt connection closed: a packet over the broker limit (a QoS 1/2 publish is resent after each reconnect)',
            )
        },
      )
      brokerAuth = new BrokerAuth({
        mode: config.MQTT_DEVICE_AUTH as DeviceAuthMode,
        internal,
        onDenied: (action, clientId, reason, address) => {
          denied?.inc({ action })
          if (logBudget.take())
            log.warn({ action, client_id: clientId.slice(0, 64), address, reason }, 'mqtt access denied')
        },
        onBlocked: (by) => blocked?.inc({ by }),
        onAuthenticated: (conn, clientId) => guard.accept(conn, clientId),
        failedConnects: {
          delayMs: config.MQTT_AUTH_FAIL_DELAY_MS,
          maxHeld: config.MQTT_AUTH_FAIL_HELD_MAX,
          max: config.MQTT_AUTH_FAIL_MAX,
          windowMs: config.MQTT_AUTH_FAIL_WINDOW_MS,
        },
      })
      brokerAuth.install(broker.aedes)
      const auth = brokerAuth
      broker.admit = (socket) => auth.admits(socket) && guard.watch(socket)
      if (config.MQTT_DEVICE_AUTH === 'none')
        app.log.warn('MQTT_DEVICE_AUTH=none: any client may connect to the embedded broker and use any topic')
      try {
        tls = await startTls(broker, config, auth, guard)
      } catch (error) {
        await broker.close()
        throw error
      }
      if (tls) app.log.info({ port: tls.port }, 'embedded MQTT broker TLS listener')
      app.log.info({ port: broker.port }, 'embedded MQTT broker listening')
      urls = [`mqtt://127.0.0.1:${broker.port}`]
    }
    // aedes speaks MQTT 3.1.1 only; external brokers get MQTT 5 (shared subscriptions, session expiry).
    const hub = new MqttHub({
      urls,
      clientId: config.MQTT_CLIENT_ID,
      protocolVersion: broker ? 4 : 5,
      logger: app.log,
      ...(broker ? { username: internal.username, password: internal.password } : {}),
    })
    app.decorate('mqtt', hub)
    app.decorate('embeddedBroker', broker)
    app.decorate('brokerAuth', brokerAuth)
    app.decorate('brokerTlsPort', tls?.port ?? null)
    app.readiness.add('mqtt', () => {
      const down = hub.links.filter((l) => !l.client.connected).map((l) => l.name)
      if (down.length > 0) throw new Error(`not connected: ${down.join(', ')}`)
    })
    app.addHook('onClose', async () => {
      await hub.close()
      await broker?.close()
      await tls?.close()
    })
  },
  { name: 'mqtt', dependencies: ['readiness'] },
)
