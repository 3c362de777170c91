// The quarantine index: `<data_dir>/quarantine/index.db` (SQLite, WAL, shared by the gateway and
// the offline CLI like state.db). One row per held message, one per recipient (a user's view is an
// index range of their own rows), and a trigram full-text table for search, so that listing and
// searching stay index lookups at 100,000 entries (the console's target is < 200 ms at p99).
import type Database from 'better-sqlite3';
import { openSqliteFile } from '../store/sqlite-file.js';
import { QuarantineError } from './types.js';

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE messages (
      seq        INTEGER PRIMARY KEY,  -- the full-text row id
      id         TEXT NOT NULL UNIQUE,
      time       INTEGER NOT NULL,     -- epoch ms
      reason     TEXT NOT NULL,
      sender     TEXT NOT NULL,
      subject    TEXT NOT NULL,
      message_id TEXT,
      queue_id   TEXT,
      score      REAL,
      symbols    TEXT NOT NULL,        -- JSON [{name, score, reason}]
      detail     TEXT,
      size       INTEGER NOT NULL,
      state      TEXT NOT NULL,        -- held | released | deleted, over all recipients
      stored     INTEGER NOT NULL      -- 1 while the original file is kept
    );
    CREATE INDEX messages_time ON messages (time, id);
    CREATE INDEX messages_reason ON messages (reason, time, id);
    CREATE INDEX messages_state ON messages (state, time, id);
    CREATE INDEX messages_queue ON messages (queue_id) WHERE queue_id IS NOT NULL;
    CREATE TABLE recipients (
      id          TEXT NOT NULL,
      address     TEXT NOT NULL,       -- lower case
      time        INTEGER NOT NULL,    -- the message's, for the per-user index
      state       TEXT NOT NULL,
      by          TEXT,
      at          INTEGER,
      destination TEXT,                -- JSON Destination, absent: the releaser decides
      PRIMARY KEY (id, address)
    ) WITHOUT ROWID;
    CREATE INDEX recipients_address ON recipients (address, time, id);
    -- Trigram: substring search in any script, case-insensitive, for queries of 3+ characters.
    CREATE VIRTUAL TABLE search USING fts5 (text, tokenize = 'trigram');
    -- When each user last got a digest (src/quarantine/digest.ts).
    CREATE TABLE digests (address TEXT PRIMARY KEY, sent_at INTEGER NOT NULL) WITHOUT ROWID;
  `,
  // Several nodes sharing one index through Redis (src/quarantine/shared-index.ts): rows held on
  // another node, the changes not yet handed to Redis (a transactional outbox: written with the
  // change itself, so a crash or a Redis outage loses none), and how far the shared log was read.
  2: `
    ALTER TABLE messages ADD COLUMN node TEXT;  -- the node holding the original; NULL: this one
    CREATE INDEX messages_local ON messages (time, id) WHERE node IS NULL;
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY, event TEXT NOT NULL);
    CREATE TABLE shared_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  `,
};

export function openIndex(file: string): Database.Database {
  return openSqliteFile(file, {
    migrations: MIGRATIONS,
    tooNew: (message) => new QuarantineError('INVALID', message),
  });
}
