// Imported first by the CLI: libuv's threadpool (file I/O, fsync, scrypt) defaults to 4
// threads, which caps Maildir delivery with fsync at about 2,500 messages a second. It is
// sized when first used, so this must run before any asynchronous file operation.
process.env.UV_THREADPOOL_SIZE ??= '16';
export {};
