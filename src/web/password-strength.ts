// The strength meter of the password page: zxcvbn's score (0–4), estimated on the server (no
// script on the page), with the user's address as extra dictionary words, as the policy does
// (src/auth/password-policy.ts, which makes the decision; this only shows it).
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as enDictionary, translations as enTranslations } from '@zxcvbn-ts/language-en';
import { html, type SafeHtml } from './html.js';

let factory: ZxcvbnFactory | undefined;

export function passwordStrength(password: string, address: string): number {
  factory ??= new ZxcvbnFactory({
    dictionary: { ...commonDictionary, ...enDictionary }, graphs: adjacencyGraphs, translations: enTranslations, maxLength: 128,
  });
  const at = address.lastIndexOf('@');
  return factory.check(password.slice(0, 128), [address, address.slice(0, at), ...address.slice(at + 1).split('.')]).score;
}

const WORDS = ['very weak', 'weak', 'fair', 'strong', 'very strong'];

export function strengthMeter(score: number): SafeHtml {
  const s = Math.max(0, Math.min(4, Math.round(score)));
  return html`<span class="meter" role="meter" aria-valuemin="0" aria-valuemax="4" aria-valuenow="${s}"><span class="m m${s}"></span></span> <strong class="strength">${s} of 4 (${WORDS[s]})</strong>`;
}
