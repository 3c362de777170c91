#!/usr/bin/env python3
"""Python's imaplib against the Portcullis IMAP server; prints one JSON object.

usage: imaplib_client.py PLAIN_PORT TLS_PORT USER PASSWORD
"""
import imaplib
import json
import ssl
import sys

plain_port, tls_port, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {}

# 1. Clear text: LOGINDISABLED, LOGIN refused; then STARTTLS and LOGIN works.
m = imaplib.IMAP4('127.0.0.1', plain_port)
out['caps_before_tls'] = list(m.capabilities)
try:
    m.login(user, password)
    out['cleartext_login'] = 'accepted'
except imaplib.IMAP4.error as e:
    out['cleartext_login'] = 'refused: ' + str(e)
m.starttls(ssl_context=ctx)
out['caps_after_tls'] = list(m.capabilities)
typ, _ = m.login(user, password)
out['starttls_login'] = typ
m.logout()

# 2. Implicit TLS: append, select, search, fetch back byte-identical, store, copy, expunge.
m = imaplib.IMAP4_SSL('127.0.0.1', tls_port, ssl_context=ctx)
m.login(user, password)
msg = (b'From: py@example.net\r\nTo: ' + user.encode() + b'\r\nSubject: imaplib test\r\n'
       b'Content-Type: text/plain; charset=utf-8\r\n\r\nHello from Python \xc3\xa9\r\n')
typ, data = m.append('INBOX', '(\\Flagged)', imaplib.Time2Internaldate(1700000000), msg)
out['append'] = [typ, data[0].decode()]
typ, data = m.list()
out['list'] = [d.decode() for d in data]
typ, data = m.select('INBOX')
out['select'] = [typ, data[0].decode()]
typ, data = m.search(None, 'SUBJECT', '"imaplib test"')
ids = data[0].split()
out['search'] = [i.decode() for i in ids]
typ, data = m.fetch(ids[-1], '(BODY.PEEK[] FLAGS)')
out['identical'] = data[0][1] == msg
typ, data = m.uid('SEARCH', None, 'FLAGGED')
out['uid_search_flagged'] = data[0].decode()
typ, data = m.store(ids[-1], '+FLAGS', '(\\Seen \\Answered)')
out['store'] = data[0].decode()
typ, data = m.copy(ids[-1], 'Trash')
out['copy'] = typ
m.store(ids[-1], '+FLAGS', '(\\Deleted)')
typ, data = m.expunge()
out['expunge'] = [d.decode() for d in data if d]
typ, data = m.status('Trash', '(MESSAGES UIDNEXT)')
out['status_trash'] = data[0].decode()
m.logout()
print(json.dumps(out))
