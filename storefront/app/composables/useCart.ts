// The shopper's cart: its id in localStorage `surge.cart_id`; created on the first add (with the
// customer's token when signed in). Every change goes through the API and the cart it answers.
// A line of a sale SKU carries the shopper's pass for that sale (`Surge-Pass`, utils/sale.ts)
// when this tab holds an unexpired one.

export function useCart() {
  const api = useApi()
  const { session, signOut } = useSession()
  const cart = useState<Cart | null>('cart', () => null)
  const count = computed(() => (cart.value?.items ?? []).reduce((n, l) => n + l.qty, 0))

  const storedId = () => (import.meta.client ? localStorage.getItem('surge.cart_id') : null)
  const forget = () => {
    localStorage.removeItem('surge.cart_id')
    cart.value = null
  }

  const passHeader = (sku: string): Record<string, string> => {
    const pass = passFor(sku, session.value.customerId)
    return pass ? { 'Surge-Pass': pass } : {}
  }

  /** Calls `fn`; a 401 unauthorized (expired or bad token) signs the shopper out before rethrowing. */
  async function guarded<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      if (e instanceof ShopError && e.code === 'unauthorized') signOut()
      throw e
    }
  }

  /** The stored cart from the API, or null (none stored, or it expired / is not this shopper's). */
  async function load(): Promise<Cart | null> {
    const id = storedId()
    if (!id) {
      cart.value = null
      return null
    }
    try {
      cart.value = await guarded(() => api.get<Cart>(`/api/v1/carts/${encodeURIComponent(id)}`, session.value.token))
    } catch (e) {
      if (e instanceof ShopError && e.status === 404) forget()
      else throw e
    }
    if (cart.value && session.value.customerId && cart.value.customer_id !== session.value.customerId) await adopt()
    return cart.value
  }

  /** Signed in with a cart made before sign-in: moves its lines into a new cart of this customer
   *  (limited items need one) and releases the old lines. Best effort per line. */
  async function adopt() {
    const old = cart.value!
    const fresh = await create()
    for (const l of old.items) {
      const item = (c: string) => `/api/v1/carts/${encodeURIComponent(c)}/items/${encodeURIComponent(l.sku)}`
      await api.raw(item(old.cart_id), { method: 'DELETE' }).catch(() => {})
      try {
        cart.value = (
          await api.raw<Cart>(item(fresh.cart_id), {
            method: 'PUT', body: { qty: l.qty }, token: session.value.token,
            headers: passHeader(l.sku),
          })
        ).data
      } catch {
        /* sold out meanwhile: the line is dropped */
      }
    }
  }

  async function create(): Promise<Cart> {
    const body = session.value.customerId ? { customer_id: session.value.customerId } : {}
    const c = await guarded(() =>
      api.raw<Cart>('/api/v1/carts', { method: 'POST', body, token: session.value.token }),
    )
    localStorage.setItem('surge.cart_id', c.data.cart_id)
    cart.value = c.data
    return c.data
  }

  /** Sets the line of `sku` to exactly `qty` (0 removes it). */
  async function setQty(sku: string, qty: number): Promise<Cart> {
    let mine = cart.value ?? (await load())
    if (mine && session.value.customerId && mine.customer_id !== session.value.customerId) {
      await adopt()
      mine = cart.value
    }
    const c = mine ?? (await create())
    const path = `/api/v1/carts/${encodeURIComponent(c.cart_id)}/items/${encodeURIComponent(sku)}`
    const headers = passHeader(sku)
    const put = () => api.raw<Cart>(path, { method: 'PUT', body: { qty }, token: session.value.token, headers })
    try {
      cart.value = (await guarded(put)).data
    } catch (e) {
      // A 404 is an unknown sku or a cart that expired (or is not this shopper's): in the latter
      // case start a new cart, once.
      if (!(e instanceof ShopError && e.status === 404) || (await load())) throw e
      const fresh = await create()
      const again = `/api/v1/carts/${encodeURIComponent(fresh.cart_id)}/items/${encodeURIComponent(sku)}`
      cart.value = (
        await guarded(() => api.raw<Cart>(again, { method: 'PUT', body: { qty }, token: session.value.token, headers }))
      ).data
    }
    return cart.value!
  }

  /** Adds `qty` units of `sku` to what the cart already holds. */
  async function add(sku: string, qty: number): Promise<Cart> {
    if (!cart.value && storedId()) await load()
    const have = cart.value?.items.find((l) => l.sku === sku)?.qty ?? 0
    return setQty(sku, have + qty)
  }

  async function remove(sku: string): Promise<Cart> {
    const c = cart.value ?? (await load())
    if (!c) throw new ShopError(404, 'not_found', 'no cart')
    const path = `/api/v1/carts/${encodeURIComponent(c.cart_id)}/items/${encodeURIComponent(sku)}`
    cart.value = (await guarded(() => api.raw<Cart>(path, { method: 'DELETE', token: session.value.token }))).data
    return cart.value
  }

  return { cart, count, load, add, setQty, remove, forget }
}
