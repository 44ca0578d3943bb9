// Sales: times as a shopper reads them, and the waiting-room ticket kept per sale in
// sessionStorage (`surge.sale.<sale_id>`), whose pass add-to-cart sends as `Surge-Pass`.

/** What this tab keeps of a sale's ticket. `skus`: the sale's SKUs this tab has seen (the cart
 *  finds a line's pass by its SKU). */
export interface StoredTicket {
  customer_id: string
  ticket: string
  pass: string | null
  pass_expires_at: string | null
  skus: string[]
}

const saleKey = (saleId: string) => `surge.sale.${saleId}`

/** The stored ticket of `saleId` for `customerId`, or null. */
export function storedTicket(saleId: string, customerId: string | null): StoredTicket | null {
  if (!import.meta.client || !customerId) return null
  try {
    const t = JSON.parse(sessionStorage.getItem(saleKey(saleId)) ?? 'null') as StoredTicket | null
    return t && t.customer_id === customerId && typeof t.ticket === 'string' ? t : null
  } catch {
    return null
  }
}

/** Keeps `t` (the latest answer about the ticket) for `customerId`, remembering `sku`. */
export function storeTicket(t: Ticket, customerId: string, sku: string) {
  const old = storedTicket(t.sale_id, customerId)
  const skus = [...new Set([...(old?.ticket === t.ticket ? old.skus : []), sku])]
  const keep: StoredTicket = {
    customer_id: customerId,
    ticket: t.ticket,
    pass: t.state === 'admitted' ? t.pass : null,
    pass_expires_at: t.state === 'admitted' ? t.pass_expires_at : null,
    skus,
  }
  try {
    sessionStorage.setItem(saleKey(t.sale_id), JSON.stringify(keep))
  } catch {
    /* storage full or refused: the page still works, a reload forgets the ticket */
  }
}

export function forgetTicket(saleId: string) {
  try {
    sessionStorage.removeItem(saleKey(saleId))
  } catch {
    /* nothing kept */
  }
}

/** An unexpired pass of `customerId` for a sale that covers `sku`, or null. */
export function passFor(sku: string, customerId: string | null): string | null {
  if (!import.meta.client || !customerId) return null
  for (let i = 0; i < sessionStorage.length; ++i) {
    const k = sessionStorage.key(i)
    if (!k?.startsWith('surge.sale.')) continue
    const t = storedTicket(k.slice('surge.sale.'.length), customerId)
    if (t?.pass && t.skus.includes(sku) && Date.parse(t.pass_expires_at ?? '') > Date.now()) return t.pass
  }
  return null
}

/** A sale time in the generated HTML: UTC, the same on every server ("7 Dec 2026, 10:00 UTC"). */
export function utcTime(iso: string): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return new Intl.DateTimeFormat('en-GB', {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC',
  }).format(d) + ' UTC'
}

/** A sale time in the browser: the shopper's own time zone ("7 Dec 2026, 11:00 CET"). */
export function localTime(iso: string): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  return new Intl.DateTimeFormat('en-GB', {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
  }).format(d)
}

/** A countdown: "2 d 03 h", "1 h 05 min", "4 min 03 s", "12 s" (`ms` <= 0: "0 s"). */
export function countdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000))
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  const two = (n: number) => String(n).padStart(2, '0')
  if (d > 0) return `${d} d ${two(h)} h`
  if (h > 0) return `${h} h ${two(m)} min`
  if (m > 0) return `${m} min ${two(sec)} s`
  return `${sec} s`
}

/** An estimated wait in words ("less than a minute", "about 3 minutes", "about 2 hours"). */
export function waitWords(seconds: number): string {
  if (seconds < 60) return 'less than a minute'
  const m = Math.round(seconds / 60)
  if (m < 90) return `about ${m} minute${m === 1 ? '' : 's'}`
  const h = Math.round(seconds / 3600)
  return `about ${h} hour${h === 1 ? '' : 's'}`
}
