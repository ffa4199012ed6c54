/** Roles in increasing power: each one may do everything the one before it may. */
export const ROLES = ['viewer', 'operator', 'admin'] as const
export type Role = (typeof ROLES)[number]

/** `public`: no token; `metrics`: METRICS_TOKEN or an admin token when METRICS_TOKEN is set, else public. */
export type Access = Role | 'public' | 'metrics'

/**
 * Who may call which route, keyed by `METHOD route-pattern` as Fastify registers it
 * (`request.routeOptions.url`). Default-deny: a route missing here is admin-only (see accessFor).
 */
export const POLICY: Readonly<Record<string, Access>> = {
  'GET /health': 'public',
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'metrics',

  'GET /api/devices': 'viewer',
  'GET /api/devices/:device_id': 'viewer',
  'GET /api/devices/:device_id/status': 'viewer',
  'GET /api/devices/:device_id/config-history': 'viewer',
  'GET /api/devices/:device_id/metrics': 'viewer',
  'GET /api/devices/:device_id/energy': 'viewer',
  'GET /api/devices/:device_id/registers': 'viewer',
  'GET /api/devices/:device_id/raw-data': 'viewer',
  'GET /api/devices/:device_id/raw-data/*': 'viewer',
  'GET /api/devices/:device_id/alerts': 'viewer',
  'GET /api/devices/:device_id/commands': 'viewer',
  'GET /api/devices/:device_id/ota': 'viewer',
  'GET /api/fleet/metrics': 'viewer',
  'GET /api/alerts': 'viewer',
  'GET /api/commands/:cmd_id': 'viewer',
  'GET /api/stats': 'viewer',
  'GET /api/ingest/quarantine': 'viewer',
  'GET /api/session': 'viewer',
  'GET /api/retention': 'viewer',

  'POST /api/devices/:device_id/heartbeat': 'operator',
  'PUT /api/devices/:device_id/status': 'operator',
  'POST /api/devices/:device_id/alerts': 'operator',
  'POST /api/alerts/:id/acknowledge': 'operator',
  'POST /api/devices/:device_id/commands': 'operator',
  'PUT /api/commands/:cmd_id/ack': 'operator',

  'POST /api/devices': 'admin',
  'PUT /api/devices/:device_id': 'admin',
  'DELETE /api/devices/:device_id': 'admin',
  'GET /api/devices/:device_id/command-key': 'admin',
  'POST /api/devices/:device_id/command-key/rotate': 'admin',
  'POST /api/devices/:device_id/mqtt-secret/rotate': 'admin',
  'DELETE /api/devices/:device_id/mqtt-secret': 'admin',
  'GET /api/tokens': 'admin',
  'POST /api/tokens': 'admin',
  'DELETE /api/tokens/:id': 'admin',
  'GET /api/admin/backup': 'admin',
}

const isApi = (url: string) => url === '/api' || url.startsWith('/api/')

/**
 * The access a request needs. `route` is the matched pattern (`request.routeOptions.url`);
 * undefined when no route matched, then `path` decides: under /api any valid token sees the 404.
 * HEAD is answered like GET; OPTIONS is the CORS preflight, which browsers send without
 * credentials. Outside /api, GET is open (docs, the dashboard's static files).
 */
export function accessFor(method: string, route: string | undefined, path = route ?? '/'): Access {
  const verb = method === 'HEAD' ? 'GET' : method
  if (verb === 'OPTIONS') return 'public'
  if (route === undefined) return isApi(path) ? 'viewer' : 'public'
  const listed = POLICY[`${verb} ${route}`]
  if (listed) return listed
  if (verb === 'GET' && !isApi(route)) return 'public'
  return 'admin'
}

/** True when `role` is at least `needed`. */
export const allows = (role: Role, needed: Role) => ROLES.indexOf(role) >= ROLES.indexOf(needed)
