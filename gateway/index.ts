export { hashApiKey, generateApiKey, ApiKeyStore } from './auth/api-keys.ts';
export { startGateway, openGatewayCore, resolveConfig } from './gateway.ts';
export type { Gateway, GatewayCore, GatewayOptions } from './gateway.ts';
export { serveStdio } from './stdio-server.ts';
export type { StdioGateway } from './stdio-server.ts';
export { createLogger } from './logger.ts';
export type { Logger } from './logger.ts';
export { RECEIPT_META_KEY } from './session/session.ts';
export { GATEWAY_VERSION } from './version.ts';
