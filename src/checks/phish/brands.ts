// Brands that phishing and "reward survey" spam most often impersonate, with the registrable
// domains they really send from. Drawn from the public brand-phishing reports (Check Point's
// quarterly "most imitated brands", APWG's sector reports, the FTC's impersonation data) and from
// the retailers and insurers that the 2024–2026 survey-scam wave names: general knowledge of
// who gets impersonated, not a list fitted to a corpus. Operators add their own (and their
// partners') in phishing.brands.
//
// `names`: how a display name writes the brand, lower case, spaces as the words are spelt.
// `domains`: registrable domains the brand sends from besides those that contain its name
// (a domain whose labels contain a name's letters, like email-marriott.com, is always the
// brand's own: ESP sending domains are named that way, and we would rather miss a
// paypal-secure.example than flag every brand's marketing domain).
// `strict`: the name is also a common word or first name ("Chase", "Target", "Apple"): it
// counts only when the display name is the brand and service words, nothing else.

export interface Brand {
  readonly names: readonly string[];
  readonly domains?: readonly string[];
  readonly strict?: boolean;
}

export const BUILTIN_BRANDS: readonly Brand[] = [
  // Technology, accounts, documents
  { names: ['microsoft', 'microsoft 365', 'office 365', 'office365', 'outlook', 'onedrive', 'sharepoint', 'microsoft teams'], domains: ['microsoft.com', 'office.com', 'office365.com', 'outlook.com', 'live.com', 'microsoftonline.com', 'sharepointonline.com', 'onmicrosoft.com', 'microsoftstore.com', 'skype.com', 'linkedin.com'] },
  { names: ['google', 'gmail', 'google workspace', 'google drive', 'youtube'], domains: ['google.com', 'youtube.com', 'gmail.com', 'googlemail.com'] },
  { names: ['apple', 'icloud', 'apple id', 'app store', 'itunes'], domains: ['apple.com', 'icloud.com', 'me.com', 'mac.com'], strict: true },
  { names: ['amazon', 'amazon prime', 'prime video', 'aws'], domains: ['amazon.com', 'amazonses.com', 'primevideo.com', 'audible.com'] },
  { names: ['prime'], domains: ['amazon.com', 'primevideo.com'], strict: true },
  { names: ['netflix'] }, { names: ['spotify'] },
  { names: ['facebook', 'meta', 'instagram', 'whatsapp', 'messenger'], domains: ['facebook.com', 'facebookmail.com', 'meta.com', 'instagram.com', 'whatsapp.com', 'fb.com'], strict: true },
  { names: ['linkedin'] }, { names: ['twitter'], domains: ['x.com', 'twitter.com'] }, { names: ['tiktok'] },
  { names: ['docusign'], domains: ['docusign.net', 'docusign.com'] }, { names: ['adobe', 'adobe sign', 'acrobat sign'], domains: ['adobe.com', 'adobesign.com', 'echosign.com'] },
  { names: ['dropbox'] }, { names: ['wetransfer'] }, { names: ['zoom'], domains: ['zoom.us', 'zoom.com'], strict: true }, { names: ['webex'], domains: ['webex.com', 'cisco.com'] },
  { names: ['norton', 'norton 360', 'lifelock'], domains: ['norton.com', 'nortonlifelock.com', 'gen.com'] }, { names: ['mcafee'] }, { names: ['geek squad'], domains: ['bestbuy.com', 'geeksquad.com'] },
  { names: ['intuit', 'quickbooks', 'turbotax'], domains: ['intuit.com'] }, { names: ['roblox'] }, { names: ['steam'], domains: ['steampowered.com', 'steamcommunity.com'], strict: true },
  // Payments, banks, crypto
  { names: ['paypal'] }, { names: ['venmo'] }, { names: ['zelle'], domains: ['zellepay.com'] }, { names: ['cash app'], domains: ['cash.app', 'square.com', 'squareup.com'] },
  { names: ['wells fargo'] }, { names: ['chase', 'jpmorgan chase'], domains: ['chase.com', 'jpmorgan.com', 'jpmchase.com'], strict: true }, { names: ['bank of america'], domains: ['bankofamerica.com', 'bofa.com', 'ealerts.bankofamerica.com'] },
  { names: ['citibank', 'citi'], domains: ['citi.com', 'citibank.com'], strict: true }, { names: ['capital one'] }, { names: ['american express', 'amex'], domains: ['americanexpress.com', 'aexp.com'] },
  { names: ['visa'], domains: ['visa.com'], strict: true }, { names: ['mastercard'] }, { names: ['hsbc'] }, { names: ['barclays'] }, { names: ['santander'] }, { names: ['lloyds bank'], domains: ['lloydsbank.com', 'lloydsbank.co.uk'] },
  { names: ['coinbase'] }, { names: ['binance'] }, { names: ['metamask'] }, { names: ['kraken'], strict: true }, { names: ['ledger'], domains: ['ledger.com'], strict: true },
  // Delivery
  { names: ['dhl', 'dhl express'] }, { names: ['fedex'] }, { names: ['ups'], domains: ['ups.com'], strict: true }, { names: ['usps', 'us postal service', 'united states postal service'], domains: ['usps.com', 'usps.gov'] },
  { names: ['royal mail'] }, { names: ['la poste'] }, { names: ['dpd'] }, { names: ['canada post'], domains: ['canadapost.ca', 'postescanada.ca'] }, { names: ['australia post', 'auspost'], domains: ['auspost.com.au'] },
  // Telecoms
  { names: ['at&t', 'att'], domains: ['att.com', 'att.net', 'att-mail.com'], strict: true }, { names: ['verizon'] }, { names: ['t-mobile'], domains: ['t-mobile.com'] }, { names: ['xfinity', 'comcast'], domains: ['xfinity.com', 'comcast.net', 'comcast.com'] }, { names: ['spectrum'], domains: ['spectrum.com', 'spectrum.net', 'charter.com'], strict: true },
  // Retail (the survey and "free gift" wave)
  { names: ['walmart'] }, { names: ['costco'] }, { names: ['target'], domains: ['target.com'], strict: true }, { names: ['home depot', 'the home depot'], domains: ['homedepot.com'] }, { names: ["lowe's", 'lowes'], domains: ['lowes.com'] },
  { names: ['best buy'], domains: ['bestbuy.com'] }, { names: ["kohl's", 'kohls'], domains: ['kohls.com'] }, { names: ['ebay'] }, { names: ["sam's club"], domains: ['samsclub.com'] }, { names: ['kroger'] },
  { names: ['cvs', 'cvs pharmacy'], domains: ['cvs.com'] }, { names: ['walgreens'] }, { names: ['ace hardware'], domains: ['acehardware.com'] }, { names: ['tractor supply'], domains: ['tractorsupply.com'] }, { names: ['harbor freight'], domains: ['harborfreight.com'] },
  { names: ['omaha steaks'], domains: ['omahasteaks.com'] }, { names: ["dick's sporting goods"], domains: ['dickssportinggoods.com'] }, { names: ['bass pro shops', 'bass pro'], domains: ['basspro.com'] }, { names: ["cabela's"], domains: ['cabelas.com'] }, { names: ['yeti'], domains: ['yeti.com'], strict: true },
  // Travel
  { names: ['booking.com'], domains: ['booking.com'] }, { names: ['airbnb'] }, { names: ['marriott', 'marriott bonvoy'] }, { names: ['hilton', 'hilton honors'], strict: true }, { names: ['expedia'] }, { names: ['delta air lines', 'delta airlines'], domains: ['delta.com'] },
  // Japan: by the Council of Anti-Phishing Japan's monthly reports, the country most targeted
  // by brand phishing in 2022–2026 (card issuers, banks, rail and toll, carriers, mobile
  // operators). Names in Japanese script are found anywhere in a display name (Japanese writes
  // no spaces between words), so only forms that name the brand itself are listed.
  { names: ['三井住友カード', '三井住友銀行', 'smbcカード', 'smbc', 'vpass'], domains: ['smbc-card.com', 'smbc.co.jp', 'vpass.ne.jp', 'smbc-gp.co.jp'] },
  { names: ['イオンカード', 'イオン銀行', 'aeon card'], domains: ['aeon.co.jp', 'aeonbank.co.jp', 'aeon.com', 'aeon.jp'] },
  { names: ['jcb', 'jcbカード', 'myjcb'], domains: ['jcb.co.jp', 'jcb.jp', 'jcb-card.jp'] },
  { names: ['三菱ufj銀行', '三菱ufjニコス', 'mufg'], domains: ['mufg.jp', 'bk.mufg.jp', 'cr.mufg.jp'] },
  { names: ['みずほ銀行', 'mizuho'], domains: ['mizuhobank.co.jp', 'mizuho-fg.co.jp', 'mizuho-sc.com'] },
  { names: ['りそな銀行', 'resona'], domains: ['resonabank.co.jp', 'resona-gr.co.jp'] },
  { names: ['ゆうちょ銀行', '日本郵便', 'japan post'], domains: ['japanpost.jp', 'jp-bank.japanpost.jp', 'post.japanpost.jp'] },
  { names: ['楽天カード', '楽天銀行', '楽天市場', '楽天証券', '楽天グループ', 'rakuten'], domains: ['rakuten.co.jp', 'rakuten.com', 'rakuten-card.co.jp', 'rakuten-bank.co.jp', 'rakuten-sec.co.jp', 'rakuten.ne.jp'] },
  { names: ['セゾンカード', 'saison card'], domains: ['saisoncard.co.jp', 'saison.co.jp', 'saisoncard.jp'] },
  { names: ['エポスカード', 'epos card'], domains: ['eposcard.co.jp', '0101.co.jp'] },
  { names: ['ビューカード', 'えきねっと', 'jr東日本', 'eki-net'], domains: ['jreast.co.jp', 'eki-net.com', 'viewsnet.jp', 'jrview.jp'] },
  { names: ['etc利用照会', 'etcマイレージ'], domains: ['etc-meisai.jp', 'smile-etc.jp', 'w-nexco.co.jp', 'c-nexco.co.jp', 'e-nexco.co.jp'] },
  { names: ['ヤマト運輸', 'クロネコヤマト'], domains: ['kuronekoyamato.co.jp', 'yamato-hd.co.jp'] },
  { names: ['佐川急便'], domains: ['sagawa-exp.co.jp', 'sagawa-mov.co.jp'] },
  { names: ['nttドコモ', 'ドコモ', 'docomo'], domains: ['docomo.ne.jp', 'nttdocomo.co.jp', 'docomo.jp', 'nttdocomo.com'] },
  { names: ['ソフトバンク', 'softbank'], domains: ['softbank.jp', 'softbank.ne.jp', 'softbank.co.jp', 'ymobile.jp'] },
  { names: ['メルカリ', 'mercari'], domains: ['mercari.com', 'mercari.jp', 'merpay.com'] },
  { names: ['paypay'], domains: ['paypay.ne.jp'] },
  { names: ['国税庁', 'e-tax', '国税電子申告'], domains: ['nta.go.jp', 'e-tax.nta.go.jp'] },
  { names: ['sbi証券'], domains: ['sbisec.co.jp', 'sbigroup.co.jp'] },
  { names: ['マイナポータル', 'マイナポイント'], domains: ['myna.go.jp', 'digital.go.jp', 'soumu.go.jp'] },
  { names: ['東京電力', 'tepco'], domains: ['tepco.co.jp', 'tepco-ep.co.jp'] },
  { names: ['アマゾン'], domains: ['amazon.co.jp', 'amazon.com', 'amazonses.com'] },
  // Insurance, health, government
  { names: ['blue cross', 'bluecross', 'blue cross blue shield', 'bcbs'], domains: ['bcbs.com', 'anthem.com'] }, { names: ['aetna'] }, { names: ['cigna'] }, { names: ['unitedhealthcare', 'united healthcare'], domains: ['uhc.com', 'unitedhealthcare.com'] },
  { names: ['medicare'], domains: ['medicare.gov', 'cms.gov'] }, { names: ['state farm'] }, { names: ['allstate'] }, { names: ['geico'] }, { names: ['progressive', 'progressive insurance'], domains: ['progressive.com'], strict: true },
  { names: ['irs', 'internal revenue service'], domains: ['irs.gov'] }, { names: ['hmrc'], domains: ['hmrc.gov.uk', 'gov.uk'] }, { names: ['social security', 'social security administration'], domains: ['ssa.gov'] },
];
