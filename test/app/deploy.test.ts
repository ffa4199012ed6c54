import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, posix, relative } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { ConfigSchema, loadConfig } from '../../src/config.ts'
import { build, type TestApp } from '../helpers/build.ts'

/**
 * The deployment files (Dockerfile, compose.yaml, .env.example, deploy/, bench/k6) against the app
 * they deploy: every file parses, every variable they give the app is one it reads, every probe and
 * health check hits a real route, and every metric the dashboard and the alerts query is exported.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const at = (...parts: string[]) => join(root, ...parts)
const read = (...parts: string[]) => readFileSync(at(...parts), 'utf8')

const configKeys = Object.keys(ConfigSchema.properties)
/** Set by the Dockerfile (or left at the app's default) and fixed inside the container. */
const IMAGE_FIXED = ['PORT', 'HOST', 'DATA_DIR', 'MQTT_BROKER_PORT']
/** Synthesized by Prometheus for every target, not exported by the app. */
const PROMETHEUS_SYNTHETIC = new Set(['up'])

type Doc = Record<string, unknown>
const obj = (value: unknown, what: string): Doc => {
  assert.ok(value && typeof value === 'object' && !Array.isArray(value), `${what}: expected a mapping`)
  return value as Doc
}
const arr = (value: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(value), `${what}: expected a list`)
  return value
}

function filesUnder(dir: string, ends: string[]): string[] {
  const out: string[] = []
  for (const name of readdirSync(at(dir))) {
    const path = posix.join(dir, name)
    if (statSync(at(path)).isDirectory()) out.push(...filesUnder(path, ends))
    else if (ends.some((e) => name.endsWith(e))) out.push(path)
  }
  return out.sort()
}

/** Every YAML document of a file; fails on any syntax error or warning. */
function yamlDocs(path: string): Doc[] {
  const docs = parseAllDocuments(read(path))
  assert.ok(Array.isArray(docs), `${path}: no YAML documents`)
  return docs.map((doc, i) => {
    assert.deepEqual(
      doc.errors.map((e) => e.message),
      [],
      `${path} document ${i + 1} has YAML errors`,
    )
    assert.deepEqual(
      doc.warnings.map((e) => e.message),
      [],
      `${path} document ${i + 1} has YAML warnings`,
    )
    return obj(doc.toJS(), `${path} document ${i + 1}`)
  })
}
const yamlDoc = (path: string): Doc => {
  const docs = yamlDocs(path)
  assert.equal(docs.length, 1, `${path}: expected one YAML document`)
  return docs[0] as Doc
}

interface DotEnv {
  /** NAME=value lines. */
  active: Map<string, string>
  /** "# NAME=value" lines: documented defaults and examples. */
  commented: Map<string, string>
}

/** Parses an env file: blank lines, comments, NAME=value and "# NAME=value" examples. */
function parseDotEnv(path: string): DotEnv {
  const active = new Map<string, string>()
  const commented = new Map<string, string>()
  read(path)
    .split('\n')
    .forEach((line, i) => {
      const set = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line)
      const example = /^# ?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line)
      if (set) {
        assert.ok(!active.has(set[1] as string), `${path}:${i + 1}: ${set[1]} is set twice`)
        active.set(set[1] as string, set[2] as string)
      } else if (example) commented.set(example[1] as string, example[2] as string)
      else assert.match(line, /^(#.*)?$/, `${path}:${i + 1}: neither NAME=value nor a comment: ${line}`)
    })
  return { active, commented }
}

/** ${NAME} references to earlier values, as Compose expands them inside .env. */
const expand = (value: string, values: Map<string, string>) =>
  value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => values.get(name) ?? '')

// --- PromQL --------------------------------------------------------------------------------------

/** PromQL aggregators, keywords and literals that look like metric names. */
const PROMQL_WORDS = new Set(
  (
    'sum min max avg count stddev stdvar topk bottomk quantile count_values group ' +
    'by without on ignoring group_left group_right and or unless bool offset inf nan'
  ).split(' '),
)

/** The metric names a PromQL expression selects (strings, label matchers, ranges and functions removed). */
function promqlMetricNames(expr: string): Set<string> {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
  const names = new Set<string>()
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0]
    const before = bare[m.index - 1] ?? ' '
    const rest = bare.slice(m.index + word.length)
    if (/[0-9.$]/.test(before)) continue // 1e-9, 5m, $variable
    if (/^\s*\(/.test(rest)) continue // a function
    if (PROMQL_WORDS.has(word.toLowerCase())) continue
    names.add(word)
  }
  return names
}

/** Every `expr` (and Grafana label_values() metric) inside a JSON/YAML value. */
function promqlExpressions(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) promqlExpressions(v, out)
  else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === 'expr' && typeof v === 'string') out.push(v)
      else if (key === 'query' && typeof v === 'string' && v.startsWith('label_values(')) {
        out.push(/^label_values\(\s*([^,]+)/.exec(v)?.[1] ?? v)
      } else promqlExpressions(v, out)
    }
  }
  return out
}

// --- Dockerfile ----------------------------------------------------------------------------------

interface Instruction {
  stage: string
  op: string
  args: string
}

function dockerfile(): Instruction[] {
  const lines = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  let stage = ''
  return lines.map((line) => {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    if (op.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? args
    return { stage, op: op.toUpperCase(), args }
  })
}

// --- the app -------------------------------------------------------------------------------------

/** Route paths in a deployment file, e.g. '/api/devices/{device_id}/status', as Fastify registers them. */
const asFastifyRoute = (path: string) => path.replace(/\{(\w+)\}/g, ':$1')

describe('deployment files', () => {
  let t: TestApp
  /** name → type, from the `# TYPE` lines of /metrics. */
  const exported = new Map<string, string>()

  const collect = async (app: TestApp) => {
    const res = await app.inject({ url: '/metrics' })
    assert.equal(res.statusCode, 200)
    for (const m of res.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) exported.set(m[1] as string, m[2] as string)
  }

  before(async () => {
    t = await build()
    await collect(t)
    // The embedded broker's own metrics (an alert rule uses one) exist only without MQTT_URL.
    if (t.config.MQTT_URL) {
      const embedded = await build({ MQTT_URL: '' })
      try {
        await collect(embedded)
      } finally {
        await embedded.close()
      }
    }
  })
  after(() => t.close())

  const isGetRoute = (path: string) => t.app.hasRoute({ method: 'GET', url: path })
  const isRoute = (path: string) =>
    (['GET', 'POST', 'PUT', 'DELETE'] as const).some((method) => t.app.hasRoute({ method, url: path }))

  /** Names that are neither exported nor a histogram/summary series of an exported metric. */
  function unknownMetrics(names: Iterable<string>): string[] {
    const unknown: string[] = []
    for (const name of names) {
      if (exported.has(name) || PROMETHEUS_SYNTHETIC.has(name)) continue
      const [, base = '', suffix] = /^(.*)_(bucket|sum|count)$/.exec(name) ?? []
      const type = exported.get(base)
      const ok = suffix === 'bucket' ? type === 'histogram' : type === 'histogram' || type === 'summary'
      if (!ok) unknown.push(name)
    }
    return unknown
  }

  describe('every file parses', () => {
    test('YAML under deploy/ and compose.yaml', () => {
      const files = [...filesUnder('deploy', ['.yaml', '.yml']), 'compose.yaml']
      assert.ok(files.length >= 15, `only ${files.length} YAML files found`)
      for (const file of files) assert.ok(yamlDocs(file).length >= 1, `${file}: empty`)
    })

    test('JSON under deploy/', () => {
      const files = filesUnder('deploy', ['.json'])
      assert.ok(files.includes('deploy/grafana/dashboards/iot-meter.json'))
      for (const file of files) assert.doesNotThrow(() => JSON.parse(read(file)), file)
    })

    test('.env.example and the kustomize env files are NAME=value lines and comments', () => {
      for (const file of ['.env.example', ...filesUnder('deploy/k8s', ['.env'])]) {
        const { active, commented } = parseDotEnv(file)
        assert.ok(active.size + commented.size > 0, `${file}: no variables`)
      }
    })

    test('the k6 scripts are valid ES modules', () => {
      for (const file of filesUnder('bench/k6', ['.js'])) {
        // --check parses without resolving imports, so k6's own modules (k6/http, k6/x/mqtt) are fine.
        const check = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: read(file) })
        assert.equal(check.status, 0, `${file}: ${check.stderr}`)
      }
    })
  })

  describe('configuration is documented', () => {
    test('.env.example lists every variable the app reads, and its values are valid', () => {
      const env = parseDotEnv('.env.example')
      const listed = new Set([...env.active.keys(), ...env.commented.keys()])
      const missing = configKeys.filter((k) => !listed.has(k))
      assert.deepEqual(missing, [], `missing from .env.example: ${missing.join(', ')}`)

      // Every value, active or shown as a default, passes the app's own validation (secrets
      // filled in, as the user has to).
      const values = new Map<string, string>()
      for (const [name, value] of [...env.commented, ...env.active]) {
        values.set(name, value === '' ? `placeholder-${name.toLowerCase().replaceAll('_', '-')}` : value)
      }
      const appEnv: Record<string, string> = {}
      for (const key of configKeys) appEnv[key] = expand(values.get(key) ?? '', values)
      assert.doesNotThrow(() => loadConfig(appEnv))
      assert.match(
        appEnv.DATABASE_URL ?? '',
        /^postgres:\/\/iot_meter:placeholder-postgres-password@postgres:5432\//,
      )
      assert.match(
        appEnv.MQTT_URL ?? '',
        /^mqtt:\/\/iot-meter:placeholder-mqtt-server-password@mosquitto:1883$/,
      )
    })

    test('docs/CONFIGURATION.md has a row for every variable the app reads', () => {
      const doc = read('docs/CONFIGURATION.md')
      const documented = new Set([...doc.matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`/gm)].map((m) => m[1]))
      const missing = configKeys.filter((k) => !documented.has(k))
      assert.deepEqual(
        missing,
        [],
        `docs/CONFIGURATION.md lacks: ${missing.join(', ')} (npm run docs:config)`,
      )
    })
  })

  describe('compose.yaml', () => {
    const compose = () => yamlDoc('compose.yaml')
    const services = () => obj(compose().services, 'services')
    const service = (name: string) => obj(services()[name], `service ${name}`)
    const env = (name: string) => obj(service(name).environment ?? {}, `${name}.environment`)

    test('the app service: built here, ports and health check of the app', () => {
      const app = service('iot-meter')
      assert.equal(app.build, '.')
      assert.equal(app.profiles, undefined, 'the app runs in every profile')
      const ports = arr(app.ports, 'ports').map(String)
      assert.ok(
        ports.some((p) => p.endsWith(':8080')),
        'HTTP 8080 published',
      )
      assert.ok(
        ports.some((p) => p.endsWith(':1883')),
        'embedded broker 1883 published',
      )
      assert.ok(
        arr(app.volumes, 'volumes')
          .map(String)
          .some((v) => v.endsWith(':/data')),
        '/data is a volume',
      )

      const check = arr(obj(app.healthcheck, 'healthcheck').test, 'healthcheck.test').join(' ')
      const [, port, path = ''] = /127\.0\.0\.1:(\d+)(\/[a-z]+)/.exec(check) ?? []
      assert.equal(port, '8080')
      assert.ok(isGetRoute(path), `healthcheck path ${path} is a route`)
    })

    test('the app gets only variables it reads, and every one it reads (except those the image fixes)', () => {
      const given = Object.keys(env('iot-meter'))
      const unknown = given.filter((k) => !configKeys.includes(k))
      assert.deepEqual(unknown, [], `not in ConfigSchema: ${unknown.join(', ')}`)
      const notGiven = configKeys.filter((k) => !given.includes(k) && !IMAGE_FIXED.includes(k))
      assert.deepEqual(notGiven, [], `set in .env but never reaching the app: ${notGiven.join(', ')}`)
      for (const k of IMAGE_FIXED) assert.ok(!given.includes(k), `${k} is fixed by the image`)
      // The MQTT client id must survive a re-created container (persistent session).
      assert.match(String(env('iot-meter').MQTT_CLIENT_ID), /^\$\{MQTT_CLIENT_ID:-[A-Za-z0-9_.-]+\}$/)
    })

    test('every service has a health check or is a one-shot that dependents wait for', () => {
      const all = services()
      const oneShots = Object.keys(all).filter((name) => service(name).restart === 'no')
      assert.deepEqual(oneShots.sort(), ['check-env', 'minio-init'])
      for (const name of Object.keys(all)) {
        const s = service(name)
        if (!oneShots.includes(name)) {
          const hc = obj(s.healthcheck, `${name}.healthcheck`)
          assert.ok(Array.isArray(hc.test) && hc.test.length > 1, `${name}: healthcheck test`)
          assert.ok(hc.interval && hc.retries, `${name}: healthcheck interval and retries`)
          if (!s.build) assert.match(String(s.image), /:[\w.-]+\}?$/, `${name}: image with a tag`)
          if (!s.build) assert.doesNotMatch(String(s.image), /:latest\}?$/, `${name}: image pinned`)
        }
        for (const [dep, cond] of Object.entries(obj(s.depends_on ?? {}, `${name}.depends_on`))) {
          assert.ok(dep in all, `${name} depends on unknown service ${dep}`)
          const condition = obj(cond, `${name}.depends_on.${dep}`).condition
          const expected = oneShots.includes(dep) ? 'service_completed_successfully' : 'service_healthy'
          assert.equal(condition, expected, `${name} waits for ${dep}`)
        }
      }
    })

    test('profile full: every other service, started only after check-env; the app waits for them optionally', () => {
      for (const [name] of Object.entries(services())) {
        if (name === 'iot-meter') continue
        assert.deepEqual(service(name).profiles, ['full'], `${name} is in profile full`)
      }
      for (const [dep, cond] of Object.entries(obj(service('iot-meter').depends_on, 'depends_on'))) {
        assert.equal(obj(cond, dep).required, false, `the app alone must start without ${dep}`)
      }
      // Everything of the full profile waits for check-env, directly or through its dependencies.
      const waits = (name: string): boolean => {
        const deps = Object.keys(obj(service(name).depends_on ?? {}, name))
        return deps.includes('check-env') || deps.some(waits)
      }
      for (const name of Object.keys(services())) {
        if (name !== 'iot-meter' && name !== 'check-env')
          assert.ok(waits(name), `${name} waits for check-env`)
      }
    })

    test('no secret is written in compose.yaml; check-env requires those of the stack; .env.example names them', () => {
      const checkEnv = arr(service('check-env').command, 'check-env.command').join('\n')
      const envFile = parseDotEnv('.env.example')
      const secretName = /PASSWORD|SECRET|TOKEN|DATABASE_URL|MQTT_URL/
      let secrets = 0
      for (const name of Object.keys(services())) {
        for (const [key, value] of Object.entries(env(name))) {
          if (!secretName.test(key)) continue
          secrets++
          const ref = /^\$\{([A-Z0-9_]+):-\}$/.exec(String(value))
          assert.ok(ref, `${name}.${key} must be \${VAR:-} from .env, not ${value}`)
          const variable = ref[1] as string
          // The app's own optional tokens (ADMIN_TOKEN, ...) may stay unset; the stack's may not.
          if (name !== 'iot-meter') {
            assert.ok(
              new RegExp(`\\b${variable}\\b`).test(checkEnv),
              `check-env does not require ${variable}`,
            )
          }
          // No usable default in .env.example either.
          if (/PASSWORD|SECRET|TOKEN/.test(variable) && envFile.active.has(variable)) {
            assert.equal(envFile.active.get(variable), '', `.env.example gives ${variable} a value`)
          }
        }
      }
      assert.ok(secrets >= 15, `${secrets} secret settings found`)

      // Every ${VAR} compose.yaml uses (in values, not comments) is in .env.example.
      const referenced = new Set<string>()
      const collect = (value: unknown): void => {
        if (typeof value === 'string')
          for (const m of value.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)) referenced.add(m[1] as string)
        else if (value && typeof value === 'object') for (const v of Object.values(value)) collect(v)
      }
      collect(compose())
      assert.ok(referenced.size > configKeys.length - IMAGE_FIXED.length)
      const listed = new Set([...envFile.active.keys(), ...envFile.commented.keys()])
      const undocumented = [...referenced].filter((v) => !listed.has(v))
      assert.deepEqual(
        undocumented,
        [],
        `compose variables missing from .env.example: ${undocumented.join(', ')}`,
      )
      assert.equal(envFile.active.get('COMPOSE_PROFILES'), 'full')
    })

    test('files mounted from the repository exist', () => {
      for (const [name, s] of Object.entries(services())) {
        for (const volume of (obj(s, name).volumes as string[] | undefined) ?? []) {
          const source = String(volume).split(':')[0] as string
          if (source.startsWith('./')) assert.ok(existsSync(at(source)), `${name} mounts missing ${source}`)
        }
      }
    })

    test('Mosquitto: the project settings plus passwords and the device ACL', () => {
      const settings = (file: string) =>
        read(file)
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#'))
      const secure = settings('deploy/mosquitto/mosquitto-secure.conf')
      for (const line of settings('deploy/mosquitto/mosquitto.conf')) {
        if (line.startsWith('allow_anonymous')) continue
        assert.ok(secure.includes(line), `mosquitto-secure.conf lacks "${line}" of mosquitto.conf`)
      }
      assert.ok(secure.includes('allow_anonymous false'))
      const mounts = arr(service('mosquitto').volumes, 'volumes').map(String)
      const aclFile = /^acl_file (\S+)$/m.exec(secure.join('\n'))?.[1]
      assert.ok(
        mounts.includes(`./deploy/mosquitto/acl:${aclFile}:ro`),
        'acl_file is the mounted deploy/mosquitto/acl',
      )
      const command = arr(service('mosquitto').command, 'command').join('\n')
      const passwordFile = /^password_file (\S+)$/m.exec(secure.join('\n'))?.[1] ?? ''
      assert.ok(command.includes(`file=${passwordFile}`), 'the command writes the password_file')
      assert.ok(command.includes('mosquitto-secure.conf'))

      const acl = settings('deploy/mosquitto/acl')
      assert.ok(acl.includes('pattern readwrite iot/%u/#'), 'devices: own subtree only')
      const server = acl.indexOf('user iot-meter')
      assert.ok(server >= 0 && acl.slice(server + 1).includes('topic readwrite #'), 'server user: everything')
      assert.match(parseDotEnv('.env.example').active.get('MQTT_URL') ?? '', /^mqtt:\/\/iot-meter:/)
    })

    test('Prometheus scrapes the app service; Grafana loads the provisioned dashboards', () => {
      const prometheus = yamlDoc('deploy/prometheus/prometheus.yml')
      const jobs = arr(prometheus.scrape_configs, 'scrape_configs').map((j) => obj(j, 'job'))
      const app = jobs.find((j) => j.job_name === 'iot-meter')
      assert.ok(app, 'scrape job iot-meter')
      assert.ok(isGetRoute(String(app.metrics_path)), 'metrics_path is a route')
      const targets = arr(app.static_configs, 'static_configs').flatMap((c) =>
        arr(obj(c, 'c').targets, 'targets'),
      )
      assert.deepEqual(targets, ['iot-meter:8080'])
      for (const file of arr(prometheus.rule_files, 'rule_files')) {
        assert.ok(existsSync(at('deploy/prometheus', String(file))), `rule file ${file}`)
      }

      const mounts = arr(service('grafana').volumes, 'volumes').map(String)
      const dashboardsAt = mounts.find((m) => m.startsWith('./deploy/grafana/dashboards:'))?.split(':')[1]
      const providers = yamlDoc('deploy/grafana/provisioning/dashboards/dashboards.yaml')
      const paths = arr(providers.providers, 'providers').map((p) => obj(obj(p, 'p').options, 'options').path)
      assert.deepEqual(paths, [dashboardsAt])
      const sources = arr(
        yamlDoc('deploy/grafana/provisioning/datasources/datasources.yaml').datasources,
        'ds',
      )
      for (const source of sources) {
        const host = new URL(String(obj(source, 'datasource').url)).hostname
        assert.ok(host in services(), `datasource host ${host} is a compose service`)
      }
    })
  })

  describe('Kubernetes (deploy/k8s)', () => {
    const kustomizations = () => filesUnder('deploy/k8s', ['kustomization.yaml'])
    const base = 'deploy/k8s/base'
    const resource = (kind: string) => {
      const found = (arr(yamlDoc(`${base}/kustomization.yaml`).resources, 'resources') as string[])
        .flatMap((file) => yamlDocs(`${base}/${file}`))
        .filter((d) => d.kind === kind)
      assert.equal(found.length, 1, `one ${kind} in the base`)
      return found[0] as Doc
    }
    const deployment = () => resource('Deployment')
    const podSpec = () => obj(obj(obj(deployment().spec, 'spec').template, 'template').spec, 'pod spec')
    const appContainer = () => obj(arr(podSpec().containers, 'containers')[0], 'container')
    /** base config.env with the production overlay's merged over it. */
    const productionConfig = () => {
      const merged = new Map(parseDotEnv(`${base}/config.env`).active)
      for (const [k, v] of parseDotEnv('deploy/k8s/overlays/production/config.env').active) merged.set(k, v)
      return merged
    }

    test('every file a kustomization names exists; the Secret template is not applied', () => {
      assert.deepEqual(kustomizations(), [
        `${base}/kustomization.yaml`,
        'deploy/k8s/overlays/production/kustomization.yaml',
      ])
      for (const file of kustomizations()) {
        const k = yamlDoc(file)
        const dir = dirname(file)
        const named = [
          ...((k.resources as string[] | undefined) ?? []),
          ...((k.patches as { path?: string }[] | undefined) ?? []).flatMap((p) => (p.path ? [p.path] : [])),
          ...((k.configMapGenerator as { envs?: string[]; files?: string[] }[] | undefined) ?? []).flatMap(
            (g) => [...(g.envs ?? []), ...(g.files ?? [])],
          ),
        ]
        assert.ok(named.length > 0, `${file} names nothing`)
        for (const entry of named) assert.ok(existsSync(at(dir, entry)), `${file}: ${entry} does not exist`)
        assert.ok(
          !named.some((e) => e.includes('secret.template')),
          `${file} must not apply the Secret template`,
        )
      }
    })

    test('Deployment: probes on real routes, non-root, env from the ConfigMap and the Secret', () => {
      const c = appContainer()
      assert.equal(obj(obj(c.livenessProbe, 'liveness').httpGet, 'httpGet').path, '/healthz')
      assert.equal(obj(obj(c.readinessProbe, 'readiness').httpGet, 'httpGet').path, '/readyz')
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const path = String(obj(obj(c[probe], probe).httpGet, 'httpGet').path)
        assert.ok(isGetRoute(path), `${probe} ${path} is a route`)
      }
      const ports = arr(c.ports, 'ports').map((p) => obj(p, 'port'))
      assert.deepEqual(
        ports.map((p) => [p.name, p.containerPort]),
        [['http', 8080]],
      )
      assert.equal(obj(podSpec().securityContext, 'securityContext').runAsNonRoot, true)
      assert.equal(obj(c.securityContext, 'container securityContext').allowPrivilegeEscalation, false)
      const resources = obj(c.resources, 'resources')
      assert.ok(obj(resources.requests, 'requests').cpu, 'a CPU request (the autoscaler needs it)')
      assert.equal(
        obj(deployment().spec, 'spec').replicas,
        undefined,
        'the autoscaler owns the replica count',
      )

      const refs = arr(c.envFrom, 'envFrom').map((e) => obj(e, 'envFrom'))
      const generators = arr(yamlDoc(`${base}/kustomization.yaml`).configMapGenerator, 'generators')
      assert.equal(obj(refs[0]?.configMapRef, 'configMapRef').name, obj(generators[0], 'generator').name)
      const template = yamlDoc(`${base}/secret.template.yaml`)
      assert.equal(obj(refs[1]?.secretRef, 'secretRef').name, obj(template.metadata, 'metadata').name)
    })

    test('ConfigMap and Secret hold only variables the app reads, and replicas get what they need', () => {
      const template = yamlDoc(`${base}/secret.template.yaml`)
      const secret = obj(template.stringData, 'stringData')
      const config = productionConfig()
      for (const key of [
        ...Object.keys(secret),
        ...config.keys(),
        ...parseDotEnv(`${base}/config.env`).active.keys(),
      ]) {
        assert.ok(configKeys.includes(key), `${key} is not in ConfigSchema`)
      }
      assert.ok(
        'DATABASE_URL' in secret && 'MQTT_URL' in secret,
        'replicas need external PostgreSQL and brokers',
      )
      assert.equal(config.get('MQTT_SHARED_GROUP'), 'iot-meter')
      assert.equal(
        parseDotEnv('deploy/k8s/overlays/production/config.env').active.get('MQTT_SHARED_GROUP'),
        'iot-meter',
      )
      // One client id shared by replicas makes the broker disconnect them in turn.
      for (const file of filesUnder('deploy/k8s', ['.yaml', '.env'])) {
        assert.doesNotMatch(read(file), /^\s*MQTT_CLIENT_ID\s*[=:]/m, `${file} sets MQTT_CLIENT_ID`)
      }
      // The values pass the app's validation.
      const env: Record<string, string> = { ...Object.fromEntries(config) }
      for (const [k, v] of Object.entries(secret)) env[k] = String(v)
      const loaded = loadConfig(env)
      const grace = Number(podSpec().terminationGracePeriodSeconds) * 1000
      assert.ok(
        grace > loaded.SHUTDOWN_TIMEOUT_MS,
        'the pod may drain for SHUTDOWN_TIMEOUT_MS before SIGKILL',
      )
      // Every replica at the autoscaler's maximum keeps a full pool open.
      const hpa = obj(yamlDoc('deploy/k8s/overlays/production/hpa-replicas.yaml').spec, 'hpa spec')
      const connections = Number(hpa.maxReplicas) * loaded.DB_POOL_MAX
      assert.ok(connections < 100, `${connections} connections reach PostgreSQL's default max_connections`)
    })

    test('Service, PodDisruptionBudget and HorizontalPodAutoscaler point at the Deployment', () => {
      const podLabels = obj(obj(obj(deployment().spec, 'spec').template, 't').metadata, 'm').labels
      const service = obj(resource('Service').spec, 'service spec')
      assert.deepEqual(service.selector, podLabels)
      const ports = arr(service.ports, 'ports').map((p) => obj(p, 'p'))
      assert.deepEqual(
        ports.map((p) => [p.port, p.targetPort]),
        [[8080, 'http']],
      )
      assert.deepEqual(
        obj(obj(resource('PodDisruptionBudget').spec, 'pdb').selector, 's').matchLabels,
        podLabels,
      )
      const hpa = obj(resource('HorizontalPodAutoscaler').spec, 'hpa')
      assert.deepEqual(obj(hpa.scaleTargetRef, 'ref'), {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: obj(deployment().metadata, 'm').name,
      })
      const metric = obj(arr(hpa.metrics, 'metrics')[0], 'metric')
      assert.equal(obj(metric.resource, 'resource').name, 'cpu')
      const production = yamlDoc('deploy/k8s/overlays/production/hpa-replicas.yaml')
      const { minReplicas, maxReplicas } = obj(production.spec, 'spec')
      assert.ok(Number(minReplicas) >= 2 && Number(maxReplicas) > Number(minReplicas))
    })

    const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0
    test('kubectl kustomize builds base and production', {
      skip: !kubectl && 'kubectl not installed',
    }, () => {
      for (const dir of [base, 'deploy/k8s/overlays/production']) {
        const out = spawnSync('kubectl', ['kustomize', at(dir)], { encoding: 'utf8' })
        assert.equal(out.status, 0, out.stderr)
        const docs = parseAllDocuments(out.stdout).map((d) => obj(d.toJS(), 'doc'))
        assert.deepEqual(docs.map((d) => d.kind).sort(), [
          'ConfigMap',
          'Deployment',
          'HorizontalPodAutoscaler',
          'PodDisruptionBudget',
          'Service',
        ])
        if (dir.endsWith('production')) {
          const config = obj(docs.find((d) => d.kind === 'ConfigMap')?.data, 'data')
          assert.equal(config.MQTT_SHARED_GROUP, 'iot-meter')
          assert.match(out.stdout, /image: \S+\/iot-meter:\d+\.\d+\.\d+/)
        }
      }
    })
  })

  describe('Prometheus rules and the Grafana dashboard', () => {
    test('the PromQL helper finds metric names and nothing else', () => {
      assert.deepEqual(
        [
          ...promqlMetricNames(
            'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job="x", s=~"5.."}[$__rate_interval]))) > 1e-3 ' +
              'and on (instance) max(b) offset 5m or vector(0) / c:recorded',
          ),
        ].sort(),
        ['a_bucket', 'b', 'c:recorded'],
      )
    })

    test('the dashboard queries only metrics the app exports, and all the main ones', () => {
      const dashboard = JSON.parse(read('deploy/grafana/dashboards/iot-meter.json'))
      const expressions = promqlExpressions(dashboard)
      assert.ok(expressions.length >= 20, `${expressions.length} queries`)
      const used = new Set(expressions.flatMap((e) => [...promqlMetricNames(e)]))
      assert.deepEqual(unknownMetrics(used), [], 'metrics the app does not export')
      for (const name of [
        'ingest_messages_total',
        'ingest_duplicates_total',
        'ingest_gaps_total',
        'ingest_rejected_total',
        'ingest_flush_seconds_bucket',
        'ingest_inflight',
        'devices_online',
        'http_request_duration_seconds_bucket',
        'http_request_duration_seconds_count',
      ]) {
        assert.ok(used.has(name), `the dashboard shows ${name}`)
      }
      // Panels go through the $datasource variable, so the dashboard imports into any Grafana.
      const ids = new Set<number>()
      for (const panel of dashboard.panels as Doc[]) {
        assert.ok(!ids.has(Number(panel.id)), `panel id ${panel.id} twice`)
        ids.add(Number(panel.id))
        if (panel.type === 'row') continue
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
        assert.equal(obj(panel.datasource, 'datasource').uid, '${datasource}')
      }
    })

    test('alert rules query only exported metrics and say how bad and what', () => {
      const rules = arr(yamlDoc('deploy/prometheus/alerts.yml').groups, 'groups').flatMap((g) =>
        arr(obj(g, 'group').rules, 'rules').map((r) => obj(r, 'rule')),
      )
      const names = rules.map((r) => String(r.alert))
      for (const expected of [
        'IotMeterDown',
        'IotMeterIngestStalled',
        'IotMeterStoreErrors',
        'IotMeterHighGapRate',
        'IotMeterManyDevicesOffline',
        'IotMeterNotReadyBrokerDown',
      ]) {
        assert.ok(names.includes(expected), `rule ${expected}`)
      }
      const used = new Set(rules.flatMap((r) => [...promqlMetricNames(String(r.expr))]))
      assert.deepEqual(unknownMetrics(used), [], 'metrics the app does not export')
      assert.ok(used.has('ingest_store_errors_total') && used.has('up'))
      for (const rule of rules) {
        assert.match(
          String(obj(rule.labels, 'labels').severity),
          /^(critical|warning)$/,
          `${rule.alert} severity`,
        )
        assert.ok(obj(rule.annotations, 'annotations').summary, `${rule.alert} summary`)
      }
    })

    const promtool = spawnSync('promtool', ['--version']).status === 0
    test('promtool: config and rules are valid, rule unit tests pass', {
      skip: !promtool && 'promtool not installed',
    }, () => {
      for (const args of [
        ['check', 'config', 'prometheus.yml'],
        ['check', 'rules', 'alerts.yml'],
        ['test', 'rules', 'alerts.test.yml'],
      ]) {
        const out = spawnSync('promtool', args, { cwd: at('deploy/prometheus'), encoding: 'utf8' })
        assert.equal(out.status, 0, `promtool ${args.join(' ')}:\n${out.stdout}${out.stderr}`)
      }
    })
  })

  describe('Dockerfile', () => {
    test('multi-stage, non-root, ports, volume and health check of the app', () => {
      const steps = dockerfile()
      const runtime = steps.filter((s) => s.stage === 'runtime')
      assert.ok(runtime.length > 0, 'a stage named runtime')
      assert.equal(steps.at(-1)?.stage, 'runtime', 'runtime is the last stage')
      const env = new Map(
        runtime
          .filter((s) => s.op === 'ENV')
          .flatMap((s) => [...s.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1] as string, m[2] as string])),
      )
      assert.equal(env.get('NODE_ENV'), 'production')
      const expose = runtime.find((s) => s.op === 'EXPOSE')?.args.split(/\s+/)
      assert.deepEqual(expose, [env.get('PORT'), env.get('MQTT_BROKER_PORT')])
      assert.deepEqual(expose, ['8080', '1883'])
      assert.ok(
        runtime.find((s) => s.op === 'VOLUME')?.args.includes(`"${env.get('DATA_DIR')}"`),
        'DATA_DIR is the volume',
      )
      const user = runtime.filter((s) => s.op === 'USER').at(-1)?.args
      assert.ok(user && !/^(root|0)(:|$)/.test(user), `runs as ${user}`)
      // Production dependencies only in the final image.
      const installs = steps.filter((s) => s.op === 'RUN' && s.args.includes('npm ci'))
      const copied = runtime.find((s) => s.op === 'COPY' && s.args.includes('/app/node_modules'))
      const from = /--from=(\S+)/.exec(copied?.args ?? '')?.[1]
      assert.ok(
        installs.some((s) => s.stage === from && s.args.includes('--omit=dev')),
        'node_modules without dev',
      )

      const check = runtime.find((s) => s.op === 'HEALTHCHECK')?.args ?? ''
      const path = /\/[a-z]+(?=')/.exec(check)?.[0] ?? ''
      assert.ok(isGetRoute(path), `HEALTHCHECK path ${path} is a route`)
    })

    test('COPY sources exist, the build compiles what the image runs', () => {
      const steps = dockerfile()
      const tsconfig = JSON.parse(read('tsconfig.json')).compilerOptions
      const buildConfig = JSON.parse(read('tsconfig.build.json'))
      for (const step of steps.filter((s) => s.op === 'COPY' && !s.args.includes('--from'))) {
        const parts = step.args.split(/\s+/).filter((p) => !p.startsWith('--'))
        for (const source of parts.slice(0, -1)) assert.ok(existsSync(at(source)), `COPY ${source}`)
      }
      // Everything tsconfig.build.json compiles is copied into the build stage.
      const buildCopies = steps.filter((s) => s.stage === 'build' && s.op === 'COPY').map((s) => s.args)
      for (const dir of buildConfig.include as string[]) {
        assert.ok(
          buildCopies.some((args) => args.split(/\s+/).includes(dir)),
          `build stage copies ${dir}`,
        )
      }

      const cmd = JSON.parse(steps.filter((s) => s.op === 'CMD').at(-1)?.args ?? '[]') as string[]
      const script = cmd.find((a) => a.endsWith('.js'))
      // outDir + (source relative to rootDir), .ts → .js: what tsc -p tsconfig.build.json writes.
      const outputOf = (source: string) =>
        posix.join(tsconfig.outDir, relative(at(tsconfig.rootDir), at(source))).replace(/\.ts$/, '.js')
      assert.ok(existsSync(at('src/main.ts')))
      assert.equal(script, outputOf('src/main.ts'))
      assert.equal(script, 'dist/src/main.js')

      // The compiled migrator looks for the compiled migrations where the build puts them.
      const migrate = read('src/platform/db/migrate.ts')
      const folder = /new URL\('([^']+)', import\.meta\.url\)/.exec(migrate)?.[1] ?? ''
      const compiledFolder = posix.normalize(
        posix.join(posix.dirname(outputOf('src/platform/db/migrate.ts')), folder),
      )
      assert.equal(compiledFolder, outputOf('migrations'))
      assert.ok(buildConfig.include.includes('migrations'))
    })

    test('every package the server imports is a production dependency', () => {
      const { dependencies } = JSON.parse(read('package.json')) as { dependencies: Record<string, string> }
      const builtins = new Set(builtinModules)
      const missing = new Set<string>()
      for (const file of filesUnder('src', ['.ts'])) {
        const text = read(file)
        const specifiers = [
          ...text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gm),
          ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
          ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
        ].map((m) => m[1] as string)
        for (const spec of specifiers) {
          if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue
          const name = spec.startsWith('@')
            ? spec.split('/').slice(0, 2).join('/')
            : (spec.split('/')[0] as string)
          if (!(name in dependencies)) missing.add(`${name} (${file})`)
        }
      }
      assert.deepEqual([...missing], [], 'imported at run time but not in dependencies (the image omits dev)')
    })
  })

  test('the k6 API script calls only routes the app has', () => {
    const script = read('bench/k6/api.js')
    const routes = new Set([...script.matchAll(/\burl\('([^']+)'/g)].map((m) => m[1] as string))
    assert.ok(routes.size >= 15, `${routes.size} routes`)
    const unknown = [...routes].filter((r) => !isRoute(asFastifyRoute(r)))
    assert.deepEqual(unknown, [])
  })
})
