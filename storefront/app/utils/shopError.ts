// API errors and their meaning in words a shopper understands.

/** An API call that did not succeed: HTTP status (0: no answer), the API's error code, Retry-After. */
export class ShopError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public retryAfter = 0,
  ) {
    super(message)
  }
}

/** What to tell the shopper about `e` (a ShopError or anything thrown by fetch). */
export function shopperMessage(e: unknown): string {
  if (!(e instanceof ShopError)) return "We can't reach the shop right now. Check your connection and try again."
  switch (e.code) {
    case 'rate_limited':
      return `Lots of shoppers right now, try again in ${e.retryAfter || 1} s.`
    case 'sold_out':
      return 'Sorry, there are not enough left: this item is sold out or has fewer units than you asked for.'
    case 'limit_exceeded':
      return "You've reached the most of this item one shopper may buy."
    case 'login_required':
      return 'Please sign in to buy this item: it is limited per shopper.'
    case 'unauthorized':
      return 'Your sign-in has expired. Please sign in again.'
    case 'payment_declined':
      return 'Your card was declined. Nothing was charged and your cart is still here: try another card.'
    case 'hold_expired':
      return 'Your reservation ran out, so some items were released. Check your cart and try again.'
    case 'empty_cart':
      return 'Your cart is empty. Add something before checking out.'
    case 'checkout_in_progress':
      return 'Your order is being placed right now, so the cart cannot change.'
    case 'conflict':
      return 'This cart is already being checked out. Wait a moment, then check your order.'
    case 'currency_mismatch':
      return 'This item is priced in another currency than your cart. Check out your cart first.'
    case 'sale_not_started':
      return "This item is part of a sale that hasn't started yet. You can add it to your cart once the sale begins."
    case 'sale_ended':
      return 'Sorry, the sale for this item has ended, so it can no longer be added to your cart.'
    case 'queue_required':
      return "This sale has a waiting room: join the queue and add the item when it's your turn. If you had a turn, it may have run out."
    case 'idempotency_conflict':
      return 'That order attempt changed while it was running. Please try again.'
  }
  if (e.status === 0) return "We can't reach the shop right now. Check your connection and try again."
  if (e.status === 404) return "We couldn't find that. It may have been removed."
  if (e.status === 429) return `Lots of shoppers right now, try again in ${e.retryAfter || 1} s.`
  if (e.status === 503 || e.status === 502 || e.status === 504)
    return 'The shop is very busy or briefly unavailable. Please try again in a few seconds.'
  if (e.status >= 500) return 'Something went wrong on our side. Please try again.'
  return 'Something went wrong with that request. Please try again.'
}
