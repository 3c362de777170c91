#!/usr/bin/env python3
"""Drive one SMTP session with Python's smtplib, as the end-to-end tests ask.

Reads a JSON request on stdin (see PyProbeRequest in test/helpers/clients.ts) and prints one
JSON report line on stdout: what the server advertised, the TLS version, the AUTH reply, the
per-recipient refusals, the final DATA reply, or the error that stopped the session (with the
stage it happened in). Certificates are not verified: the gateway under test is self-signed.
"""
import json
import smtplib
import socket
import ssl
import sys
import warnings

# TLSVersion.TLSv1_1 is deprecated: the tests use it on purpose, to check it is refused.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def tls_context(req):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if req.get("tls_seclevel0"):
        # OpenSSL 3 refuses TLS 1.0/1.1 at the default security level on the client side too;
        # level 0 makes the client able to offer them, so a refusal comes from the server.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if req.get("tls_min"):
        ctx.minimum_version = getattr(ssl.TLSVersion, req["tls_min"])
    if req.get("tls_max"):
        ctx.maximum_version = getattr(ssl.TLSVersion, req["tls_max"])
    return ctx


def main():
    req = json.load(sys.stdin)
    out = {"ok": False, "stage": "connect"}
    host, port = req.get("host", "127.0.0.1"), int(req["port"])
    timeout = float(req.get("timeout", 20))
    ehlo_name = req.get("ehlo", "smtplib.example.net")
    s = None
    try:
        if req["mode"] == "ssl":
            s = smtplib.SMTP_SSL(host, port, local_hostname=ehlo_name, timeout=timeout, context=tls_context(req))
        else:
            s = smtplib.SMTP(host, port, local_hostname=ehlo_name, timeout=timeout)
        out["stage"] = "ehlo"
        code, _ = s.ehlo()
        if code != 250:
            raise smtplib.SMTPHeloError(code, "EHLO refused")
        out["features"] = dict(s.esmtp_features)
        if req["mode"] == "starttls":
            out["features_before_tls"] = dict(s.esmtp_features)
            out["stage"] = "starttls"
            s.starttls(context=tls_context(req))
            out["stage"] = "ehlo-after-tls"
            s.ehlo()
            out["features"] = dict(s.esmtp_features)
        if isinstance(s.sock, ssl.SSLSocket):
            out["tls_version"] = s.sock.version()
            c = s.sock.cipher()
            out["cipher"] = c[0] if c else None
        else:
            out["tls_version"] = None
        if req.get("login"):
            out["stage"] = "auth"
            user, password = req["login"]
            mech = req.get("auth_mechanism")
            if mech:
                s.user, s.password = user, password
                obj = s.auth_plain if mech == "PLAIN" else s.auth_login
                code, resp = s.auth(mech, obj, initial_response_ok=(mech == "PLAIN"))
            else:
                code, resp = s.login(user, password)
            out["auth_reply"] = [code, resp.decode("utf-8", "replace")]
        if req.get("mail_from") is not None:
            out["stage"] = "mail"
            code, resp = s.mail(req["mail_from"])
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, resp, req["mail_from"])
            out["stage"] = "rcpt"
            refused = {}
            for r in req.get("rcpt_to", []):
                code, resp = s.rcpt(r)
                if code not in (250, 251):
                    refused[r] = [code, resp.decode("utf-8", "replace")]
            out["refused"] = refused
            if len(refused) == len(req.get("rcpt_to", [])):
                raise smtplib.SMTPRecipientsRefused(refused)
            if req.get("message") is not None:
                out["stage"] = "data"
                code, resp = s.data(req["message"].encode("utf-8"))
                out["data_reply"] = [code, resp.decode("utf-8", "replace")]
                if code != 250:
                    raise smtplib.SMTPDataError(code, resp)
        out["stage"] = "quit"
        try:
            s.quit()
        except (smtplib.SMTPServerDisconnected, OSError):
            pass
        out["ok"] = True
    except smtplib.SMTPResponseException as e:
        out["error"] = {"type": type(e).__name__, "message": str(e), "smtp_code": e.smtp_code,
                        "smtp_error": e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error),
                        "stage": out["stage"]}
    except smtplib.SMTPRecipientsRefused as e:
        out["error"] = {"type": "SMTPRecipientsRefused", "message": str(e), "stage": out["stage"]}
    except (ssl.SSLError, smtplib.SMTPException, socket.timeout, OSError) as e:
        out["error"] = {"type": type(e).__name__, "message": str(e), "stage": out["stage"]}
    finally:
        if s is not None:
            try:
                s.close()
            except Exception:
                pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
