"""Python's poplib against the Portcullis POP3 server (driven by test/pop3/clients.test.ts).

Usage: poplib_client.py '<json>' with keys port, mode ("stls" | "ssl" | "plain"), user, password,
and dele (message numbers to delete before QUIT). Prints one JSON object: what each step gave.
"""
import base64
import json
import poplib
import ssl
import sys


def main() -> None:
    args = json.loads(sys.argv[1])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out: dict = {}
    if args["mode"] == "ssl":
        p = poplib.POP3_SSL("127.0.0.1", args["port"], context=ctx, timeout=20)
    else:
        p = poplib.POP3("127.0.0.1", args["port"], timeout=20)
    out["welcome"] = p.getwelcome().decode()
    out["capa"] = sorted(p.capa().keys())
    if args["mode"] == "stls":
        p.stls(context=ctx)
        out["capa_tls"] = sorted(p.capa().keys())
    try:
        p.user(args["user"])
        out["pass"] = p.pass_(args["password"]).decode()
    except poplib.error_proto as e:
        out["login_error"] = str(e)
        p.quit()
        print(json.dumps(out))
        return
    out["stat"] = list(p.stat())
    out["list"] = [l.decode() for l in p.list()[1]]
    out["uidl"] = [l.decode() for l in p.uidl()[1]]
    if out["stat"][0] > 0:
        out["top"] = base64.b64encode(b"\r\n".join(p.top(1, 0)[1])).decode()
        resp, lines, octets = p.retr(1)
        out["retr_resp"] = resp.decode()
        # poplib strips the line ends and undoes the byte-stuffing: put the CRLFs back.
        out["retr"] = base64.b64encode(b"".join(l + b"\r\n" for l in lines)).decode()
    for n in args.get("dele", []):
        out.setdefault("dele", []).append(p.dele(n).decode())
    out["quit"] = p.quit().decode()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
