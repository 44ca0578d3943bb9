// Helpers shared by generate.mjs and rebuild.mjs: argument parsing, logging, failing clearly.

/** `--name=value` / `--flag` arguments as an object; anything else is an error naming it. */
export function parseArgs(argv, known, usage) {
  const out = {}
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(a)
    if (!m || !known.includes(m[1])) die(`unknown argument '${a}'\n${usage}`)
    out[m[1]] = m[2] ?? 'true'
  }
  return out
}

/** A positive integer option, or `def` when absent; anything else is an error naming it. */
export function intOption(args, name, def) {
  if (args[name] === undefined) return def
  const n = Number(args[name])
  if (!Number.isInteger(n) || n < 1) die(`--${name} must be a positive integer, not '${args[name]}'`)
  return n
}

export function makeLogger(tag) {
  return (msg) => process.stderr.write(`${tag}: ${msg}\n`)
}

export function die(msg) {
  process.stderr.write(`storefront: ERROR: ${msg}\n`)
  process.exit(1)
}

/** A sku or category usable as one path segment on disk: letters, digits, `._~ -`, not starting
 *  with a dot (others are served by the node's fallback). */
export const safeSegment = (s) => typeof s === 'string' && /^[\p{L}\p{N}_~-][\p{L}\p{N}._~ -]{0,127}$/u.test(s)
