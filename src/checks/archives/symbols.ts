// The symbols of archive inspection (src/checks/av/archive-inspector.ts, src/mime/archive.ts).
import { declare } from '../registry.js';

export const ARCHIVE_SYMBOLS = declare('archives', {
  ARCHIVE_EXE: 'an executable inside an archive (stripped by default: archives.executable_inside)',
  ARCHIVE_BOMB: 'ratio, total size, entry count, lying or overlapping headers, or the time limit',
  ARCHIVE_TOO_DEEP: 'archives nested deeper than archives.max_depth (not opened further)',
  ARCHIVE_ENCRYPTED: 'an encrypted archive no password from the message opens: nobody can scan it',
  ARCHIVE_ENCRYPTED_OPENED: 'opened with a password from the message (a malware habit, but not only); entries scanned',
  ARCHIVE_CORRUPT: 'named or shaped like an archive, unreadable',
  ARCHIVE_PATH_TRAVERSAL: 'an entry name with ../ or an absolute path',
});
