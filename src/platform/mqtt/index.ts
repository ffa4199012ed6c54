import fp from 'fastify-plugin'
import type { Config } from '../../config.ts'
import { type EmbeddedBroker, startEmbeddedBroker } from './embedded-broker.ts'
import { MqttHub } from './hub.ts'

export type { EmbeddedBroker } from './embedded-broker.ts'
export { startEmbeddedBroker } from './embedded-broker.ts'
export type { BrokerLink, MessageHandler } from './hub.ts'
export { MqttHub } from './hub.ts'

declare module 'fastify' {
  interface FastifyInstance {
    mqtt: MqttHub
    /** Present when MQTT_URL is unset and the process runs its own broker. */
    embeddedBroker: EmbeddedBroker | null
  }
}

export interface MqttPluginOptions {
  config: Config
}

/** The MQTT connections of the process: to the configured brokers, or to an embedded one. */
export const mqttPlugin = fp<MqttPluginOptions>(
  async (app, { config }) => {
    let broker: EmbeddedBroker | null = null
    let urls: string[]
    if (config.MQTT_URL) {
      urls = config.MQTT_URL.split(',').map((u) => u.trim())
    } else {
      broker = await startEmbeddedBroker(config.MQTT_BROKER_PORT, config.HOST)
      app.log.info({ port: broker.port }, 'embedded MQTT broker listening')
      urls = [`mqtt://127.0.0.1:${broker.port}`]
    }
    // aedes speaks MQTT 3.1.1 only; external brokers get MQTT 5 (shared subscriptions, session expiry).
    const hub = new MqttHub({
      urls,
      clientId: config.MQTT_CLIENT_ID,
      protocolVersion: broker ? 4 : 5,
      logger: app.log,
    })
    app.decorate('mqtt', hub)
    app.decorate('embeddedBroker', broker)
    app.readiness.add('mqtt', () => {
      const down = hub.links.filter((l) => !l.client.connected).map((l) => l.name)
      if (down.length > 0) throw new Error(`not connected: ${down.join(', ')}`)
    })
    app.addHook('onClose', async () => {
      await hub.close()
      await broker?.close()
    })
  },
  { name: 'mqtt', dependencies: ['readiness'] },
)
