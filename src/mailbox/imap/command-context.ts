// What the command modules (mailbox-commands.ts, selected-commands.ts) see of a session, and the
// tagged completions they return. Kept apart from session.ts so that the session imports the
// commands and the commands import only this: no import cycle.
import type { Logger } from '../../log.js';
import type { FolderIndex } from '../maildir-index.js';
import type { ImapServices } from './services.js';

export type SessionState = 'notauth' | 'auth' | 'selected' | 'logout';

export interface SelectedMailbox {
  readonly name: string;
  readonly index: FolderIndex;
  readonly readOnly: boolean;
  /** Sequence number − 1 → UID, as this client knows them. */
  uids: number[];
  /** Flags (Maildir letters) last reported to this client, by UID. */
  readonly flagsSeen: Map<number, string>;
  /** Messages that are \Recent in this session. */
  readonly recent: Set<number>;
  /** Index version this view reflects. */
  version: number;
  readonly stopListening: () => void;
}

/** A command's outcome: the tagged status line. */
export interface Completion {
  status: 'OK' | 'NO' | 'BAD';
  code?: string;
  text: string;
}

export const ok = (text: string, code?: string): Completion => ({ status: 'OK', text, code });
export const no = (text: string, code?: string): Completion => ({ status: 'NO', text, code });
export const bad = (text: string, code?: string): Completion => ({ status: 'BAD', text, code });

/** The session as a command handler uses it (ImapSession implements it). */
export interface CommandSession {
  readonly state: SessionState;
  readonly user: string | undefined;
  /** The user's Maildir. */
  readonly root: string;
  readonly selected: SelectedMailbox | undefined;
  readonly log: Logger;
  readonly services: ImapServices;
  send(line: string): void;
  sendRaw(data: Buffer): Promise<void>;
  select(name: string, index: FolderIndex, readOnly: boolean): SelectedMailbox;
  deselect(): void;
  flagList(uid: number, letters: string): string;
}
