// The IMAP server's public face for the gateway: configuration schema and startImap().
export { imapConfigSchema, defaultImapListeners, type ImapConfig, type ImapListenerConfig } from './config.js';
export { startImap, type ImapDeps, type ImapServer } from './server.js';
export type { JunkTrainEvent, JunkTrainHook } from './services.js';
