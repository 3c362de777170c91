#!/usr/bin/env python3
"""Real clients against one gateway node, for test/store/redis-accounts.test.ts; prints JSON.

usage: accounts_probe.py IMAPS_PORT POP3S_PORT SUBMISSIONS_PORT MX_PORT USER PASSWORD RCPT...
Each step's reply as the client library saw it: imaplib LOGIN, poplib USER/PASS, smtplib AUTH
PLAIN, and smtplib RCPT TO for each RCPT (on the MX port, from an outside sender).
"""
import imaplib
import json
import poplib
import smtplib
import ssl
import sys

imaps, pop3s, subs, mx = (int(x) for x in sys.argv[1:5])
user, password = sys.argv[5], sys.argv[6]
rcpts = sys.argv[7:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {}

m = imaplib.IMAP4_SSL('127.0.0.1', imaps, ssl_context=ctx)
try:
    typ, data = m.login(user, password)
    out['imap'] = typ + ' ' + data[0].decode()
    m.logout()
except imaplib.IMAP4.error as e:
    out['imap'] = 'NO ' + str(e)

p = poplib.POP3_SSL('127.0.0.1', pop3s, context=ctx)
try:
    p.user(user)
    out['pop3'] = p.pass_(password).decode()
except poplib.error_proto as e:
    out['pop3'] = e.args[0].decode() if isinstance(e.args[0], bytes) else str(e)
try:
    p.quit()
except Exception:
    pass

s = smtplib.SMTP_SSL('127.0.0.1', subs, context=ctx)
s.ehlo('client.example.net')
try:
    code, text = s.login(user, password)
    out['smtp_auth'] = '%d %s' % (code, text.decode())
except smtplib.SMTPAuthenticationError as e:
    out['smtp_auth'] = '%d %s' % (e.smtp_code, e.smtp_error.decode())
except smtplib.SMTPException as e:
    out['smtp_auth'] = 'error ' + str(e)
s.close()

s = smtplib.SMTP('127.0.0.1', mx)
s.ehlo('sender.example.net')
s.mail('someone@sender.example')
out['rcpt'] = {}
for r in rcpts:
    code, text = s.rcpt(r)
    out['rcpt'][r] = '%d %s' % (code, text.decode())
s.close()
print(json.dumps(out))
