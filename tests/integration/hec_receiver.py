#!/usr/bin/python3
"""A tiny Splunk HEC-compatible receiver for tests/integration/audit_sinks_test.cc.

POST /services/collector/event with "Authorization: Splunk <token>" and a body of
concatenated JSON event objects. Answers 200 {"text":"Success","code":0} and appends each
object as one line to --out; 401 for a wrong token; --answer-file, when it exists and holds
a status code, forces that answer instead (to simulate 503 or 400) and records nothing.
TLS when --cert/--key are given. HTTP/1.1 keep-alive. Binds --host:--port only.
"""
import argparse
import http.server
import json
import os
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--answer-file")
    args = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("hec: " + (fmt % a) + "\n")

        def answer(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path != "/services/collector/event":
                return self.answer(404, {"text": "not found", "code": 404})
            if self.headers.get("Authorization") != "Splunk " + args.token:
                return self.answer(401, {"text": "Invalid token", "code": 4})
            if args.answer_file and os.path.exists(args.answer_file):
                with open(args.answer_file) as f:
                    code = int(f.read().strip() or "503")
                return self.answer(code, {"text": "forced", "code": code})
            dec = json.JSONDecoder()
            text = body.decode("utf-8")
            pos, objs = 0, []
            while pos < len(text):
                while pos < len(text) and text[pos] in " \r\n\t":
                    pos += 1
                if pos >= len(text):
                    break
                try:
                    obj, pos = dec.raw_decode(text, pos)
                except ValueError:
                    return self.answer(400, {"text": "Invalid data format", "code": 6})
                if "event" not in obj:
                    return self.answer(400, {"text": "Event field is required", "code": 12})
                objs.append(obj)
            with open(args.out, "a") as f:
                for o in objs:
                    f.write(json.dumps(o) + "\n")
                f.flush()
            self.answer(200, {"text": "Success", "code": 0})

    httpd = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    sys.stderr.write("hec: listening on %s:%d\n" % (args.host, args.port))
    sys.stderr.flush()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
