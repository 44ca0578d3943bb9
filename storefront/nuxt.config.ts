// Surge storefront: a Nuxt app rendered to static HTML by scripts/generate.mjs (see README.md).
// Built once with the node-server preset; generate.mjs runs that server on loopback, fetches every
// route and writes the HTML into a release directory served by the edge.
export default defineNuxtConfig({
  compatibilityDate: '2025-07-15',
  ssr: true,
  devtools: { enabled: false },
  telemetry: false,
  app: {
    buildAssetsDir: '/_nuxt/',
    head: {
      htmlAttrs: { lang: 'en' },
      charset: 'utf-8',
      viewport: 'width=device-width, initial-scale=1',
      titleTemplate: (t?: string) => (t ? `${t} · Surge` : 'Surge'),
      meta: [{ name: 'theme-color', content: '#14213d' }],
      link: [{ rel: 'icon', href: 'data:,' }],
    },
  },
  runtimeConfig: {
    // Where the server-side render reads the catalog (generate.mjs sets NUXT_API_INTERNAL=--api).
    apiInternal: 'http://127.0.0.1:8080',
    public: {
      // Where the browser calls the API: '' is same-origin /api/... (NUXT_PUBLIC_API_BASE).
      apiBase: '',
      // Absolute site URL for canonical links (NUXT_PUBLIC_SITE_URL, from generate.mjs --base-url).
      siteUrl: 'http://127.0.0.1:8080',
    },
  },
  features: { inlineStyles: true },
  experimental: { payloadExtraction: false, appManifest: false },
  nitro: { preset: 'node-server' },
})
