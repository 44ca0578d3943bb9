// The ctest entry of the storefront's browser tests: runs Playwright's test runner on this
// folder with the binaries and the artefact directory given as arguments.
//
// usage: node run.mjs <surge-node> <surge-paysim> <artefact dir> [playwright test arguments]
// SURGE_SCREENSHOTS=1 also writes the README's screenshots into storefront/screenshots/.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [nodeBinary, paysimBinary, artefacts, ...rest] = process.argv.slice(2);
if (!nodeBinary || !paysimBinary || !artefacts) {
  console.error('usage: node run.mjs <surge-node> <surge-paysim> <artefact dir> [playwright test arguments]');
  process.exit(2);
}
const cli = join(here, 'node_modules/@playwright/test/cli.js');
if (!existsSync(cli)) {
  console.error('@playwright/test is missing: run `npm ci` in tests/storefront (scripts/build.sh does)');
  process.exit(1);
}
mkdirSync(artefacts, { recursive: true });
const env = {
  ...process.env,
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
  STOREFRONT_NODE_BINARY: resolve(nodeBinary),
  STOREFRONT_PAYSIM_BINARY: resolve(paysimBinary),
  STOREFRONT_ARTEFACTS: resolve(artefacts),
};
const child = spawn(process.execPath, [cli, 'test', '--config', join(here, 'playwright.config.mjs'), ...rest],
  { cwd: here, stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => child.kill(sig));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
