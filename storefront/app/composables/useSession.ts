// The signed-in shopper: localStorage `surge.token` and `surge.customer_id` (browser only; the
// generated HTML always renders signed out, and the header updates after mount).

export interface Session {
  token: string | null
  customerId: string | null
}

/** Seconds since the epoch at which the JWT `token` expires (0 when unreadable: treated as expired). */
function tokenExpiry(token: string): number {
  try {
    const part = token.split('.')[1] ?? ''
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'))
    return Number(JSON.parse(json).exp) || 0
  } catch {
    return 0
  }
}

export function useSession() {
  const session = useState<Session>('session', () => ({ token: null, customerId: null }))

  /** Reads localStorage; an expired token signs the shopper out. */
  function load() {
    if (import.meta.server) return
    const token = localStorage.getItem('surge.token')
    const customerId = localStorage.getItem('surge.customer_id')
    if (token && tokenExpiry(token) * 1000 <= Date.now()) {
      signOut()
      return
    }
    session.value = { token, customerId }
  }

  function signIn(token: string, customerId: string) {
    localStorage.setItem('surge.token', token)
    localStorage.setItem('surge.customer_id', customerId)
    session.value = { token, customerId }
  }

  function signOut() {
    localStorage.removeItem('surge.token')
    localStorage.removeItem('surge.customer_id')
    session.value = { token: null, customerId: null }
  }

  return { session, load, signIn, signOut }
}
