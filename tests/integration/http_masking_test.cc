// HTTP response masking through the real redirect: an unprivileged enrolled agent (curl,
// python3-requests) reads customer data from a real HTTP/1.1 upstream on 127.0.0.x and
// gets it masked — JSON by member name and detectors, gzip/deflate decoded and re-encoded,
// text by detectors — with the document still valid. Attacks first: every way an agent
// could ask for a form interlockd cannot mask (Range pieces, codings it cannot decode, an
// ambiguous Content-Type, a body that stops being JSON halfway) ends with nothing unmasked
// received. Also nginx (gzip on, Range served) as the upstream, and a 100 MB JSON array
// masked in bounded memory.
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"
#include "userspace/record/reader.h"
#include "userspace/record/replay.h"
#include "userspace/record/sealed_box.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Serves the same customer records in every form an API might: JSON (plain, gzip,
// deflate, "br"), text, an image, two Content-Types, JSON that breaks halfway, a 204, the
// request's own headers, and /big?mb=N: an N MB JSON array, chunked.
constexpr char kUpstream[] = R"PY(
import gzip, json, sys, time, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
CUSTOMERS = [
    {"id": 1, "name": "Ada Lovelace", "ssn": "123-45-6789", "card": 4111111111111111,
     "contact": {"email": "ada@example.com", "tags": ["vip", "card 5500 0000 0000 0004"]},
     "tax": {"ssn": "987-65-4321", "country": "UK"}, "balance": 1250.5},
    {"id": 2, "name": "Alan Turing", "ssn": "219-09-9999", "card": "4012888888881881",
     "contact": {"email": "alan@example.com", "tags": []}, "tax": None, "balance": 0},
]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, status, body, ctype="application/json", extra=()):
        self.send_response(status, "Created for ada@example.com" if status == 201 else None)
        if ctype: self.send_header("Content-Type", ctype)
        for k, v in extra: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
    def do_GET(self):
        path, _, query = self.path.partition("?")
        doc = json.dumps(CUSTOMERS).encode()
        if path == "/customers": self.send(200, doc)
        elif path == "/customers/new":
            self.send_response_only(103)
            self.send_header("Link", "</cards/4111111111111111>; rel=preload")
            self.end_headers()
            self.send(201, b'{"id": 3}', extra=[
                ("Location", "/customers/by-email/ada%40example.com"),
                ("Content-Disposition", 'attachment; filename="card-4012888888881881.json"'),
                ("X-Customer", "ada@example.com")])
        elif path == "/customers.bom": self.send(200, b"\xef\xbb\xbf" + doc)
        elif path == "/not-json": self.send(200, b"ssn 123-45-6789, no JSON here")
        elif path == "/customers.txt": self.send(200, doc, "text/plain; charset=utf-8")
        elif path == "/customers.untyped": self.send(200, doc, None)
        elif path == "/customers/export":
            self.send(200, b"id,name,card,mail\r\n1,Ada,4111 1111 1111 1111,ada@example.com\r\n", "application/octet-stream",
                      extra=[("Content-Disposition", 'attachment; filename="customers.csv"')])
        elif path == "/customers/blob":
            self.send(200, b"PK\x03\x04\x00\x00 4111111111111111", "application/octet-stream")
        elif path == "/customers.ndjson":
            self.send(200, "".join(json.dumps(c) + "\n" for c in CUSTOMERS).encode(), "application/x-ndjson")
        elif path == "/customers/events/later":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            time.sleep(1.5)
            self.chunk(("data: %s\n\n" % json.dumps(CUSTOMERS[0])).encode())
            self.chunk(b"")
        elif path == "/customers/events":
            body = "".join("event: message\r\ndata: %s\r\n\r\n" % json.dumps({"jsonrpc": "2.0", "result": c}) for c in CUSTOMERS)
            self.send(200, body.encode(), "text/event-stream")
        elif path == "/customers.csv":
            rows = "".join("%d,%s,%s,%s\r\n" % (c["id"], c["name"], c["ssn"], c["contact"]["email"]) for c in CUSTOMERS)
            as_ = query[3:]
            csv = "id,name,ssn,email\r\n" + rows
            wide = {"utf16": (b"\xff\xfe" + csv.encode("utf-16-le"), "text/csv; charset=utf-16"),
                    "utf16-octet": (b"\xff\xfe" + csv.encode("utf-16-le"), "application/octet-stream"),
                    "utf16-nobom": (csv.encode("utf-16-le"), "application/octet-stream"),
                    "utf16-json": (doc.decode().encode("utf-16-le"), "application/json")}
            if as_ in wide: self.send(200, wide[as_][0], wide[as_][1])
            else:
                ctype = {"plain": "text/plain", "octet": "application/octet-stream", "none": None}.get(as_, "text/csv")
                self.send(200, csv.encode(), ctype)
        elif path == "/customers.gz": self.send(200, gzip.compress(doc), extra=[("Content-Encoding", "gzip")])
        elif path == "/customers.deflate": self.send(200, zlib.compress(doc), extra=[("Content-Encoding", "deflate")])
        elif path == "/customers.br": self.send(200, b"\x1b\x00 123-45-6789", extra=[("Content-Encoding", "br")])
        elif path == "/notes.txt":
            self.send(200, b"card 4111 1111 1111 1111\r\nmail ada@example.com\r\nnothing here\r\n", "text/plain; charset=utf-8")
        elif path == "/photo.png": self.send(200, b"\x89PNG\r\n\x1a\n 4111111111111111", "image/png")
        elif path == "/two-types": self.send(200, doc, extra=[("Content-Type", "text/plain")])
        elif path == "/empty": self.send_response(204); self.end_headers()
        elif path == "/headers": self.send(200, json.dumps({k.lower(): v for k, v in self.headers.items()}).encode())
        elif path == "/broken":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk(b'[{"ssn": "123-45-6789"}, ')
            time.sleep(0.3)
            self.chunk(b'}} {"card": "4111111111111111", "ssn": "555-12-3456"}')
            self.chunk(b"")
        elif path == "/big":
            mb = int(query.split("=")[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pad = "x" * 300
            sent, i, first = 0, 0, True
            while sent < mb << 20:
                recs = []
                for _ in range(128):
                    recs.append('{"id":%d,"ssn":"123-45-6789","card":"4111111111111111","email":"u%d@example.com","pad":"%s"}' % (i, i, pad))
                    i += 1
                part = ("[" if first else ",") + ",".join(recs)
                first = False
                self.chunk(part.encode())
                sent += len(part)
            self.chunk(b"]")
            self.chunk(b"")
        else: self.send(404, b'{"error": "not found"}')
    do_HEAD = do_GET
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
)PY";

constexpr char kPolicy[] = R"YAML(
resources:
  - {resource: api, default_action: ACTION_DENY}
rules:
  - id: mask-customers
    match: {resources: [api], http: {methods: [GET, HEAD], paths: ["/customers*", "/big"]}}
    action: ACTION_MASK
    mask_profile: pii
  - id: read-rest
    match: {resources: [api], http: {methods: [GET, HEAD]}}
    action: ACTION_ALLOW
mask_profiles:
  - name: pii
    columns:
      - {column: "ssn", mask: {style: MASK_STYLE_REDACT}}
    detectors: [{detector: DETECTOR_CARD, mask: {style: MASK_STYLE_PARTIAL}}, {detector: DETECTOR_EMAIL}]
)YAML";

class HttpMaskingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("interlock-httpmask-");
    port_ = FreePort("127.0.0.68");
    const std::string script = absl::StrCat(dir_, "/upstream.py");
    ASSERT_TRUE(WriteFileAtomic(script, kUpstream, 0644).ok());
    upstream_ = Spawn({"/usr/bin/python3", script, "127.0.0.68", absl::StrCat(port_)}, absl::StrCat(dir_, "/up.log"));
    ASSERT_GT(upstream_, 0);
    ASSERT_TRUE(WaitFor([&] {
      return RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", absl::StrCat("http://127.0.0.68:", port_, "/")}, 5)
                 .exit_code == 0;
    }, 15));
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
    ASSERT_TRUE(WriteFileAtomic(policy_file_, kPolicy, 0644).ok());
  }
  void TearDown() override {
    if (upstream_ > 0) KillProcess(upstream_);
    RemoveTree(dir_);
  }

  // `http`: the resource's http block, flow style ("refuse_unmaskable_bodies: true").
  std::unique_ptr<InterlockdHarness> Daemon(bool refuse_unmaskable = false, const std::string& auditor_pub = "",
                                            std::string http = "") {
    if (refuse_unmaskable) http = "refuse_unmaskable_bodies: true";
    ResourceSpec r{"api", "127.0.0.68", port_,
                   absl::StrCat("    protocol: PROTOCOL_HTTP\n", http.empty() ? "" : absl::StrCat("    http: {", http, "}\n"))};
    return std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = {r},
        .extra_yaml = absl::StrCat("policy_file: ", policy_file_, "\n",
                                   auditor_pub.empty() ? "" : absl::StrCat("auditor_public_key_file: ", auditor_pub, "\n"))});
  }

  std::string Url(const std::string& path) const { return absl::StrCat("http://127.0.0.68:", port_, path); }

  // curl as the enrolled agent: -sS, the response head included (-i), and the status code
  // and curl's exit on the last line.
  CommandResult Curl(InterlockdHarness& h, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-i", "--max-time", "20", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    return h.RunAgent("agent", argv);
  }
  static std::string StatusOf(const CommandResult& r) {
    std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
    return lines.empty() ? "" : lines.back();
  }

  // The HTTP events for `path`, in order.
  std::vector<v1::AuditEvent> EventsFor(InterlockdHarness& h, const std::string& path) {
    std::vector<v1::AuditEvent> out;
    for (v1::AuditEvent& e : h.AuditEvents()) {
      if (e.kind() == v1::AUDIT_KIND_HTTP_REQUEST && e.http().path() == path) out.push_back(std::move(e));
    }
    return out;
  }

  std::string dir_, policy_file_;
  uint16_t port_ = 0;
  pid_t upstream_ = -1;
};

// What every masked customers document must look like, checked by a Python agent that
// parses it (so it is valid JSON) and prints one verdict line.
constexpr char kCheckCustomers[] = R"PY(
import json, sys
def check(d):
    a, b = d
    ok = (a["ssn"] == "[REDACTED]" and a["tax"]["ssn"] == "[REDACTED]" and b["ssn"] == "[REDACTED]"
          and isinstance(a["card"], str) and a["card"].endswith("1111") and "4111111111111111" not in a["card"]
          and "4012888888881881" not in b["card"] and "ada@example.com" not in a["contact"]["email"]
          and "5500 0000 0000 0004" not in a["contact"]["tags"][1]
          and a["name"] == "Ada Lovelace" and a["balance"] == 1250.5 and a["tax"]["country"] == "UK"
          and b["tax"] is None and b["contact"]["tags"] == [])
    return "masked-ok" if ok else "NOT MASKED: " + json.dumps(d)
)PY";

TEST_F(HttpMaskingTest, JsonIsMaskedByMemberNameAndDetectorsAndStaysValid) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  // requests, keep-alive: the MASK rule's answer, then one the ALLOW rule forwards, which the
  // session floor (the workload's MASK rules) masks too.
  const std::string py = absl::StrCat(kCheckCustomers, "import requests\ns = requests.Session()\n",
                                      "r = s.get('", Url("/customers"), "')\n",
                                      "print(r.status_code, r.headers.get('transfer-encoding'), ",
                                      "r.headers.get('content-length'), check(r.json()))\n",
                                      "e = s.get('", Url("/headers"), "', headers={'X-Contact': 'ada@example.com'})\n",
                                      "print(e.status_code, e.json()['x-contact'])\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("200 chunked None masked-ok")) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("ada@example.com"))) << r.out;
  auto events = EventsFor(*h, "/customers");
  ASSERT_EQ(events.size(), 1u);
  const v1::AuditEvent& e = events[0];
  EXPECT_EQ(e.decision().action(), "MASK");
  EXPECT_EQ(e.decision().rule_id(), "mask-customers");
  EXPECT_EQ(e.decision().mask_profile(), "pii");
  EXPECT_EQ(e.http().body_masking(), "json");
  EXPECT_EQ(e.http().masking().profile(), "pii");
  EXPECT_EQ(e.http().masking().column_counts().at("ssn"), 3u);
  EXPECT_EQ(e.http().masking().detector_counts().at("card"), 3u);
  EXPECT_EQ(e.http().masking().detector_counts().at("email"), 2u);
  EXPECT_EQ(e.http().masking().values_masked(), 8u);
  EXPECT_GT(e.http().upstream_response_body_bytes(), 0u);
  auto floor = EventsFor(*h, "/headers");
  ASSERT_EQ(floor.size(), 1u);
  EXPECT_EQ(floor[0].decision().action(), "ALLOW");
  EXPECT_EQ(floor[0].http().body_masking(), "json");
  // The recording holds what the agent received: masked (and what it sent, as sent).
  CommandResult replay = h->Cli({"replay", e.session_id()});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, Not(HasSubstr("123-45-6789")));
  EXPECT_THAT(replay.out, HasSubstr(R"(\"x-contact\": \"[REDACTED]\")"));
  for (const v1::AuditEvent& ev : h->AuditEvents()) EXPECT_THAT(ev.DebugString(), Not(HasSubstr("123-45-6789")));
}

// The same values in the response head instead of the body: a Location naming the
// customer's email (percent-encoded), a download name with a card number, a custom field,
// the reason phrase, and a 103 Early Hints' Link before the answer.
TEST_F(HttpMaskingTest, TheResponseHeadIsMaskedInEverySpelling) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {Url("/customers/new")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(StatusOf(r), "201") << r.out;
  EXPECT_THAT(r.out, HasSubstr("HTTP/1.1 103")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Location: /customers/by-email/[REDACTED]\r\n")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("X-Customer: [REDACTED]\r\n")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("HTTP/1.1 201 Created for [REDACTED]\r\n")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("{\"id\": 3}")) << r.out;
  // Spelled out: a bare "ada" also turns up in the hex of a session key now and then.
  constexpr const char* kSecrets[] = {"ada@", "ada%40", "example.com", "4111111111111111", "4012888888881881"};
  for (const char* secret : kSecrets) {
    EXPECT_THAT(r.out, Not(HasSubstr(secret))) << r.out;
  }
  auto events = EventsFor(*h, "/customers/new");
  ASSERT_EQ(events.size(), 1u);
  const v1::HttpExchange& x = events[0].http();
  EXPECT_EQ(x.status(), 201u);
  EXPECT_THAT(x.response_fields_masked(),
              ::testing::ElementsAre("Link", "Location", "Content-Disposition", "X-Customer", "(reason phrase)"));
  EXPECT_EQ(x.masking().detector_counts().at("email"), 3u);
  EXPECT_EQ(x.masking().detector_counts().at("card"), 2u);
  EXPECT_EQ(x.masking().values_masked(), 5u);
  CommandResult replay = h->Cli({"replay", events[0].session_id()});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, HasSubstr("201 Created for [REDACTED]")) << replay.out;
  for (const char* secret : kSecrets) {
    EXPECT_THAT(replay.out, Not(HasSubstr(secret))) << replay.out;
  }
  for (const v1::AuditEvent& ev : h->AuditEvents()) EXPECT_THAT(ev.DebugString(), Not(HasSubstr("ada@")));
}

TEST_F(HttpMaskingTest, GzipAndDeflateAreDecodedMaskedAndReencoded) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  // The agent asked for gzip and gets gzip — of the masked document.
  const std::string py = absl::StrCat(
      kCheckCustomers, "import gzip, zlib, urllib.request\n",
      "for path, dec in (('/customers.gz', gzip.decompress), ('/customers.deflate', zlib.decompress)):\n",
      "    req = urllib.request.Request('", Url(""), "' + path, headers={'Accept-Encoding': 'gzip, deflate'})\n",
      "    resp = urllib.request.urlopen(req)\n",
      "    print(path, resp.headers['Content-Encoding'], check(json.loads(dec(resp.read()))))\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("/customers.gz gzip masked-ok"));
  EXPECT_THAT(r.out, HasSubstr("/customers.deflate deflate masked-ok"));
  EXPECT_EQ(EventsFor(*h, "/customers.gz").at(0).http().body_masking(), "json+gzip");
  EXPECT_EQ(EventsFor(*h, "/customers.deflate").at(0).http().body_masking(), "json+deflate");
  // curl --compressed decodes it itself.
  CommandResult c = Curl(*h, {"--compressed", Url("/customers.gz")});
  EXPECT_EQ(StatusOf(c), "200") << c.out;
  EXPECT_THAT(c.out, HasSubstr("\"ssn\": \"[REDACTED]\""));
  EXPECT_THAT(c.out, Not(HasSubstr("123-45-6789")));
}

// An upstream that labels its JSON text/plain, or does not label it, cannot take it out
// of the field rules: the ssn values no detector of this profile knows are masked.
TEST_F(HttpMaskingTest, JsonLabelledAsTextOrNotAtAllIsMaskedAsJson) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string py = absl::StrCat(kCheckCustomers, "import requests\ns = requests.Session()\n",
                                      "for path in ('/customers.txt', '/customers.untyped'):\n",
                                      "    r = s.get('", Url(""), "' + path)\n",
                                      "    print(path, r.status_code, r.headers.get('content-type'), check(json.loads(r.text)))\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("/customers.txt 200 text/plain; charset=utf-8 masked-ok")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("/customers.untyped 200 None masked-ok")) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("123-45-6789")));
  for (const char* path : {"/customers.txt", "/customers.untyped"}) {
    auto events = EventsFor(*h, path);
    ASSERT_EQ(events.size(), 1u) << path;
    EXPECT_EQ(events[0].http().body_masking(), "json-sniffed") << path;
    EXPECT_EQ(events[0].http().masking().column_counts().at("ssn"), 3u) << path;
  }
}

// application/octet-stream is how an export endpoint sends a CSV: looked at, not trusted.
// Text is masked (where no field rules apply, or the resource passes text past them);
// bytes that are not text pass as they are, audited unmasked.
TEST_F(HttpMaskingTest, AnOctetStreamExportIsMaskedWhenItIsText) {
  auto h = Daemon(false, "", "pass_text_past_field_rules: true");  // else text is refused (below)
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string py = absl::StrCat("import requests\ns = requests.Session()\n",
                                      "e = s.get('", Url("/customers/export"), "').content\n",
                                      "b = s.get('", Url("/customers/blob"), "').content\n",
                                      "print(repr(e)); print(b == b'PK\\x03\\x04\\x00\\x00 4111111111111111')\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("1,Ada,**** **** **** 1111,[REDACTED]\\r\\n")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("\nTrue\n")) << r.out;
  auto exported = EventsFor(*h, "/customers/export");
  ASSERT_EQ(exported.size(), 1u);
  EXPECT_EQ(exported[0].http().body_masking(), "text");
  EXPECT_EQ(exported[0].http().masking().values_masked(), 2u);
  auto blob = EventsFor(*h, "/customers/blob");
  ASSERT_EQ(blob.size(), 1u);
  EXPECT_EQ(blob[0].http().body_masking(), "unmasked:binary");
}

// NDJSON (a streaming export, an LLM-style API): every line is masked as the JSON document
// it is, field rules included.
TEST_F(HttpMaskingTest, NdjsonIsMaskedLineByLineAsJson) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string py = absl::StrCat(kCheckCustomers, "import requests\n",
                                      "r = requests.get('", Url("/customers.ndjson"), "')\n",
                                      "print(r.status_code, check([json.loads(l) for l in r.text.splitlines()]))\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("200 masked-ok")) << r.out;
  auto events = EventsFor(*h, "/customers.ndjson");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].http().body_masking(), "json-lines");
  EXPECT_EQ(events[0].http().masking().column_counts().at("ssn"), 3u);
}

// Server-sent events, as an MCP server over streamable HTTP answers: each event's JSON data
// is masked as JSON, field rules included.
TEST_F(HttpMaskingTest, EventStreamJsonDataIsMaskedAsJson) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string py = absl::StrCat(
      kCheckCustomers, "import requests\n", "r = requests.get('", Url("/customers/events"), "')\n",
      "docs = [json.loads(l[6:])['result'] for l in r.text.splitlines() if l.startswith('data: ')]\n",
      "print(r.status_code, r.headers['content-type'], check(docs))\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("200 text/event-stream masked-ok")) << r.out;
  auto events = EventsFor(*h, "/customers/events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].http().body_masking(), "event-stream");
  EXPECT_EQ(events[0].http().masking().column_counts().at("ssn"), 3u);
}

// An event stream's head reaches the agent at once, though its first event comes later
// (an MCP server's GET stream can be silent for minutes): it is not held for first bytes.
TEST_F(HttpMaskingTest, AnEventStreamsHeadIsNotHeldForItsFirstEvent) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string py = absl::StrCat(
      "import json, time, requests\n", "t = time.monotonic()\n", "r = requests.get('", Url("/customers/events/later"),
      "', stream=True)\n", "head = time.monotonic() - t\n", "body = r.raw.read().decode()\n",
      "doc = json.loads(body.split('data: ', 1)[1])\n",
      "print(r.status_code, 'head-early' if head < 1.0 else 'head-late %.2f' % head, doc['ssn'])\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("200 head-early [REDACTED]")) << r.out;
}

// The agent asks for the customers as CSV instead (Accept: text/csv, ?format=csv): the
// profile's ssn field rule cannot reach into CSV, and no detector of this profile knows an
// SSN, so the answer is refused, never passed with the SSNs in clear. A resource that opts
// out (pass_text_past_field_rules) passes it masked by the detectors only.
TEST_F(HttpMaskingTest, TextTheFieldRulesCannotReachIsRefused) {
  {
    auto h = Daemon();
    ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
    CommandResult r = Curl(*h, {Url("/customers.csv")});
    EXPECT_EQ(StatusOf(r), "502") << r.out;
    EXPECT_THAT(r.out, HasSubstr("mask_unavailable"));
    EXPECT_THAT(r.out, HasSubstr("field rules"));
    EXPECT_THAT(r.out, Not(HasSubstr("123-45-6789")));
    auto events = EventsFor(*h, "/customers.csv");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].http().body_masking(), "failed");
    EXPECT_EQ(events[0].http().status(), 502u);
  }
  auto h = Daemon(false, "", "pass_text_past_field_rules: true");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {Url("/customers.csv")});
  EXPECT_EQ(StatusOf(r), "200") << r.out;
  EXPECT_THAT(r.out, HasSubstr("1,Ada Lovelace,123-45-6789,[REDACTED]\r\n")) << r.out;
  EXPECT_EQ(EventsFor(*h, "/customers.csv").at(0).http().body_masking(), "text");
}

// The same CSV labelled text/plain, sent as application/octet-stream, or not labelled (a
// spelling the agent can ask for, ?format=txt): told apart by its bytes, it is text, not
// JSON, so where field rules apply it is refused as the declared CSV is — before any of it,
// or of its head, reaches the agent, and the connection goes on. JSON under those labels
// is still masked (JsonLabelledAsTextOrNotAtAllIsMaskedAsJson), binary still passes.
TEST_F(HttpMaskingTest, TextThatTurnsOutNotToBeJsonIsRefusedWhereFieldRulesApply) {
  {
    auto h = Daemon();
    ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
    for (const char* as : {"plain", "octet", "none"}) {
      const std::string path = absl::StrCat("/customers.csv?as=", as);
      CommandResult r = Curl(*h, {Url(path), Url("/customers")});
      ASSERT_EQ(r.exit_code, 0) << r.err << h->DaemonLog();
      // The upstream's head is withheld too: the agent's first bytes are interlockd's 502.
      EXPECT_TRUE(absl::StartsWith(r.out, "HTTP/1.1 502 Bad Gateway\r\n")) << as << r.out;
      EXPECT_THAT(r.out, HasSubstr(R"("title":"Response cannot be masked")")) << r.out;
      EXPECT_THAT(r.out, HasSubstr("mask_unavailable")) << r.out;
      EXPECT_THAT(r.out, HasSubstr("field rules")) << r.out;
      EXPECT_THAT(r.out, Not(HasSubstr("123-45-6789"))) << r.out;
      EXPECT_EQ(StatusOf(r), "200") << "the next request on the connection is answered: " << r.out;
    }
    auto events = EventsFor(*h, "/customers.csv");
    ASSERT_EQ(events.size(), 3u);
    for (const v1::AuditEvent& e : events) {
      EXPECT_EQ(e.http().status(), 502u);
      EXPECT_EQ(e.http().body_masking(), "failed");
      EXPECT_EQ(e.http().answered_by(), "interlockd");
    }
    for (const v1::AuditEvent& ev : h->AuditEvents()) EXPECT_THAT(ev.DebugString(), Not(HasSubstr("123-45-6789")));
  }
  auto h = Daemon(false, "", "pass_text_past_field_rules: true");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {Url("/customers.csv?as=plain")});
  EXPECT_EQ(StatusOf(r), "200") << r.out;
  EXPECT_THAT(r.out, HasSubstr("1,Ada Lovelace,123-45-6789,[REDACTED]\r\n")) << r.out;
  EXPECT_EQ(EventsFor(*h, "/customers.csv").at(0).http().body_masking(), "text");
}

// The same customers in UTF-16 — labelled so, with a byte order mark as a spreadsheet's
// "Unicode text" export, sent as octet-stream with or without one, or as JSON: the
// detectors read ASCII-compatible bytes ("a\0d\0a\0@\0" is no email to them), so each is
// refused whole, never passed as binary or as text nothing matched in.
TEST_F(HttpMaskingTest, Utf16TextIsRefusedNotPassedPastTheDetectors) {
  auto h = Daemon(false, "", "pass_text_past_field_rules: true");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  for (const char* as : {"utf16", "utf16-octet", "utf16-nobom", "utf16-json"}) {
    CommandResult r = Curl(*h, {Url(absl::StrCat("/customers.csv?as=", as)), Url("/customers")});
    ASSERT_EQ(r.exit_code, 0) << r.err << h->DaemonLog();
    EXPECT_TRUE(absl::StartsWith(r.out, "HTTP/1.1 502 Bad Gateway\r\n")) << as << r.out;
    EXPECT_THAT(r.out, HasSubstr("mask_unavailable")) << as;
    EXPECT_THAT(r.out, HasSubstr(absl::string_view(as) == "utf16" ? "charset" : "UTF-16")) << as << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr(std::string("a\0d\0a\0@\0", 8)))) << as;
    EXPECT_EQ(StatusOf(r), "200") << "the next request on the connection is answered: " << r.out;
  }
  auto events = EventsFor(*h, "/customers.csv");
  ASSERT_EQ(events.size(), 4u);
  for (const v1::AuditEvent& e : events) {
    EXPECT_EQ(e.http().status(), 502u);
    EXPECT_EQ(e.http().body_masking(), "failed");
  }
}

// A body labelled JSON that is not JSON from its first byte is answered with a whole 502
// (its head is still held), not the upstream's head and a cut; JSON after a UTF-8 byte
// order mark (which RFC 8259 lets a parser ignore) is masked, the mark kept.
TEST_F(HttpMaskingTest, JsonThatIsNotJsonIsAWhole502AndAByteOrderMarkIsKept) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult bad = Curl(*h, {Url("/not-json"), Url("/customers")});
  ASSERT_EQ(bad.exit_code, 0) << bad.err << h->DaemonLog();
  EXPECT_TRUE(absl::StartsWith(bad.out, "HTTP/1.1 502 Bad Gateway\r\n")) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("could not be masked")) << bad.out;
  EXPECT_THAT(bad.out, Not(HasSubstr("123-45-6789"))) << bad.out;
  EXPECT_EQ(StatusOf(bad), "200") << "the connection goes on: " << bad.out;
  const std::string py = absl::StrCat(kCheckCustomers, "import requests\n", "r = requests.get('", Url("/customers.bom"),
                                      "')\n", "print(r.status_code, r.content[:3] == b'\\xef\\xbb\\xbf', ",
                                      "check(json.loads(r.content[3:])))\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("200 True masked-ok")) << r.out;
}

// Text passed past the field rules (pass_text_past_field_rules) is masked by the detectors.
TEST_F(HttpMaskingTest, TextIsMaskedByDetectorsAndBinaryPassesAudited) {
  auto h = Daemon(false, "", "pass_text_past_field_rules: true");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult t = Curl(*h, {Url("/notes.txt")});
  EXPECT_EQ(StatusOf(t), "200") << t.out;
  EXPECT_THAT(t.out, Not(HasSubstr("4111 1111 1111 1111")));
  EXPECT_THAT(t.out, Not(HasSubstr("ada@example.com")));
  EXPECT_THAT(t.out, HasSubstr("nothing here\r\n"));  // CRLF as sent
  EXPECT_EQ(EventsFor(*h, "/notes.txt").at(0).http().body_masking(), "text");
  // A binary body cannot be masked: passed, and the audit event says so.
  CommandResult b = Curl(*h, {Url("/photo.png")});
  EXPECT_EQ(StatusOf(b), "200") << b.out;
  EXPECT_EQ(EventsFor(*h, "/photo.png").at(0).http().body_masking(), "unmasked:binary");
  // HEAD and 204: nothing to mask, nothing added.
  CommandResult head = Curl(*h, {"-I", Url("/customers")});
  EXPECT_THAT(head.out, HasSubstr("Content-Length: ")) << head.out;  // the upstream's, as for GET
  EXPECT_EQ(EventsFor(*h, "/customers").at(0).http().body_masking(), "none");
  CommandResult empty = Curl(*h, {Url("/empty")});
  EXPECT_THAT(empty.out, HasSubstr("HTTP/1.1 204")) << empty.out;
  EXPECT_EQ(EventsFor(*h, "/empty").at(0).http().body_masking(), "none");
  // An HTTP/1.0 agent cannot take chunked: the masked body ends with the connection.
  CommandResult old = Curl(*h, {"-0", Url("/customers")});
  EXPECT_EQ(StatusOf(old), "200") << old.out;
  EXPECT_THAT(old.out, Not(HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(old.out, HasSubstr("\"ssn\": \"[REDACTED]\""));
}

TEST_F(HttpMaskingTest, EveryWayAroundTheMaskEndsWithNothingUnmasked) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  // Pieces (Range) and codings interlockd cannot decode are not asked of the upstream.
  CommandResult hdrs = Curl(*h, {"-r", "0-5", "-H", "If-Range: x", "-H", "Accept-Encoding: br, gzip;q=0.5, zstd, *",
                                 Url("/headers")});
  EXPECT_EQ(StatusOf(hdrs), "200") << hdrs.out;
  EXPECT_THAT(hdrs.out, Not(HasSubstr("\"range\"")));
  EXPECT_THAT(hdrs.out, Not(HasSubstr("\"if-range\"")));
  EXPECT_THAT(hdrs.out, HasSubstr("\"accept-encoding\": \"gzip;q=0.5\""));
  // A coding it cannot decode anyway, or two Content-Types: 502, nothing relayed.
  for (const char* path : {"/customers.br", "/two-types"}) {
    CommandResult r = Curl(*h, {Url(path)});
    EXPECT_EQ(StatusOf(r), "502") << path << r.out;
    EXPECT_THAT(r.out, HasSubstr("mask_unavailable")) << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr("123-45-6789"))) << r.out;
    EXPECT_EQ(EventsFor(*h, path).at(0).http().body_masking(), "failed");
  }
  // A body that stops being JSON halfway: what came before was masked; the connection ends
  // without the body's end, so the client reports an error, and nothing after it arrives.
  CommandResult broken = Curl(*h, {Url("/broken")});
  EXPECT_NE(broken.exit_code, 0) << broken.out;
  EXPECT_THAT(broken.out, Not(HasSubstr("123-45-6789")));
  EXPECT_THAT(broken.out, Not(HasSubstr("4111111111111111")));
  EXPECT_THAT(broken.out, Not(HasSubstr("555-12-3456")));
  EXPECT_EQ(EventsFor(*h, "/broken").at(0).http().body_masking(), "failed");
  bool audited = false;
  for (const v1::AuditEvent& e : h->AuditEvents()) audited |= e.reason() == "mask_failed";
  EXPECT_TRUE(audited);
}

TEST_F(HttpMaskingTest, TheOriginalsMaskingReplacedAreSealedToTheAuditorOnly) {
  CommandResult keygen = RunCommand({BinaryPath("interlock"), "auditor-keygen", "--out", absl::StrCat(dir_, "/auditor")});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  auto h = Daemon(false, absl::StrCat(dir_, "/auditor.pub"));
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {Url("/customers")});
  ASSERT_EQ(StatusOf(r), "200") << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("123-45-6789")));
  const std::string id = EventsFor(*h, "/customers").at(0).session_id();
  // Without the auditor's key: masked, and the originals by size only.
  CommandResult replay = h->Cli({"replay", id});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, Not(HasSubstr("123-45-6789")));
  EXPECT_THAT(replay.out, HasSubstr("sealed original"));
  // With it: what the upstream sent, as sent.
  CommandResult unsealed = h->Cli({"replay", id, "--unseal", absl::StrCat(dir_, "/auditor.key")});
  ASSERT_EQ(unsealed.exit_code, 0) << unsealed.err;
  EXPECT_THAT(unsealed.out, HasSubstr("123-45-6789"));
  EXPECT_EQ(h->Cli({"verify", id}).exit_code, 0);
  // A masked response head's originals too: the 103's Link, the Location, the reason phrase.
  CommandResult head = Curl(*h, {Url("/customers/new")});
  ASSERT_EQ(StatusOf(head), "201") << head.out;
  const std::string head_id = EventsFor(*h, "/customers/new").at(0).session_id();
  CommandResult masked = h->Cli({"replay", head_id});
  ASSERT_EQ(masked.exit_code, 0) << masked.err;
  for (const char* secret : {"ada@", "ada%40", "4111111111111111", "4012888888881881"}) {
    EXPECT_THAT(masked.out, Not(HasSubstr(secret))) << masked.out;
  }
  EXPECT_THAT(masked.out, HasSubstr("sealed original")) << masked.out;
  CommandResult opened = h->Cli({"replay", head_id, "--unseal", absl::StrCat(dir_, "/auditor.key")});
  ASSERT_EQ(opened.exit_code, 0) << opened.err;
  // The timeline previews the first original: the 103 as the upstream sent it.
  EXPECT_THAT(opened.out, HasSubstr(R"(original  "HTTP/1.1 103 Early Hints\r\nLink: </cards/4111111111111111>)"))
      << opened.out;
  // Every head whole, as sent, opened with the auditor's key (one sealed record per read
  // from the upstream, so both heads may share one).
  auto rec = record::ReadRecordingFile(absl::StrCat(h->state_dir(), "/recordings/", head_id, ".rec"));
  ASSERT_TRUE(rec.ok()) << rec.status();
  auto key = record::LoadAuditorPrivateKey(absl::StrCat(dir_, "/auditor.key"));
  ASSERT_TRUE(key.ok()) << key.status();
  auto originals = record::UnsealOriginals(rec->records, *key);
  ASSERT_TRUE(originals.ok()) << originals.status();
  std::string sent;
  for (const auto& [seq, bytes] : *originals) sent += bytes;
  for (const char* original : {"HTTP/1.1 103 Early Hints\r\nLink: </cards/4111111111111111>; rel=preload\r\n\r\n",
                               "HTTP/1.1 201 Created for ada@example.com\r\n",
                               "Location: /customers/by-email/ada%40example.com\r\n",
                               "Content-Disposition: attachment; filename=\"card-4012888888881881.json\"\r\n",
                               "X-Customer: ada@example.com\r\n"}) {
    EXPECT_THAT(sent, HasSubstr(original));
  }
  EXPECT_EQ(h->Cli({"verify", head_id}).exit_code, 0);
}

TEST_F(HttpMaskingTest, AResourceThatRefusesUnmaskableBodiesAnswers502) {
  auto h = Daemon(/*refuse_unmaskable=*/true);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult b = Curl(*h, {Url("/photo.png")});
  EXPECT_EQ(StatusOf(b), "502") << b.out;
  EXPECT_THAT(b.out, HasSubstr("cannot be masked"));
  EXPECT_THAT(b.out, Not(HasSubstr("4111111111111111")));
}

TEST_F(HttpMaskingTest, AHundredMegabyteJsonArrayIsMaskedInBoundedMemory) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const int64_t before = ProcessMemoryKib(h->pid(), "VmRSS:");
  // The agent counts what it got and parses it whole (valid JSON).
  const std::string py = absl::StrCat(
      "import json, sys, urllib.request\n", "d = urllib.request.urlopen('", Url("/big?mb=100"), "').read()\n",
      "doc = json.loads(d)\n",
      "print(len(d), len(doc), d.count(b'123-45-6789'), d.count(b'4111111111111111'), d.count(b'[REDACTED]'))\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py}, false, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(r.out), ' ');
  ASSERT_EQ(f.size(), 5u) << r.out;
  int64_t bytes = 0, records = 0;
  ASSERT_TRUE(absl::SimpleAtoi(f[0], &bytes) && absl::SimpleAtoi(f[1], &records));
  EXPECT_GT(bytes, int64_t{95} << 20);  // masking shortens it a little
  EXPECT_EQ(f[2], "0") << "raw SSNs reached the agent";
  EXPECT_EQ(f[3], "0") << "raw card numbers reached the agent";
  int64_t redacted = 0;
  ASSERT_TRUE(absl::SimpleAtoi(f[4], &redacted));
  EXPECT_EQ(redacted, 2 * records) << "an ssn and an email [REDACTED] per record";
  const int64_t peak = ProcessMemoryKib(h->pid(), "VmHWM:");
  std::cout << "[mask-stream] " << bytes << " bytes, " << records << " records masked; interlockd RSS before "
            << before << " KiB, peak " << peak << " KiB\n";
  EXPECT_LT(peak - before, 64 * 1024) << "interlockd grew by more than 64 MiB masking 100 MB";
  auto events = EventsFor(*h, "/big");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].http().masking().values_masked(), static_cast<uint64_t>(records) * 3);
  EXPECT_GT(events[0].http().upstream_response_body_bytes(), uint64_t{100} << 20);
  EXPECT_EQ(events[0].http().response_body_bytes(), static_cast<uint64_t>(bytes));
}

// nginx as the upstream: it compresses JSON itself (gzip on) and serves byte ranges. The
// agent's Range never reaches it (a 200 with the whole masked document comes back, not a
// 206 of raw bytes), and its gzip is masked.
TEST(HttpMaskingNginxTest, NginxGzipIsMaskedAndItsRangesAreNeverAskedFor) {
  const std::string doc =
      R"([{"id":1,"ssn":"123-45-6789","email":"ada@example.com","card":"4111 1111 1111 1111","pad":")" +
      std::string(2000, 'p') + R"("}])";
  auto nginx = NginxServer::Start({.address = "127.0.0.69",
                                   .files = {{"/v1/customers", doc}},
                                   .extra_http = {"gzip on;", "gzip_types application/json;", "gzip_min_length 0;"}});
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  const std::string dir = MakeTempDir("interlock-httpmask-nginx-");
  const std::string policy = absl::StrCat(dir, "/policy.yaml");
  ASSERT_TRUE(WriteFileAtomic(policy, R"YAML(
rules:
  - id: mask-web
    match: {resources: [web]}
    action: ACTION_MASK
    mask_profile: pii
mask_profiles:
  - name: pii
    columns: [{column: "ssn", mask: {style: MASK_STYLE_PARTIAL, keep_last: 4}}]
    detectors: [{detector: DETECTOR_CARD}, {detector: DETECTOR_EMAIL}]
)YAML", 0644).ok());
  {
    InterlockdHarness h({.resources = {{"web", "127.0.0.69", (*nginx)->port(), "    protocol: PROTOCOL_HTTP\n"}},
                         .extra_yaml = absl::StrCat("policy_file: ", policy, "\n")});
    ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
    const std::string url = absl::StrCat("http://127.0.0.69:", (*nginx)->port(), "/v1/customers");
    // Directly, nginx answers the range with raw bytes of the SSN.
    CommandResult direct = RunCommand({"/usr/bin/curl", "-sS", "-r", "8-30", url}, 20);
    EXPECT_THAT(direct.out, HasSubstr("123-45-6789")) << direct.out;
    CommandResult ranged = h.RunAgent("agent", {"/usr/bin/curl", "-sS", "-r", "8-30", "-w", "\n%{http_code}", url});
    EXPECT_THAT(ranged.out, ::testing::EndsWith("\n200")) << ranged.out;
    EXPECT_THAT(ranged.out, HasSubstr("\"ssn\":\"***-**-6789\"")) << ranged.out;
    EXPECT_THAT(ranged.out, Not(HasSubstr("123-45-6789")));
    CommandResult gz = h.RunAgent("agent", {"/usr/bin/curl", "-sS", "--compressed", "-D", "-", url});
    EXPECT_THAT(gz.out, HasSubstr("Content-Encoding: gzip")) << gz.out;
    EXPECT_THAT(gz.out, Not(HasSubstr("ada@example.com")));
    EXPECT_THAT(gz.out, Not(HasSubstr("4111 1111 1111 1111")));
    EXPECT_THAT(gz.out, HasSubstr(std::string(2000, 'p')));
    bool gzip_masked = false;
    for (const v1::AuditEvent& e : h.AuditEvents()) {
      gzip_masked |= e.kind() == v1::AUDIT_KIND_HTTP_REQUEST && e.http().body_masking() == "json+gzip";
    }
    EXPECT_TRUE(gzip_masked);
  }
  RemoveTree(dir);
}

}  // namespace
}  // namespace interlock::testing
