import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../../../src/config.ts'

test('defaults are the documented ones', () => {
  const c = loadConfig({})
  assert.equal(c.PORT, 8080)
  assert.equal(c.HOST, '0.0.0.0')
  assert.equal(c.LOG_LEVEL, 'info')
  assert.equal(c.DATA_DIR, './data')
  assert.equal(c.DATABASE_URL, undefined)
  assert.equal(c.MQTT_URL, undefined)
  assert.equal(c.MQTT_BROKER_PORT, 1883)
  assert.equal(c.DB_POOL_MAX, 10)
  assert.equal(c.DB_MIGRATE_ON_START, true)
  assert.ok(Object.isFrozen(c))
})

test('values are converted from strings', () => {
  const c = loadConfig({
    PORT: '9000',
    DB_MIGRATE_ON_START: 'false',
    MQTT_URL: 'mqtt://a:1883,mqtt://b:1884',
  })
  assert.equal(c.PORT, 9000)
  assert.equal(c.DB_MIGRATE_ON_START, false)
  assert.equal(c.MQTT_URL, 'mqtt://a:1883,mqtt://b:1884')
})

test('every bad variable is named with what is allowed', () => {
  assert.throws(
    () =>
      loadConfig({
        PORT: 'eighty',
        LOG_LEVEL: 'loud',
        DATABASE_URL: 'mysql://x',
        MQTT_URL: 'http://x',
        DB_POOL_MAX: '0',
        DB_MIGRATE_ON_START: 'perhaps',
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      const text = error.message
      assert.match(text, /PORT: must be an integer/)
      assert.match(
        text,
        /LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)/,
      )
      assert.match(text, /DATABASE_URL: .*postgres/)
      assert.match(text, /MQTT_URL:/)
      assert.match(text, /DB_POOL_MAX: .*>= 1/)
      assert.match(text, /DB_MIGRATE_ON_START: must be a boolean/)
      assert.equal(error.problems.length, 6)
      return true
    },
  )
})

test('a bad value stops the process at start with a message naming the variable', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: new URL('../../..', import.meta.url),
    env: { ...process.env, PORT: '70000' },
    encoding: 'utf8',
    timeout: 20000,
  })
  assert.equal(run.status, 2)
  assert.match(run.stderr, /PORT: must be an integer, >= 0, <= 65535 \(got "70000"\)/)
})

test('INFLUX_URL without its token, org and bucket names each missing one', () => {
  assert.throws(
    () => loadConfig({ INFLUX_URL: 'http://influx:8086', INFLUX_ORG: 'rail' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.deepEqual(error.problems, [
        'INFLUX_TOKEN: required when INFLUX_URL is set',
        'INFLUX_BUCKET: required when INFLUX_URL is set',
      ])
      return true
    },
  )
})

test('alert webhooks are always signed: ALERT_WEBHOOK_URLS needs ALERT_WEBHOOK_SECRET; bad URLs are named', () => {
  assert.throws(
    () => loadConfig({ ALERT_WEBHOOK_URLS: 'https://ops.example/hook' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.deepEqual(error.problems, [
        'ALERT_WEBHOOK_SECRET: required when ALERT_WEBHOOK_URLS is set (webhooks are always signed)',
      ])
      return true
    },
  )
  assert.throws(
    () =>
      loadConfig({
        ALERT_WEBHOOK_URLS: 'https://a.example/h, ftp://b',
        ALERT_WEBHOOK_SECRET: 'x'.repeat(16),
      }),
    /ALERT_WEBHOOK_URLS: must be a string, matching/,
  )
  const ok = loadConfig({
    ALERT_WEBHOOK_URLS: 'https://a.example/h,http://b.example:9000/x',
    ALERT_WEBHOOK_SECRET: 'x'.repeat(16),
    ALERTMANAGER_URL: 'http://alertmanager:9093',
  })
  assert.equal(ok.ALERT_RETRY_MAX_MS, 300_000)
})

test('S3 keys come as a pair: one without the other names the missing one', () => {
  assert.throws(
    () => loadConfig({ S3_BUCKET: 'archive', S3_ACCESS_KEY_ID: 'key' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.deepEqual(error.problems, [
        'S3_SECRET_ACCESS_KEY: required when S3_ACCESS_KEY_ID or S3_SECRET_ACCESS_KEY is set',
      ])
      return true
    },
  )
  assert.throws(() => loadConfig({ S3_SECRET_ACCESS_KEY: 'secret' }), /S3_ACCESS_KEY_ID: required/)
  assert.equal(loadConfig({ S3_ACCESS_KEY_ID: 'key', S3_SECRET_ACCESS_KEY: 'secret' }).S3_REGION, 'us-east-1')
})

test('rollups outlive the raw samples (they answer every= for windows whose samples are gone)', () => {
  assert.throws(
    () => loadConfig({ RETENTION_RAW_DAYS: '90', RETENTION_ROLLUP_DAYS: '30' }),
    /RETENTION_ROLLUP_DAYS: 30 keeps rollups shorter than the raw samples/,
  )
  assert.throws(() => loadConfig({ RETENTION_RAW_DAYS: '0' }), /RETENTION_ROLLUP_DAYS: 1825/)
  assert.equal(loadConfig({ RETENTION_RAW_DAYS: '0', RETENTION_ROLLUP_DAYS: '0' }).RETENTION_ROLLUP_DAYS, 0)
  assert.equal(loadConfig({ RETENTION_RAW_DAYS: '90', RETENTION_ROLLUP_DAYS: '90' }).RETENTION_RAW_DAYS, 90)
})

test("the embedded broker's TLS listener needs its files; external brokers ignore them", () => {
  assert.throws(
    () => loadConfig({ MQTT_DEVICE_AUTH: 'mtls' }),
    /MQTT_DEVICE_AUTH=mtls needs MQTT_TLS_PORT, MQTT_TLS_CERT, MQTT_TLS_KEY, MQTT_TLS_CA/,
  )
  assert.throws(
    () => loadConfig({ MQTT_TLS_PORT: '8883', MQTT_TLS_CERT: 'cert.pem' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.deepEqual(error.problems, ['MQTT_TLS_KEY: required when MQTT_TLS_PORT is set'])
      return true
    },
  )
  assert.throws(
    () =>
      loadConfig({
        MQTT_DEVICE_AUTH: 'mtls',
        MQTT_TLS_PORT: '8883',
        MQTT_TLS_CERT: 'cert.pem',
        MQTT_TLS_KEY: 'key.pem',
      }),
    /MQTT_TLS_CA: required when MQTT_DEVICE_AUTH=mtls/,
  )
  assert.equal(
    loadConfig({ MQTT_URL: 'mqtt://broker:1883', MQTT_DEVICE_AUTH: 'mtls' }).MQTT_TLS_PORT,
    undefined,
  )
})
