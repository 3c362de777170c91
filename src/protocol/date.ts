// Dates as mail writes them (RFC 5322 s3.3), for the trace fields and the DSNs the gateway makes.
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 date-time in UTC, e.g. "Sat, 28 Nov 2026 19:00:00 +0000". */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** The UTC calendar day of a time, "YYYY-MM-DD" (report periods: DMARC and TLS-RPT days). */
export function utcDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}
