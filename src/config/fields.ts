// Field types shared by every part of the configuration schema (schema.ts and the sections
// that defences define beside their code): durations and sizes with units, domain names, CIDRs.
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { isValidCidr } from '../net/cidr.js';

export const duration = (fallback: string) =>
  z.union([z.string(), z.number()]).default(fallback).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 30s, 5m, 1h, 5d)` });
      return z.NEVER;
    }
    return ms;
  });

export const size = (fallback: string) =>
  z.union([z.string(), z.number()]).default(fallback).transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use e.g. 512KiB, 25MiB, 10MB)` });
      return z.NEVER;
    }
    return bytes;
  });

export const domainName = z.string().regex(/^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/i,
  'must be a domain name such as example.org').transform((d) => d.toLowerCase());

export const cidr = z.string().refine(isValidCidr, 'must be an IP address or CIDR range such as 192.0.2.0/24 or 2001:db8::/32');

export const port = z.number().int().min(0).max(65535);
