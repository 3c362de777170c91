// Opening a SQLite file the way every Portcullis database is opened (accounts, state): created
// mode 0600 by us (SQLite's -wal/-shm files inherit it), WAL so the CLI and a running gateway
// share it, a busy timeout, and numbered schema migrations tracked in PRAGMA user_version.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export interface SqliteFileOptions {
  readonly busyTimeoutMs?: number;
  /** SQL per schema version, from 1 up; the highest key is the current version. */
  readonly migrations: Readonly<Record<number, string>>;
  /** The error to throw for a file written by a newer Portcullis. */
  readonly tooNew: (message: string) => Error;
}

export function openSqliteFile(file: string, opts: SqliteFileOptions): Database.Database {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  const db = new Database(file);
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    db.pragma('journal_mode = WAL');
    // State, not mail: losing the last writes on power loss is acceptable (the queue is not here).
    db.pragma('synchronous = NORMAL');
    migrate(db, file, opts);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: Database.Database, file: string, opts: SqliteFileOptions): void {
  const current = Math.max(...Object.keys(opts.migrations).map(Number));
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > current) {
      throw opts.tooNew(`${file} has schema version ${version}, newer than this portcullis understands (${current}); upgrade portcullis`);
    }
    for (let v = version + 1; v <= current; v++) {
      db.exec(opts.migrations[v]!);
      db.pragma(`user_version = ${v}`);
    }
  }).immediate();
}
