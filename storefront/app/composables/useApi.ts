// The storefront API client. Capture it in setup (`const api = useApi()`), then call it anywhere:
// the base URL is the server-side catalog URL while rendering, the public one in the browser.

export interface Product {
  sku: string
  name: string
  description: string
  category: string
  price_cents: number
  currency: string
  available: number
  per_customer_limit: number
  /** The sale that governs this SKU now or next (absent when none). */
  sale?: ProductSale
}
/** A sale as the product JSON shows it (API.md "Sales and the waiting room"). */
export interface ProductSale {
  sale_id: string
  name: string
  starts_at: string
  ends_at: string
  state: 'scheduled' | 'live' | 'ended'
  queue: { enabled: boolean; admission_rate?: number | 'auto'; pass_ttl?: number }
}
/** A shopper's place in a sale's waiting room. */
export interface Ticket {
  sale_id: string
  ticket: string
  state: 'waiting' | 'admitted' | 'sold_out' | 'expired'
  position: number | null
  eta_s: number | null
  pass: string | null
  pass_expires_at: string | null
}
export interface CartLine {
  sku: string
  qty: number
  price_cents: number
  hold_id?: string
  hold_expires_at?: string
}
export interface Cart {
  cart_id: string
  customer_id: string | null
  items: CartLine[]
  total_cents: number
  currency: string | null
}
export interface Order {
  order_id: string
  cart_id: string
  status: string
  lines: { sku: string; qty: number; price_cents: number }[]
  total_cents: number
  currency: string
  created_at: string
}

export interface ApiOptions {
  method?: string
  body?: unknown
  token?: string | null
  headers?: Record<string, string>
}

export interface ApiResult<T> {
  status: number
  data: T
  headers: Headers
}

export function useApi() {
  const config = useRuntimeConfig()
  const base = String(import.meta.server ? config.apiInternal : config.public.apiBase).replace(/\/$/, '')

  /** One request; throws ShopError (status 0 when there was no answer) unless 2xx or 304. */
  async function raw<T>(path: string, opts: ApiOptions = {}): Promise<ApiResult<T>> {
    const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers }
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json'
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`
    let res: Response
    try {
      res = await fetch(base + path, {
        method: opts.method ?? 'GET',
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        cache: 'no-store',
      })
    } catch (e) {
      throw new ShopError(0, 'network', String(e))
    }
    if (res.status === 304) return { status: 304, data: undefined as T, headers: res.headers }
    const text = await res.text()
    let json: any = undefined
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      /* not JSON: an error page of a proxy */
    }
    if (!res.ok) {
      const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10)
      throw new ShopError(
        res.status,
        json?.error?.code ?? `http_${res.status}`,
        json?.error?.message ?? res.statusText,
        Number.isFinite(retry) ? retry : 0,
      )
    }
    return { status: res.status, data: json as T, headers: res.headers }
  }

  const get = async <T>(path: string, token?: string | null) => (await raw<T>(path, { token })).data

  return { base, raw, get }
}
