// Where the verdict finds each recipient's spam settings: the account store (`portcullis user
// set`) and, for sites migrating from the classic setup, opt-out files in home directories
// (`<base_dir>/<local part>/.spamme` = "deliver me everything"), re-read periodically.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { AccountStore } from '../auth/accounts.js';
import type { Logger } from '../log.js';
import { duration } from '../config/fields.js';
import { userSettingsSchema, type UserSettings, DEFAULT_SETTINGS } from './user-settings.js';

export const optOutFilesConfigSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** The directory holding one home directory per user, named by the address's local part. */
  base_dir: z.string().min(1).default('/home'),
  /** The file whose presence means "no spam filtering for me". */
  name: z.string().regex(/^[^/\0]+$/, 'must be a file name, not a path').default('.spamme'),
  refresh: duration('5m'),
}).prefault({});
export type OptOutFilesConfig = z.infer<typeof optOutFilesConfigSchema>;

/** Most home directories looked at per scan (a shared /home can be large; the rest is logged). */
const MAX_HOMES = 200_000;

export class UserPolicies {
  private optedOut = new Set<string>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly accounts: AccountStore | undefined,
    private readonly optOut: OptOutFilesConfig,
    private readonly logger?: Logger,
  ) {}

  /** Starts the periodic scan of opt-out files (when enabled); the first scan is done before returning. */
  start(): void {
    if (!this.optOut.enabled) return;
    this.scanOptOutFiles();
    this.timer = setInterval(() => this.scanOptOutFiles(), this.optOut.refresh);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** True when the user's home directory holds the opt-out file (as of the last scan). */
  hasOptOutFile(address: string): boolean {
    const at = address.lastIndexOf('@');
    return this.optedOut.has((at < 0 ? address : address.slice(0, at)).toLowerCase());
  }

  /**
   * The settings that apply to a local user: stored ones (a corrupt row counts as none, and is
   * logged), with the opt-out file forcing the filter off. Undefined: nothing user-specific.
   */
  settingsFor(address: string): UserSettings | undefined {
    let settings: UserSettings | undefined;
    const json = this.accounts?.getSettingsJson(address);
    if (json !== undefined) {
      try {
        settings = userSettingsSchema.parse(JSON.parse(json));
      } catch (err) {
        this.logger?.warn({ event: 'user_settings_invalid', user: address, err: (err as Error).message }, 'stored spam settings unreadable; site defaults apply');
      }
    }
    if (this.hasOptOutFile(address)) settings = { ...(settings ?? DEFAULT_SETTINGS), spam_filter: false };
    return settings;
  }

  /** Re-reads which home directories hold the opt-out file. Never throws. */
  scanOptOutFiles(): void {
    const next = new Set<string>();
    let homes: string[];
    try {
      homes = fs.readdirSync(this.optOut.base_dir);
    } catch (err) {
      this.logger?.warn({ event: 'optout_scan_failed', dir: this.optOut.base_dir, err: (err as Error).message }, 'cannot read the home directories; opt-out files unknown');
      return; // keep what we knew
    }
    if (homes.length > MAX_HOMES) {
      this.logger?.warn({ event: 'optout_scan_truncated', dir: this.optOut.base_dir, homes: homes.length, limit: MAX_HOMES }, 'too many home directories; the rest are not looked at');
      homes = homes.slice(0, MAX_HOMES);
    }
    for (const home of homes) {
      if (home.startsWith('.')) continue;
      try {
        if (fs.statSync(path.join(this.optOut.base_dir, home, this.optOut.name)).isFile()) next.add(home.toLowerCase());
      } catch {
        // No file (the usual case), or a home we may not read: not opted out.
      }
    }
    this.optedOut = next;
    this.logger?.debug?.({ event: 'optout_scan', users: next.size }, 'opt-out files scanned');
  }
}
