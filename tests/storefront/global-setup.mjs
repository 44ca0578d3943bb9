// Starts the stack every test uses (harness.mjs: two members, paysim, the generated site behind the
// edge, rebuild.mjs) and hands its addresses to the tests through STOREFRONT_* environment
// variables; the function it returns (Playwright's teardown) stops everything. A failed start
// stops what did start before failing.
import { StorefrontStack } from './harness.mjs';

export default async function globalSetup() {
  const nodeBinary = process.env.STOREFRONT_NODE_BINARY;
  const paysimBinary = process.env.STOREFRONT_PAYSIM_BINARY;
  const artefacts = process.env.STOREFRONT_ARTEFACTS;
  if (!nodeBinary || !paysimBinary || !artefacts) {
    throw new Error('STOREFRONT_NODE_BINARY, STOREFRONT_PAYSIM_BINARY and STOREFRONT_ARTEFACTS must be set (run.mjs sets them)');
  }
  const stack = new StorefrontStack({ nodeBinary, paysimBinary, artefacts, members: 2, rebuild: true });
  const stop = async () => stack.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await stack.start();
  } catch (e) {
    await stop();
    throw e;
  }
  Object.assign(process.env, {
    STOREFRONT_BASE: stack.base,
    STOREFRONT_EDGE_PORT: String(stack.edgePort),
    STOREFRONT_ADMIN_PORT: String(stack.hx.nodes.get('n1').admin),
    STOREFRONT_ADMIN_TOKEN: stack.hx.token,
    STOREFRONT_PAYSIM_PORT: String(stack.hx.paysim.ports.alpha),
    STOREFRONT_DB_URL: stack.dbUrl(),
  });
  return stop;
}
