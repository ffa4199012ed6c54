import { ApiError, api } from './api.js'
import { announce, h } from './dom.js'
import { parseHash } from './router.js'
import { createScope } from './scope.js'
import {
  getRole,
  getToken,
  isAuthDisabled,
  isSignedIn,
  setAuthDisabled,
  setRole,
  signOut,
} from './session.js'
import { alertsView } from './views/alerts.js'
import { deviceView } from './views/device.js'
import { fleetView } from './views/fleet.js'
import { loginView } from './views/login.js'

/** Hash routes: #/fleet, #/device/{id}, #/alerts, #/login. Each view is `(root, ctx) => void`. */
const ROUTES = [
  { name: 'fleet', pattern: /^\/fleet$/, view: fleetView },
  { name: 'device', pattern: /^\/device\/([^/]+)$/, view: deviceView },
  { name: 'alerts', pattern: /^\/alerts$/, view: alertsView },
  { name: 'login', pattern: /^\/login$/, view: loginView, open: true },
]

const TITLES = { fleet: 'Fleet', alerts: 'Alerts', login: 'Sign in' }
const main = document.getElementById('main')
let current

function updateChrome(routeName) {
  const signedIn = isSignedIn() && routeName !== 'login'
  document.getElementById('main-nav').hidden = !signedIn
  document.getElementById('who').hidden = !signedIn
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === routeName) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const role = document.getElementById('who-role')
  role.textContent = isAuthDisabled() ? 'authentication off' : (getRole() ?? 'signed in')
  document.getElementById('logout').hidden = isAuthDisabled()
  const footer = document.getElementById('server-info')
  footer.hidden = !signedIn || !footer.textContent
  if (signedIn && !footer.textContent) showServerInfo(footer)
}

/** The footer: server version and the broker address a meter should use (asked once per page load). */
async function showServerInfo(footer) {
  try {
    const { version, broker } = await api('/api/session', { quiet: true })
    const host = location.hostname
    const tls = broker.tls_port ? ` or mqtts://${host}:${broker.tls_port}` : ''
    const address = broker.url ?? `mqtt://${host}:${broker.port}${tls}`
    footer.replaceChildren(
      `IoT Meter ${version} · Meters connect to `,
      h('code', { 'data-broker': '' }, address),
      ` (device authentication: ${broker.device_auth}) · `,
      h('a', { href: '/docs' }, 'API reference'),
    )
    footer.hidden = !isSignedIn() || parseHash().path === '/login'
  } catch {
    // The footer is a convenience: a failure here shows up in the views' own requests.
  }
}

function render() {
  const { path, query } = parseHash()
  const route = ROUTES.find((r) => r.pattern.test(path))
  if (!route) return location.replace('#/fleet')
  if (!route.open && !isSignedIn()) {
    return location.replace(`#/login?next=${encodeURIComponent(`#${path}`)}`)
  }
  current?.dispose()
  current = createScope()
  let params
  try {
    params = path.match(route.pattern).slice(1).map(decodeURIComponent)
  } catch {
    return location.replace('#/fleet')
  }
  document.title = `${params[0] ?? TITLES[route.name]} · IoT Meter`
  main.replaceChildren()
  updateChrome(route.name)
  route.view(main, { scope: current, params, query, navigate: (hash) => (location.hash = hash) })
  if (document.activeElement === document.body) main.focus({ preventScroll: true })
}

const banner = document.getElementById('banner')
window.addEventListener('api:network', (event) => {
  const down = !event.detail.up
  if (down === !banner.hidden) return
  banner.hidden = !down
  banner.textContent = down ? 'Cannot reach the server. The dashboard keeps retrying…' : ''
  if (!down) announce('Connection to the server restored')
})

window.addEventListener('api:unauthorized', () => {
  if (isAuthDisabled() || parseHash().path === '/login') return
  signOut('Your session has ended: the token was rejected (expired or revoked). Please sign in again.')
  location.replace(`#/login?next=${encodeURIComponent(location.hash)}`)
})

document.getElementById('logout').addEventListener('click', () => {
  signOut('You are signed out.')
  location.hash = '#/login'
})

/** Asks the server who we are. Without a token, a 200 means authentication is off. */
async function discover() {
  try {
    const session = await api('/api/session', { quiet: true })
    setAuthDisabled(!session.auth_enabled)
    if (session.role) setRole(session.role)
  } catch (error) {
    if (error instanceof ApiError && error.status === 0) {
      banner.hidden = false
      banner.textContent = 'Cannot reach the server. Reload the page when it is back.'
    }
  }
}

window.addEventListener('hashchange', render)
if (!getToken() || !getRole()) await discover()
render()
