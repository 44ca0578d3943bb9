// The storefront's browser tests (run.mjs starts them; see tests/README.md): Debian's Chromium,
// headless, one worker (the tests share one stack from global-setup.mjs), bounded timeouts,
// traces and screenshots of failures under the artefact directory.
import { defineConfig } from '@playwright/test';

const artefacts = process.env.STOREFRONT_ARTEFACTS ?? 'test-artifacts';

export default defineConfig({
  testDir: '.',
  testMatch: /.*\.spec\.mjs/,
  globalSetup: './global-setup.mjs',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 90_000,
  globalTimeout: 360_000,
  expect: { timeout: 10_000 },
  outputDir: `${artefacts}/results`,
  reporter: [['list'], ['html', { outputFolder: `${artefacts}/report`, open: 'never' }]],
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: { executablePath: process.env.STOREFRONT_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] },
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    viewport: { width: 1280, height: 900 },
  },
});
