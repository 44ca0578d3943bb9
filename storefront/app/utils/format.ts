// Shared formatting: money from integer minor units, and the URL of a product or category page.

/** How many minor units digits `currency` has (2 for EUR, 0 for JPY; 2 when unknown). */
function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2
  } catch {
    return 2
  }
}

/** `price_cents` as a decimal string in major units, e.g. 39900 EUR -> "399.00" (schema.org price). */
export function majorUnits(cents: number, currency: string): string {
  const d = minorDigits(currency)
  return (cents / 10 ** d).toFixed(d)
}

/** `price_cents` in `currency` as a shopper reads it, e.g. 39900 EUR -> "€399.00". */
export function formatPrice(cents: number, currency: string | null | undefined): string {
  if (!currency) return (cents / 100).toFixed(2)
  try {
    return new Intl.NumberFormat('en-IE', { style: 'currency', currency }).format(cents / 10 ** minorDigits(currency))
  } catch {
    return `${majorUnits(cents, currency)} ${currency}`
  }
}

/** The path of a product page (trailing slash: the generated file is <route>/index.html). */
export const productPath = (sku: string) => `/p/${encodeURIComponent(sku)}/`
/** The path of a category page. */
export const categoryPath = (c: string) => `/c/${encodeURIComponent(c)}/`

/** A category as a heading: "consoles" -> "Consoles". */
export const categoryTitle = (c: string) => (c ? c.charAt(0).toUpperCase() + c.slice(1) : c)

/** A same-site path to go to after sign-in; anything else (other origins, "//x") is "/". */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') ? next : '/'
}
