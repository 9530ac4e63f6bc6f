// HTTP through the real redirect: an unprivileged enrolled agent runs real curl against a
// real HTTP/1.1 upstream (Python's http.server, keep-alive, answering with what it received
// as JSON) on 127.0.0.x; interlockd judges each request with the policy, injects the
// resource's credential, removes the agent's, and audits every exchange. Attacks first:
// smuggling, path spellings, Host games, a stolen credential.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/protobuf/util/json_util.h"
#include "interlock/v1/report.pb.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/privileged.h"
#include "tests/testing/wait.h"
#include "userspace/codec/http/target.h"
#include "userspace/common/file_util.h"
#include "userspace/record/reader.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Answers every request with {"method", "path", "headers", "body"} (what it received),
// HTTP/1.1 keep-alive with Content-Length. /chunked/... answers chunked, 7 bytes a chunk;
// /chunked/stall sends its head, then the first chunk half a second later, then stops for a
// minute. With X-No-Echo, the body is not echoed
// back.
constexpr char kUpstream[] = R"PY(
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_any(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""): pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
            body = body.decode("latin-1")
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("latin-1") if n else ""
        out = json.dumps({"method": self.command, "path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": "(not echoed)" if self.headers.get("X-No-Echo") else body}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path.startswith("/chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.path == "/chunked/stall":  # the head alone first
                self.wfile.flush()
                time.sleep(0.5)
            for i in range(0, len(out), 7):
                part = out[i:i+7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                if self.path == "/chunked/stall":  # one chunk, then nothing for a minute
                    self.wfile.flush()
                    time.sleep(60)
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)
    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = do_PATCH = handle_any
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
)PY";

constexpr char kPolicy[] = R"YAML(
resources:
  - {resource: crm, default_action: ACTION_DENY}
rules:
  - id: read-customers
    match: {resources: [crm], http: {methods: [GET, HEAD], paths: ["/v1/customers/**", "/chunked/**"]}}
    action: ACTION_ALLOW
  - id: create-notes
    match: {resources: [crm], http: {methods: [POST], paths: ["/v1/notes"]}}
    action: ACTION_ALLOW
  - id: review-deletes
    match: {resources: [crm], http: {methods: [DELETE], paths: ["/v1/customers/*"]}}
    action: ACTION_REVIEW
    review_timeout_s: 60
  - id: deny-admin
    match: {resources: [crm], http: {paths: ["/admin/**"]}}
    action: ACTION_DENY
    reason: admin endpoints are off limits
)YAML";

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("interlock-http-");
    port_ = FreePort("127.0.0.61");
    const std::string script = absl::StrCat(dir_, "/upstream.py");
    ASSERT_TRUE(WriteFileAtomic(script, kUpstream, 0644).ok());
    upstream_ = Spawn({"/usr/bin/python3", script, "127.0.0.61", absl::StrCat(port_)}, absl::StrCat(dir_, "/up.log"));
    ASSERT_GT(upstream_, 0);
    ASSERT_TRUE(WaitFor([&] {
      return RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", absl::StrCat("http://127.0.0.61:", port_, "/")}, 5)
                 .exit_code == 0;
    }, 15));
    secret_file_ = absl::StrCat(dir_, "/api.token");
    ASSERT_TRUE(WriteFileAtomic(secret_file_, "s3cr3t-upstream-token\n", 0600).ok());
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
    ASSERT_TRUE(WriteFileAtomic(policy_file_, kPolicy, 0644).ok());
  }
  void TearDown() override {
    if (upstream_ > 0) KillProcess(upstream_);
    RemoveTree(dir_);
  }

  std::unique_ptr<InterlockdHarness> Daemon(const std::string& http_extra = "", const std::string& extra_yaml = "") {
    ResourceSpec r{"crm", "127.0.0.61", port_,
                   absl::StrCat("    protocol: PROTOCOL_HTTP\n    http:\n      credential: {bearer_ref: \"file:",
                                secret_file_, "\"}\n", http_extra)};
    return std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = {r}, .extra_yaml = absl::StrCat("policy_file: ", policy_file_, "\n", extra_yaml)});
  }

  // Every byte of every recording in the state dir.
  std::string AllRecordingBytes(InterlockdHarness& h) {
    std::string all;
    for (const auto& e : std::filesystem::recursive_directory_iterator(absl::StrCat(h.state_dir(), "/recordings"))) {
      if (!e.is_regular_file()) continue;
      auto bytes = ReadFile(e.path().string());
      if (bytes.ok()) all += *bytes;
    }
    return all;
  }

  std::string Url(const std::string& path) const { return absl::StrCat("http://127.0.0.61:", port_, path); }

  // curl as the enrolled agent; -sS, the status code on the last line.
  CommandResult Curl(InterlockdHarness& h, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    return h.RunAgent("agent", argv);
  }

  static std::string StatusOf(const CommandResult& r) {
    std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
    return lines.empty() ? "" : lines.back();
  }

  // curl as the agent, in the background; its output, then its status code on a line of
  // its own, in `out`.
  pid_t SpawnCurl(InterlockdHarness& h, const std::string& out, const std::vector<std::string>& args) {
    std::vector<std::string> argv = h.RunArgv("agent");
    for (const char* a : {"/usr/bin/curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}"}) argv.push_back(a);
    argv.insert(argv.end(), args.begin(), args.end());
    return Spawn(argv, out);
  }

  std::vector<v1::AuditEvent> HttpEvents(InterlockdHarness& h) {
    std::vector<v1::AuditEvent> out;
    for (v1::AuditEvent& e : h.AuditEvents()) {
      if (e.kind() == v1::AUDIT_KIND_HTTP_REQUEST) out.push_back(std::move(e));
    }
    return out;
  }

  std::string dir_, secret_file_, policy_file_;
  uint16_t port_ = 0;
  pid_t upstream_ = -1;
};

TEST_F(HttpTest, AllowedRequestGetsTheInjectedCredentialAndTheAgentsIsRemoved) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {"-H", "Authorization: Bearer agent-guess", "-H", "X-Trace: 1", Url("/v1/customers/7")});
  ASSERT_EQ(r.exit_code, 0) << r.out << h->DaemonLog();
  EXPECT_EQ(StatusOf(r), "200") << r.out;
  EXPECT_THAT(r.out, HasSubstr("\"authorization\": \"Bearer s3cr3t-upstream-token\""));
  EXPECT_THAT(r.out, Not(HasSubstr("agent-guess")));
  EXPECT_THAT(r.out, HasSubstr("\"x-trace\": \"1\""));
  auto events = HttpEvents(*h);
  ASSERT_EQ(events.size(), 1u);
  const v1::HttpExchange& x = events[0].http();
  EXPECT_EQ(x.method(), "GET");
  EXPECT_EQ(x.path(), "/v1/customers/7");
  EXPECT_EQ(x.status(), 200u);
  EXPECT_EQ(x.answered_by(), "upstream");
  EXPECT_EQ(x.credential_injected(), "bearer");
  EXPECT_THAT(x.agent_credentials_removed(), ::testing::ElementsAre("authorization"));
  EXPECT_EQ(events[0].decision().rule_id(), "read-customers");
  EXPECT_GT(x.response_body_bytes(), 0u);
  // The audit trail never holds the injected secret.
  for (const v1::AuditEvent& e : h->AuditEvents()) EXPECT_THAT(e.DebugString(), Not(HasSubstr("s3cr3t")));
  // The replay decodes the exchange; credentials are never printed.
  CommandResult replay = h->Cli({"replay", events[0].session_id()});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, HasSubstr("agent   GET /v1/customers/7 HTTP/1.1"));
  EXPECT_THAT(replay.out, HasSubstr("authorization: (not shown)"));
  EXPECT_THAT(replay.out, HasSubstr("server  200 OK  application/json"));
  EXPECT_THAT(replay.out, HasSubstr("body ("));
  EXPECT_THAT(replay.out, Not(HasSubstr("agent-guess")));
  EXPECT_EQ(h->Cli({"verify", events[0].session_id()}).exit_code, 0);
}

// A recording is kept for years and read by people the agent's data was never meant for:
// the agent's credentials, elided query values and (by default) request bodies must not be
// in it in clear — not in the file's bytes, not in the replay — while an auditor with the
// key can still read the bodies, and the recording still verifies.
TEST_F(HttpTest, RecordingsWithholdRequestBodiesAndCredentials) {
  CommandResult keygen = RunCommand({BinaryPath("interlock"), "auditor-keygen", "--out", absl::StrCat(dir_, "/auditor")});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  auto h = Daemon("", absl::StrCat("auditor_public_key_file: ", dir_, "/auditor.pub\n"));
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string pan = "4111111111111111";
  // Two requests on one connection: a JSON POST (Content-Length) and a chunked one.
  CommandResult r = Curl(*h, {"-H", "Authorization: Bearer agent-jwt-s3cret", "-H", "Content-Type: application/json",
                              "-H", "X-No-Echo: 1", "--data", absl::StrCat("{\"card\":\"", pan, "\"}"),
                              Url("/v1/notes?api_key=k3y-in-query"), "--next", "-H", "Transfer-Encoding: chunked", "-H",
                              "X-No-Echo: 1", "--data", "note=chunked-p4n-" + pan, Url("/v1/notes")});
  ASSERT_EQ(r.exit_code, 0) << r.out << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("(not echoed)"));
  // A request interlockd cannot parse carries a card number too.
  CommandResult bad = h->RunAgent(
      "agent", {"/usr/bin/python3", "-c",
                absl::StrCat("import socket; s=socket.create_connection(('127.0.0.61',", port_,
                             ")); s.sendall(b'POST /v1/notes HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 20\\r\\n"
                             "Transfer-Encoding: chunked\\r\\n\\r\\nsmuggled-",
                             pan, "'); print(s.recv(4096)[:12])")});
  EXPECT_THAT(bad.out, HasSubstr("HTTP/1.1 400")) << bad.out << bad.err;

  const std::string bytes = AllRecordingBytes(*h);
  ASSERT_FALSE(bytes.empty());
  // (The injected token and the query are in the recording only because this upstream
  // echoes the request it received: what the agent got back is recorded as it got it.)
  for (const std::string& secret : {pan, std::string("agent-jwt-s3cret")}) {
    EXPECT_THAT(bytes, Not(HasSubstr(secret))) << secret;
  }
  auto events = HttpEvents(*h);
  ASSERT_GE(events.size(), 2u);
  const std::string id = events[0].session_id();
  CommandResult replay = h->Cli({"replay", id});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_THAT(replay.out, HasSubstr("agent   POST /v1/notes?api_key=(elided) HTTP/1.1"));
  EXPECT_THAT(replay.out, HasSubstr("interlock-withheld-body: content-length 27"));
  EXPECT_THAT(replay.out, HasSubstr("interlock-withheld-body: chunked"));
  EXPECT_THAT(replay.out, HasSubstr("request_body_withheld"));
  EXPECT_THAT(replay.out, HasSubstr("27 bytes, sha256 "));
  EXPECT_THAT(replay.out, Not(HasSubstr(pan)));
  EXPECT_EQ(h->Cli({"verify", id}).exit_code, 0);
  CommandResult unsealed = h->Cli({"replay", id, "--unseal", absl::StrCat(dir_, "/auditor.key")});
  ASSERT_EQ(unsealed.exit_code, 0) << unsealed.err;
  EXPECT_THAT(unsealed.out, HasSubstr(absl::StrCat("27 bytes  original  \"{\\\"card\\\":\\\"", pan)));
  EXPECT_THAT(unsealed.out, HasSubstr(absl::StrCat("chunked-p4n-", pan)));
  // The malformed request: summarised, sealed, not in clear.
  std::string bad_session;
  for (const v1::AuditEvent& e : h->AuditEvents()) {
    if (e.kind() == v1::AUDIT_KIND_PROTOCOL_ERROR && e.session_id() != id) bad_session = e.session_id();
  }
  ASSERT_FALSE(bad_session.empty());
  CommandResult bad_replay = h->Cli({"replay", bad_session});
  EXPECT_THAT(bad_replay.out, HasSubstr("agent_unparsed"));
  EXPECT_THAT(bad_replay.out, Not(HasSubstr(pan)));
  CommandResult bad_unsealed = h->Cli({"replay", bad_session, "--unseal", absl::StrCat(dir_, "/auditor.key")});
  EXPECT_THAT(bad_unsealed.out, HasSubstr("109 bytes  original  \"POST /v1/notes HTTP/1.1"));
}

TEST_F(HttpTest, RecordRequestBodiesKeepsThemInClear) {
  auto h = Daemon("      record_request_bodies: true\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {"-H", "Authorization: Bearer agent-jwt-s3cret", "--data", "hello-body", Url("/v1/notes")});
  ASSERT_EQ(StatusOf(r), "200") << r.out << h->DaemonLog();
  auto events = HttpEvents(*h);
  ASSERT_EQ(events.size(), 1u);
  CommandResult replay = h->Cli({"replay", events[0].session_id()});
  EXPECT_THAT(replay.out, HasSubstr("body (10 bytes): hello-body"));
  EXPECT_THAT(replay.out, Not(HasSubstr("request_body_withheld")));
  EXPECT_THAT(AllRecordingBytes(*h), Not(HasSubstr("agent-jwt-s3cret")));  // credentials: never
}

TEST_F(HttpTest, DeniedAndUnlistedRequestsGetAProblemNamingTheRule) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult admin = Curl(*h, {Url("/admin/users")});
  EXPECT_EQ(StatusOf(admin), "403") << admin.out;
  EXPECT_THAT(admin.out, HasSubstr("\"interlock_rule\":\"deny-admin\""));
  EXPECT_THAT(admin.out, HasSubstr("admin endpoints are off limits"));
  CommandResult unlisted = Curl(*h, {Url("/v1/orders")});
  EXPECT_EQ(StatusOf(unlisted), "403") << unlisted.out;
  EXPECT_THAT(unlisted.out, HasSubstr("\"interlock_reason\":\"policy\""));
}

TEST_F(HttpTest, PathSpellingsAreJudgedAsTheUpstreamRoutesThem) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  // Every spelling of /admin/users is /admin/users (denied); the ambiguous ones are refused.
  for (const char* path : {"/%61dmin/users", "//admin/users", "/v1/../admin/users", "/v1/customers/../../admin/users",
                           "/%2e%2e/admin/users"}) {
    CommandResult r = Curl(*h, {"--path-as-is", Url(path)});
    EXPECT_THAT(StatusOf(r), ::testing::AnyOf("403", "400")) << path << "\n" << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr("\"method\""))) << path;  // never reached the upstream
  }
  for (const char* path : {"/admin%2Fusers", "/v1/customers;x=1", "/v1/customers/%00"}) {
    CommandResult r = Curl(*h, {"--path-as-is", Url(path)});
    EXPECT_EQ(StatusOf(r), "400") << path << "\n" << r.out;
  }
}

TEST_F(HttpTest, KeepAliveCarriesSeveralDecisionsAndChunkedBodiesAreReframed) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  // One curl, one connection, three requests: allowed, denied, allowed (chunked answer).
  CommandResult r = Curl(*h, {Url("/v1/customers/1"), "--next", Url("/admin/x"), "--next", Url("/chunked/2")});
  ASSERT_EQ(r.exit_code, 0) << r.out << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("\"path\": \"/v1/customers/1\""));
  EXPECT_THAT(r.out, HasSubstr("deny-admin"));
  EXPECT_THAT(r.out, HasSubstr("\"path\": \"/chunked/2\""));
  auto events = HttpEvents(*h);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].session_id(), events[2].session_id());  // the same connection
  // A chunked upload reaches the upstream whole.
  CommandResult up = Curl(*h, {"-H", "Transfer-Encoding: chunked", "--data-binary", "hello chunked world",
                               Url("/v1/notes")});
  EXPECT_EQ(StatusOf(up), "200") << up.out;
  EXPECT_THAT(up.out, HasSubstr("\"body\": \"hello chunked world\""));
}

// An HTTP session coalesces what it records per exchange and relies on the engine's batch to
// write it: a keep-alive connection that goes quiet after its answer must have the exchange
// on disk while it is still open (the engine writes only sessions that asked, FlushList).
TEST_F(HttpTest, AQuietKeepAliveConnectionsExchangeIsOnDiskWhileItIsStillOpen) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string out = absl::StrCat(dir_, "/quiet.out");
  std::vector<std::string> argv = h->RunArgv("agent");
  argv.insert(argv.end(), {"/usr/bin/python3", "-c",
                           absl::StrCat("import http.client, sys, time\n"
                                        "c = http.client.HTTPConnection('127.0.0.61', ", port_, ")\n"
                                        "c.request('GET', '/v1/customers/7')\n"
                                        "r = c.getresponse(); r.read()\n"
                                        "print('answered', r.status, flush=True)\n"
                                        "time.sleep(60)\n")});
  pid_t agent = Spawn(argv, out);
  // Stopped also when an assertion ends the test early (the second agent reuses `agent`).
  absl::Cleanup stop_agent = [&] {
    if (agent > 0) StopProcess(agent, 1);
  };
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(out).value_or(""), "answered 200"); }))
      << ReadFile(out).value_or("") << h->DaemonLog();
  std::vector<v1::AuditEvent> events;
  ASSERT_TRUE(WaitFor([&] {
    events = HttpEvents(*h);
    return events.size() == 1;
  }));
  const std::string path = absl::StrCat(h->state_dir(), "/recordings/", events[0].session_id(), ".rec");
  std::string to_agent, to_upstream;
  EXPECT_TRUE(WaitFor([&] {
    auto rec = record::ReadRecordingFile(path);
    if (!rec.ok()) return false;
    to_agent.clear();
    to_upstream.clear();
    for (const v1::Record& r : rec->records) {
      if (!r.has_data()) continue;
      (r.data().direction() == v1::DIRECTION_TO_AGENT ? to_agent : to_upstream) += r.data().payload();
    }
    return absl::StrContains(to_agent, "/v1/customers/7") && absl::StrContains(to_upstream, "GET /v1/customers/7");
  })) << "upstream: " << to_upstream << "\nagent: " << to_agent;
  EXPECT_THAT(to_agent, HasSubstr("HTTP/1.1 200"));
  EXPECT_EQ(h->Status().active_sessions(), 1u) << "the connection is still open";
  StopProcess(agent, 1);
  agent = -1;

  // An answer that stops half way (a stream, a stuck upstream): what the agent got so far is
  // on disk while the exchange is still open.
  const std::string out2 = absl::StrCat(dir_, "/stall.out");
  argv = h->RunArgv("agent");
  argv.insert(argv.end(), {"/usr/bin/python3", "-c",
                           absl::StrCat("import socket, time\n"
                                        "s = socket.create_connection(('127.0.0.61', ", port_, "))\n"
                                        "s.sendall(b'GET /chunked/stall HTTP/1.1\\r\\nHost: crm\\r\\n\\r\\n')\n"
                                        "got = b''\n"
                                        "while b'metho' not in got: got += s.recv(4096)\n"
                                        "print('first chunk', flush=True)\n"
                                        "time.sleep(60)\n")});
  agent = Spawn(argv, out2);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(out2).value_or(""), "first chunk"); }))
      << ReadFile(out2).value_or("") << h->DaemonLog();
  std::string stalled;
  ASSERT_TRUE(WaitFor([&] { return h->Status().active_sessions() == 1; }));
  EXPECT_TRUE(WaitFor([&] {
    for (const auto& e : std::filesystem::directory_iterator(absl::StrCat(h->state_dir(), "/recordings"))) {
      if (e.path().string() == path || e.path().extension() != ".rec") continue;
      auto rec = record::ReadRecordingFile(e.path().string());
      if (!rec.ok()) continue;
      stalled.clear();
      for (const v1::Record& r : rec->records) {
        if (r.has_data() && r.data().direction() == v1::DIRECTION_TO_AGENT) stalled += r.data().payload();
      }
      if (absl::StrContains(stalled, "metho")) return true;
    }
    return false;
  })) << "to the agent so far: " << stalled;
}

TEST_F(HttpTest, SmugglingAndHostGamesAreRefusedNotNormalised) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  // Raw bytes through the redirect (curl would not send these): CL.TE, duplicate CL,
  // obs-fold, a bare LF, an absolute-form target naming another host than Host.
  struct Case {
    const char* name;
    std::string bytes;
  };
  const std::string host = absl::StrCat("Host: 127.0.0.61:", port_, "\r\n");
  for (const Case& c : {
           Case{"cl-te", absl::StrCat("POST /v1/notes HTTP/1.1\r\n", host,
                                      "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")},
           Case{"dup-cl", absl::StrCat("POST /v1/notes HTTP/1.1\r\n", host,
                                       "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab")},
           Case{"obs-fold", absl::StrCat("GET /v1/customers/1 HTTP/1.1\r\n", host, "X-A: 1\r\n  folded\r\n\r\n")},
           Case{"bare-lf", absl::StrCat("GET /v1/customers/1 HTTP/1.1\n", host, "\r\n")},
           Case{"absolute-other-host", absl::StrCat("GET http://evil.internal/admin/users HTTP/1.1\r\n", host, "\r\n")},
       }) {
    const std::string req_file = absl::StrCat(dir_, "/", c.name, ".req");
    ASSERT_TRUE(WriteFileAtomic(req_file, c.bytes, 0644).ok());
    MakeReadableByAgent(req_file);
    CommandResult r = h->RunAgent("agent", {"/bin/sh", "-c",
                                            absl::StrCat("/usr/bin/curl -sS --max-time 10 telnet://127.0.0.61:",
                                                         port_, " < ", req_file, " || true")});
    EXPECT_THAT(r.out, ::testing::AnyOf(HasSubstr("HTTP/1.1 400"), HasSubstr("HTTP/1.1 421"))) << c.name << "\n"
                                                                                                 << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr("\"method\""))) << c.name;  // nothing reached the upstream
  }
}

TEST_F(HttpTest, DeleteIsHeldUntilAnotherIdentityApproves) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string out = absl::StrCat(dir_, "/held.out");
  pid_t agent = SpawnCurl(*h, out, {"-X", "DELETE", Url("/v1/customers/9")});
  ASSERT_GT(agent, 0);
  std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  auto pending = h->Approvals();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].protocol(), "http");
  EXPECT_THAT(pending[0].statement(), HasSubstr("DELETE /v1/customers/9"));
  EXPECT_EQ(pending[0].rule_id(), "review-deletes");
  // Nothing reached the upstream yet (curl still waits for its answer); the approval
  // releases it.
  auto before = ReadFile(out);
  EXPECT_THAT(before.value_or(""), Not(HasSubstr("\"method\"")));
  CommandResult approve = h->Cli({"approve", id, "--reason", "ticket 42"});
  ASSERT_EQ(approve.exit_code, 0) << approve.out;
  EXPECT_EQ(WaitProcess(agent, 30), 0);
  auto read = ReadFile(out);
  ASSERT_TRUE(read.ok());
  const std::string& got = *read;
  EXPECT_THAT(got, HasSubstr("\"method\": \"DELETE\""));
  EXPECT_THAT(got, HasSubstr("200"));
}

// `interlock report` says what the audit trail says: its numbers are recomputed here from
// the events themselves, a hold shows its approver and reason, every recording verifies.
// The evidence report's HTML as a person sees it: headless chromium loads it (no network,
// the report's own CSP), prints it to PDF, and pdftotext reads back the visible text; the
// DOM chromium built is dumped too, to count the charts' bars.
struct BrowserView {
  std::string visible_text;  // whitespace collapsed
  std::string compact_text;  // no whitespace at all: a cell's text wrapped over lines reads whole
  std::string dom;
  int bars = 0;           // <rect> elements in the DOM
  int timeline_bars = 0;  // of which in the decisions-over-time chart
  std::string error;
};

BrowserView RenderInBrowser(const std::string& html_path, const std::string& work_dir) {
  BrowserView v;
  const std::string profile = absl::StrCat(work_dir, "/chromium-profile");
  const std::string pdf = absl::StrCat(work_dir, "/report.pdf");
  std::vector<std::string> base = {"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--no-first-run", "--disable-extensions", "--user-data-dir=" + profile};
  std::vector<std::string> print = base;
  print.insert(print.end(), {"--no-pdf-header-footer", "--print-to-pdf=" + pdf, "file://" + html_path});
  CommandResult printed = RunCommand(print, 120);
  if (printed.exit_code != 0) {
    v.error = absl::StrCat("chromium --print-to-pdf: ", printed.exit_code, " ", printed.err);
    return v;
  }
  CommandResult text = RunCommand({"/usr/bin/pdftotext", "-raw", pdf, "-"}, 60);
  if (text.exit_code != 0) {
    v.error = absl::StrCat("pdftotext: ", text.err);
    return v;
  }
  for (absl::string_view word : absl::StrSplit(text.out, absl::ByAnyChar(" \n\t\f"), absl::SkipEmpty())) {
    absl::StrAppend(&v.visible_text, v.visible_text.empty() ? "" : " ", word);
    absl::StrAppend(&v.compact_text, word);
  }
  std::vector<std::string> dump = base;
  dump.insert(dump.end(), {"--dump-dom", "file://" + html_path});
  CommandResult dom = RunCommand(dump, 120);
  v.dom = dom.out;
  size_t timeline = v.dom.find("class=\"timeline\"");
  for (size_t at = v.dom.find("<rect"); at != std::string::npos; at = v.dom.find("<rect", at + 1)) {
    ++v.bars;
    if (timeline != std::string::npos && at > timeline) ++v.timeline_bars;
  }
  return v;
}

TEST_F(HttpTest, EvidenceReportMatchesTheAuditTrail) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  for (const char* path : {"/v1/customers/1", "/v1/customers/2", "/admin/x", "/v1/orders"}) {
    CommandResult r = Curl(*h, {Url(path)});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  const std::string out = absl::StrCat(dir_, "/held.out");
  pid_t agent = Spawn([&] {
    std::vector<std::string> argv = h->RunArgv("agent");
    for (const char* a : {"/usr/bin/curl", "-sS", "--max-time", "60", "-X", "DELETE"}) argv.push_back(a);
    argv.push_back(Url("/v1/customers/9"));
    return argv;
  }(), out);
  ASSERT_GT(agent, 0);
  std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  ASSERT_EQ(h->Cli({"approve", id, "--reason", "ticket 42"}).exit_code, 0);
  EXPECT_EQ(WaitProcess(agent, 30), 0);
  ASSERT_TRUE(WaitFor([&] { return HttpEvents(*h).size() == 5; }, 10));

  uint64_t allowed = 0, denied = 0, approved = 0;
  for (const v1::AuditEvent& e : HttpEvents(*h)) {
    if (e.http().answered_by() != "upstream") ++denied;
    else if (e.decision().source() == "approved") ++approved;
    else ++allowed;
  }
  EXPECT_EQ(allowed, 2u);
  EXPECT_EQ(denied, 2u);
  EXPECT_EQ(approved, 1u);
  // Every session has ended (and said so in the audit log) before the reports are made:
  // each report below must count the same events.
  ASSERT_TRUE(WaitFor([&] {
    const auto events = h->AuditEvents();
    return OfKind(events, v1::AUDIT_KIND_SESSION_END).size() ==
           OfKind(events, v1::AUDIT_KIND_SESSION_START).size();
  })) << h->DaemonLog();
  CommandResult json = h->Cli({"report", "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  v1::EvidenceReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &report).ok()) << json.out;
  std::map<std::string, uint64_t> by_decision;
  for (const auto& d : report.decisions()) {
    EXPECT_EQ(d.workload(), "agent");
    EXPECT_EQ(d.resource(), "crm");
    by_decision[d.decision()] += d.count();
  }
  EXPECT_EQ(by_decision["allowed"], allowed);
  EXPECT_EQ(by_decision["denied"], denied);
  EXPECT_EQ(by_decision["approved"], approved);
  ASSERT_EQ(report.holds_size(), 1);
  EXPECT_EQ(report.holds(0).id(), id);
  EXPECT_EQ(report.holds(0).state(), "approved");
  EXPECT_EQ(report.holds(0).decision_reason(), "ticket 42");
  EXPECT_THAT(report.holds(0).approver(), HasSubstr("uid 0"));
  EXPECT_THAT(report.holds(0).operation(), HasSubstr("DELETE"));
  uint64_t sessions = 0;
  for (const v1::AuditEvent& e : h->AuditEvents()) sessions += e.kind() == v1::AUDIT_KIND_SESSION_START;
  ASSERT_EQ(report.recordings_size(), static_cast<int>(sessions));
  for (const auto& r : report.recordings()) EXPECT_EQ(r.verdict(), "valid") << r.session_id() << " " << r.detail();
  // A period that holds nothing, and the other formats.
  CommandResult empty = h->Cli({"report", "--format", "json", "--to", "2000-01-01"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_THAT(empty.out, Not(HasSubstr("\"decisions\"")));
  CommandResult md = h->Cli({"report"});
  EXPECT_THAT(md.out, HasSubstr("## Holds"));
  EXPECT_THAT(md.out, HasSubstr("ticket 42"));
  CommandResult html = h->Cli({"report", "--format", "html", "--out", absl::StrCat(dir_, "/r.html")});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_THAT(ReadFile(absl::StrCat(dir_, "/r.html")).value_or(""), HasSubstr("<svg class=workloads"));
  // As a browser shows it (headless chromium): the numbers are on the page, and the
  // charts have a bar per decision with its count.
  BrowserView page = RenderInBrowser(absl::StrCat(dir_, "/r.html"), dir_);
  ASSERT_FALSE(page.visible_text.empty()) << page.error;
  EXPECT_THAT(page.visible_text, HasSubstr("Interlock evidence report"));
  EXPECT_THAT(page.visible_text, HasSubstr(absl::StrCat("Audit events in the period: ", report.events_in_period())));
  // Every column of every table is on the page (long cells wrap inside it, anywhere).
  EXPECT_THAT(page.compact_text, HasSubstr(id));
  EXPECT_THAT(page.compact_text, HasSubstr("ticket42"));
  EXPECT_THAT(page.compact_text, HasSubstr("root(uid0"));
  for (const auto& r : report.recordings()) EXPECT_THAT(page.compact_text, HasSubstr(r.session_id()));
  EXPECT_THAT(page.visible_text, HasSubstr(absl::StrCat("agent ", allowed + denied + approved)))
      << "the per-workload chart shows the workload's total next to its name";
  for (const auto& [decision, n] : by_decision) {
    EXPECT_THAT(page.dom, HasSubstr(absl::StrCat("<title>", decision, ": ", n, "</title>"))) << decision;
  }
  EXPECT_EQ(page.bars, static_cast<int>(by_decision.size()) + page.timeline_bars)
      << "one bar per decision kind in the workload chart, the rest in the timeline";
  EXPECT_GT(page.timeline_bars, 0);
  // A recording removed after the fact: the report says so, and exits 4.
  std::filesystem::remove(absl::StrCat(h->state_dir(), "/recordings/", report.recordings(0).session_id(), ".rec"));
  EXPECT_EQ(h->Cli({"report"}).exit_code, 4);
}

TEST_F(HttpTest, HeldRequestsDenyTimeOutOrAreWithdrawnAndNeverBlockOtherSessions) {
  // A short review timeout for this test's rule.
  ASSERT_TRUE(WriteFileAtomic(policy_file_, absl::StrCat(kPolicy, R"YAML(
  - id: review-quick
    match: {resources: [crm], http: {methods: [PUT], paths: ["/v1/customers/*"]}}
    action: ACTION_REVIEW
    review_timeout_s: 2
)YAML"), 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  // Denied by an approver: 403 naming the denial; nothing reached the upstream.
  const std::string denied_out = absl::StrCat(dir_, "/denied.out");
  pid_t denied = SpawnCurl(*h, denied_out, {"-X", "DELETE", Url("/v1/customers/1")});
  std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  // While it is held, another session of the same agent is served.
  CommandResult other = Curl(*h, {Url("/v1/customers/2")});
  EXPECT_EQ(StatusOf(other), "200") << other.out;
  ASSERT_EQ(h->Cli({"deny", id, "--reason", "not today"}).exit_code, 0);
  EXPECT_EQ(WaitProcess(denied, 30), 0);
  auto got = ReadFile(denied_out);
  EXPECT_THAT(got.value_or(""), HasSubstr("not today"));
  EXPECT_THAT(got.value_or(""), HasSubstr("403"));
  EXPECT_THAT(got.value_or(""), Not(HasSubstr("\"method\"")));
  // Nobody decides: 403 after the rule's timeout.
  CommandResult timed_out = Curl(*h, {"-X", "PUT", "--data", "x=1", Url("/v1/customers/3")});
  EXPECT_EQ(StatusOf(timed_out), "403") << timed_out.out;
  EXPECT_THAT(timed_out.out, HasSubstr("review_timeout"));
  // The agent gives up while held: the request is withdrawn (expired), never approvable.
  const std::string gone_out = absl::StrCat(dir_, "/gone.out");
  pid_t gone = SpawnCurl(*h, gone_out, {"-X", "DELETE", Url("/v1/customers/4")});
  std::string gone_id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(gone_id.empty());
  // The agent (curl, the child `interlock run` started) is killed, then `interlock run`.
  auto children = ReadFile(absl::StrCat("/proc/", gone, "/task/", gone, "/children"));
  ASSERT_TRUE(children.ok());
  for (absl::string_view c : absl::StrSplit(*children, ' ', absl::SkipWhitespace())) {
    int child = 0;
    if (absl::SimpleAtoi(c, &child) && child > 0) ::kill(child, SIGKILL);
  }
  KillProcess(gone);
  EXPECT_TRUE(WaitFor([&] {
    for (const v1::ApprovalRequest& a : h->Approvals(/*all=*/true)) {
      if (a.id() == gone_id) return a.state() == v1::APPROVAL_STATE_EXPIRED;
    }
    return false;
  }, 20)) << h->DaemonLog();
  EXPECT_NE(h->Cli({"approve", gone_id, "--reason", "late"}).exit_code, 0);
}

// interlockd stops (SIGTERM, or the old process of an upgrade) while a request is held:
// once drain_ms has passed the agent is answered 503 saying its request was never sent, and
// the approval is withdrawn — not reset, which an agent cannot tell from a network fault
// (and might answer by sending the request again elsewhere).
TEST_F(HttpTest, AHeldRequestIsAnswered503NotSentWhenInterlockdStops) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string out = absl::StrCat(dir_, "/stopped.out");
  pid_t agent = SpawnCurl(*h, out, {"-X", "DELETE", Url("/v1/customers/9")});
  ASSERT_GT(agent, 0);
  const std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  ASSERT_EQ(h->Stop(), 0) << h->DaemonLog();
  EXPECT_EQ(WaitProcess(agent, 30), 0);
  auto got = ReadFile(out);
  EXPECT_THAT(got.value_or(""), HasSubstr("interlockd is stopping; the request was not sent upstream"));
  EXPECT_THAT(got.value_or(""), HasSubstr("\n503"));
  EXPECT_THAT(got.value_or(""), Not(HasSubstr("\"method\""))) << "the upstream answered: it got the request";
  bool withdrawn = false;
  for (const v1::AuditEvent& e : HttpEvents(*h)) {
    if (e.http().method() != "DELETE") continue;
    withdrawn = true;
    EXPECT_EQ(e.outcome(), "withdrawn");
    EXPECT_EQ(e.decision().source(), "withdrawn_by_shutdown");
    EXPECT_EQ(e.http().status(), 503);
    EXPECT_FALSE(e.http().forwarded());
  }
  EXPECT_TRUE(withdrawn) << h->DaemonLog();
  // Started again, nobody can approve what was withdrawn.
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  bool expired = false;
  for (const v1::ApprovalRequest& a : h->Approvals(/*all=*/true)) {
    if (a.id() == id) expired = a.state() == v1::APPROVAL_STATE_EXPIRED;
  }
  EXPECT_TRUE(expired);
  EXPECT_NE(h->Cli({"approve", id, "--reason", "late"}).exit_code, 0);
}

TEST_F(HttpTest, AHeldChunkedUploadIsReleasedWholeAsTheApproverSawIt) {
  ASSERT_TRUE(WriteFileAtomic(policy_file_, absl::StrCat(kPolicy, R"YAML(
  - id: review-imports
    match: {resources: [crm], http: {methods: [POST], paths: ["/v1/imports"]}}
    action: ACTION_REVIEW
)YAML"), 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string out = absl::StrCat(dir_, "/import.out");
  std::vector<std::string> argv = h->RunArgv("agent");
  for (const char* a : {"/usr/bin/curl", "-sS", "--max-time", "60", "-H", "Transfer-Encoding: chunked",
                        "--data-binary", "name=Ada&ssn=078-05-1120"}) {
    argv.push_back(a);
  }
  argv.push_back(Url("/v1/imports"));
  pid_t agent = Spawn(argv, out);
  std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  auto pending = h->Approvals();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_THAT(pending[0].statement(), HasSubstr("name=Ada&ssn=078-05-1120"));  // the approver sees the body
  ASSERT_EQ(h->Cli({"approve", id, "--reason", "ok"}).exit_code, 0);
  EXPECT_EQ(WaitProcess(agent, 30), 0);
  auto got = ReadFile(out);
  // Re-framed once, with a Content-Length: the upstream gets the body whole.
  EXPECT_THAT(got.value_or(""), HasSubstr("\"body\": \"name=Ada&ssn=078-05-1120\""));
  EXPECT_THAT(got.value_or(""), HasSubstr("\"content-length\": \"24\""));
  EXPECT_THAT(got.value_or(""), Not(HasSubstr("transfer-encoding")));
}

TEST_F(HttpTest, BodyFieldsAreJudgedAndABodyThatCannotBeReadFailsClosed) {
  ASSERT_TRUE(WriteFileAtomic(policy_file_, absl::StrCat(kPolicy, R"YAML(
  - id: deny-big-transfers
    match: {resources: [crm], http: {methods: [POST], paths: ["/v1/transfers"], json: {"/amount": "??????*"}}}
    action: ACTION_DENY
    reason: transfers of a million or more need a human
  - id: allow-transfers
    match: {resources: [crm], http: {methods: [POST], paths: ["/v1/transfers"]}}
    action: ACTION_ALLOW
)YAML"), 0644).ok());
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  auto post = [&](const std::string& body, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"-H", "Content-Type: application/json", "--data-binary", body};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(Url("/v1/transfers"));
    return Curl(*h, args);
  };
  CommandResult small = post(R"({"amount": 25, "to": "DE89370400440532013000"})");
  EXPECT_EQ(StatusOf(small), "200") << small.out;
  EXPECT_THAT(small.out, HasSubstr(R"(\"amount\": 25)"));  // forwarded byte for byte
  CommandResult big = post(R"({"to": "x", "amount": 1500000})");
  EXPECT_EQ(StatusOf(big), "403") << big.out;
  EXPECT_THAT(big.out, HasSubstr("deny-big-transfers"));
  // Chunked, the same: judged on the whole body.
  CommandResult chunked = post(R"({"amount": 2000000})", {"-H", "Transfer-Encoding: chunked"});
  EXPECT_EQ(StatusOf(chunked), "403") << chunked.out;
  // Two parsers could read a duplicate key either way, and a body that is not JSON says
  // nothing: the deny rule holds for both.
  CommandResult dup = post(R"({"amount": 5, "amount": 5000000})");
  EXPECT_EQ(StatusOf(dup), "403") << dup.out;
  CommandResult garbage = post("amount=5000000");
  EXPECT_EQ(StatusOf(garbage), "403") << garbage.out;
  // An upstream in Go (encoding/json), or .NET or Jackson configured so, reads a member
  // whatever its case — and Go folds "ſ" to "s" and "K" (Kelvin) to "k" too: the rule
  // judges those spellings as the member they name, and two that fold together are a
  // duplicate.
  for (const char* spelled : {R"({"AMOUNT": 5000000})", R"({"Amount": 5000000, "to": "x"})",
                              "{\"amount\": 5, \"Amount\": 5000000}", "{\"\u0041mount\": 5000000}"}) {
    CommandResult r = post(spelled);
    EXPECT_EQ(StatusOf(r), "403") << spelled << r.out;
  }
}

TEST_F(HttpTest, RealClientsRequestsHttpxAndNodeFetch) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string url = Url("/v1/customers/5");
  // requests and httpx: a keep-alive session with an allowed and a denied request.
  const std::string py = absl::StrCat(
      "import sys, requests, httpx\n"
      "s = requests.Session()\n"
      "a = s.get('", url, "'); b = s.get('", Url("/admin/x"), "')\n"
      "c = httpx.Client().get('", url, "')\n"
      "print(a.status_code, b.status_code, b.headers['content-type'], c.status_code, a.json()['path'])\n");
  CommandResult r = h->RunAgent("agent", {"/usr/bin/python3", "-c", py});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("200 403 application/problem+json 200 /v1/customers/5"));
  // Node's built-in fetch (undici).
  CommandResult n = h->RunAgent(
      "agent", {"/usr/bin/node", "-e",
                absl::StrCat("fetch('", url, "').then(async r => console.log(r.status, (await r.json()).method))")});
  ASSERT_EQ(n.exit_code, 0) << n.out << n.err;
  EXPECT_THAT(n.out, HasSubstr("200 GET"));
}

TEST_F(HttpTest, UpgradesAreRefusedAndBodilessAnswersStayBodiless) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult ws = Curl(*h, {"-H", "Connection: Upgrade", "-H", "Upgrade: websocket", Url("/v1/customers/1")});
  EXPECT_EQ(StatusOf(ws), "501") << ws.out;
  EXPECT_THAT(ws.out, HasSubstr("tunnel_refused"));
  // HEAD: the upstream's Content-Length is kept, no body follows, and the connection is
  // reused for the next request.
  CommandResult head = Curl(*h, {"-I", Url("/v1/customers/1"), "--next", Url("/v1/customers/2")});
  EXPECT_THAT(head.out, HasSubstr("Content-Length:")) << head.out;
  EXPECT_THAT(head.out, HasSubstr("\"path\": \"/v1/customers/2\""));
  // Expect: 100-continue: interlockd answers 100 itself once the request is allowed.
  CommandResult cont = Curl(*h, {"-H", "Expect: 100-continue", "--data-binary", std::string(2048, 'n'),
                                 Url("/v1/notes")});
  EXPECT_EQ(StatusOf(cont), "200") << cont.out;
  EXPECT_THAT(cont.out, HasSubstr(std::string(2048, 'n')));
}

// The smuggling guarantee, differentially: every malformed or unusual request stream of the
// codec's corpus (tests/fuzz/http/corpus: CL.TE, TE.CL, obfuscated and doubled
// Transfer-Encoding, obs-fold, bare LF, duplicate Content-Length, pipelines, absolute form,
// chunk extensions...) is sent to nginx through interlockd. Whatever nginx then receives
// must be exactly the requests interlockd judged and forwarded — the same number, methods
// and targets, in order: nothing reaches nginx that interlockd read differently (a request
// hidden in a body, a body taken for a request). The same bytes sent to nginx directly
// show what nginx alone would have made of them (printed, for the record).
TEST(HttpDifferentialTest, NginxReceivesExactlyTheRequestsInterlockdJudged) {
  auto nginx = NginxServer::Start({.address = "127.0.0.63", .files = {{"/a", "a"}, {"/b", "b"}, {"/c", "c"}}});
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  const std::string dir = MakeTempDir("interlock-httpdiff-");
  InterlockdHarness h({.resources = {{"web", "127.0.0.63", (*nginx)->port(), "    protocol: PROTOCOL_HTTP\n"}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  std::vector<std::pair<std::string, std::string>> cases;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(INTERLOCK_HTTP_CORPUS)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (!absl::StartsWith(name, "req_") && !absl::StartsWith(name, "smuggle_")) continue;
    auto bytes = ReadFile(absl::StrCat(INTERLOCK_HTTP_CORPUS, "/", name));
    ASSERT_TRUE(bytes.ok());
    cases.emplace_back(name, *bytes);
  }
  cases.emplace_back("pipelined_get_body_get", "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\n"
                                               "GET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  cases.emplace_back("chunked_hides_request", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                              "1e\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n");
  cases.emplace_back("te_chunked_comma", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                                         "0\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_GE(cases.size(), 15u);
  auto nginx_requests = [&]() {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit((*nginx)->AccessLog(), '\n', absl::SkipEmpty())) {
      size_t q = line.find('"');
      if (q == absl::string_view::npos) continue;
      std::vector<absl::string_view> parts = absl::StrSplit(line.substr(q + 1), ' ');
      // As the audit trail shows targets: secret query values elided.
      if (parts.size() >= 2) out.push_back(absl::StrCat(parts[0], " ", codec::http::ElideQueryParams(parts[1])));
    }
    return out;
  };
  // nginx logs a request when it frees it, which for a closed connection can be after its
  // lingering close, i.e. after the client already returned; interlockd audits an exchange
  // when it ends. Counts are read once they have held still for 300 ms (at most 5 s): a
  // request nginx got that interlockd did not judge stays in the log, so waiting hides none.
  auto settled = [](const std::function<size_t()>& count) {
    size_t last = count();
    int still = 0;
    for (int i = 0; i < 50 && still < 3; ++i) {
      ::usleep(100 * 1000);
      const size_t now = count();
      still = now == last ? still + 1 : 0;
      last = now;
    }
    return last;
  };
  size_t seen_events = 0;
  for (const auto& [name, bytes] : cases) {
    const std::string file = absl::StrCat(dir, "/", name);
    ASSERT_TRUE(WriteFileAtomic(file, bytes, 0644).ok());
    MakeReadableByAgent(file);
    const std::string send = absl::StrCat("/usr/bin/curl -sS --max-time 3 telnet://127.0.0.63:", (*nginx)->port(),
                                          " < ", file, " || true");
    // nginx alone, for the record.
    const size_t before_direct = nginx_requests().size();
    CommandResult direct = RunCommand({"/bin/sh", "-c", send}, 30);
    const size_t after_direct = settled([&] { return nginx_requests().size(); });
    // Through interlockd.
    CommandResult through = h.RunAgent("agent", {"/bin/sh", "-c", send});
    settled([&] { return nginx_requests().size() + h.AuditEvents().size(); });
    std::vector<std::string> got = nginx_requests();
    std::vector<std::string> received(got.begin() + after_direct, got.end());
    std::vector<std::string> judged;
    std::vector<v1::AuditEvent> events = h.AuditEvents();
    for (size_t i = seen_events; i < events.size(); ++i) {
      const v1::AuditEvent& e = events[i];
      if (e.kind() == v1::AUDIT_KIND_HTTP_REQUEST && e.http().forwarded()) {
        judged.push_back(absl::StrCat(e.http().method(), " ", e.http().target()));
      }
    }
    seen_events = events.size();
    EXPECT_EQ(received, judged) << name << ": nginx received what interlockd did not judge\n"
                                << "through interlockd, the agent saw:\n" << through.out;
    std::cout << "[differential] " << name << ": nginx directly logged " << after_direct - before_direct
              << " request(s); through interlockd " << judged.size() << " judged and forwarded, "
              << (absl::StrContains(through.out, "HTTP/1.1 4") || absl::StrContains(through.out, "HTTP/1.1 5")
                      ? "then refused"
                      : "no refusal")
              << "\n";
  }
  RemoveTree(dir);
}

// HTTPS: nginx with a certificate from a test CA as the upstream; the agent's curl trusts
// the interception CA only because `interlock run` points CURL_CA_BUNDLE at its bundle.
class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // `interlock run` leaves trust settings the caller made alone: make none (this
    // machine's environment may set them for its own tools).
    for (const char* v : {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"}) {
      if (const char* old = ::getenv(v)) saved_env_.emplace_back(v, old);
      ::unsetenv(v);
    }
    dir_ = MakeTempDir("interlock-https-");
    auto nginx = NginxServer::Start({.address = "127.0.0.62",
                                     .tls = true,
                                     .server_name = "api.test",
                                     .files = {{"/v1/customers/1", R"({"id":1,"name":"Ada"})"}},
                                     .locations = {EchoLocation("/echo")}});
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
    secret_file_ = absl::StrCat(dir_, "/api.token");
    ASSERT_TRUE(WriteFileAtomic(secret_file_, "tls-upstream-token\n", 0600).ok());
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
    ASSERT_TRUE(WriteFileAtomic(policy_file_, R"YAML(
resources:
  - {resource: api, default_action: ACTION_DENY}
rules:
  - {id: reads, match: {http: {methods: [GET], paths: ["/echo", "/v1/**"]}}, action: ACTION_ALLOW}
)YAML", 0644).ok());
  }
  void TearDown() override {
    nginx_.reset();
    RemoveTree(dir_);
    for (const auto& [name, value] : saved_env_) ::setenv(name.c_str(), value.c_str(), 1);
    // `interlock run` copied this test's CA to /run/interlock/trust/<fingerprint>/ for the
    // agent: the harness removes that directory, and only that one (another test running
    // beside this one has its own there).
  }

  // `verify_with_test_ca`: the resource trusts the nginx test CA (else the system store,
  // which does not know it).
  std::unique_ptr<InterlockdHarness> Daemon(bool verify_with_test_ca = true) {
    std::string yaml = absl::StrCat("    protocol: PROTOCOL_HTTPS\n    http:\n      credential: {bearer_ref: \"file:",
                                    secret_file_, "\"}\n");
    if (verify_with_test_ca) absl::StrAppend(&yaml, "      upstream_ca_file: ", nginx_->ca_file(), "\n");
    auto h = std::make_unique<InterlockdHarness>(HarnessOptions{
        .resources = {{"api", "127.0.0.62", nginx_->port(), yaml}},
        .extra_yaml = absl::StrCat("policy_file: ", policy_file_, "\n")});
    CommandResult ca = h->Cli({"ca", "init"});
    EXPECT_EQ(ca.exit_code, 0) << ca.out << ca.err;
    return h;
  }

  CommandResult Curl(InterlockdHarness& h, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}",
                                     "--resolve", nginx_->CurlResolve()};
    argv.insert(argv.end(), args.begin(), args.end());
    return h.RunAgent("agent", argv);
  }

  std::string dir_, secret_file_, policy_file_;
  std::unique_ptr<NginxServer> nginx_;
  std::vector<std::pair<std::string, std::string>> saved_env_;
};

// A 1 GiB download streams through with bounded memory, and pipelined requests are
// answered in order.
TEST(HttpStreamTest, AGibibyteStreamsThroughInBoundedMemoryAndPipelinesAreAnsweredInOrder) {
  const std::string dir = MakeTempDir("interlock-httpbig-");
  const std::string big = absl::StrCat(dir, "/big.bin");
  {
    int fd = ::open(big.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, int64_t{1} << 30), 0);  // sparse: 1 GiB of zeros, no disk
    ::close(fd);
  }
  auto nginx = NginxServer::Start({.address = "127.0.0.64",
                                   .files = {{"/a", "first"}, {"/b", "second"}},
                                   .locations = {{"= /big", absl::StrCat("alias ", big, ";")}}});
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  InterlockdHarness h({.resources = {{"web", "127.0.0.64", (*nginx)->port(), "    protocol: PROTOCOL_HTTP\n"}}});
  ASSERT_TRUE(h.Start().ok()) << h.DaemonLog();
  const int64_t before = ProcessMemoryKib(h.pid(), "VmRSS:");
  CommandResult r = h.RunAgent("agent", {"/usr/bin/curl", "-sS", "--max-time", "120", "-o", "/dev/null", "-w",
                                         "%{http_code} %{size_download}", absl::StrCat("http://127.0.0.64:", (*nginx)->port(), "/big")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "200 1073741824");
  const int64_t peak = ProcessMemoryKib(h.pid(), "VmHWM:");
  std::cout << "[stream] interlockd RSS before " << before << " KiB, peak " << peak << " KiB over a 1 GiB download\n";
  EXPECT_LT(peak - before, 64 * 1024) << "interlockd grew by more than 64 MiB relaying 1 GiB";
  // Two requests in one write: two answers, in order.
  // (First: an upstream that closes an idle keep-alive connection between two requests of
  // the agent's is reconnected to, not answered with a 502.)
  auto short_keepalive = NginxServer::Start({.address = "127.0.0.67", .files = {{"/a", "first"}},
                                             .extra_http = {"keepalive_timeout 1s;"}});
  ASSERT_TRUE(short_keepalive.ok()) << short_keepalive.status();
  {
    InterlockdHarness h2({.resources = {{"web2", "127.0.0.67", (*short_keepalive)->port(), "    protocol: PROTOCOL_HTTP\n"}}});
    ASSERT_TRUE(h2.Start().ok()) << h2.DaemonLog();
    const std::string url = absl::StrCat("http://127.0.0.67:", (*short_keepalive)->port(), "/a");
    CommandResult idle = h2.RunAgent(
        "agent", {"/usr/bin/python3", "-c",
                  absl::StrCat("import requests, time\ns = requests.Session()\na = s.get('", url,
                               "').status_code\ntime.sleep(2.5)\nb = s.get('", url, "').status_code\nprint(a, b)")});
    EXPECT_EQ(idle.out, "200 200\n") << idle.out << idle.err << h2.DaemonLog();
  }
  const std::string req = absl::StrCat(dir, "/pipelined.req");
  const std::string host = absl::StrCat("Host: 127.0.0.64:", (*nginx)->port(), "\r\n");
  ASSERT_TRUE(WriteFileAtomic(req, absl::StrCat("GET /a HTTP/1.1\r\n", host, "\r\nGET /b HTTP/1.1\r\n", host,
                                                "Connection: close\r\n\r\n"), 0644).ok());
  MakeReadableByAgent(req);
  CommandResult p = h.RunAgent("agent", {"/bin/sh", "-c", absl::StrCat("/usr/bin/curl -sS --max-time 10 telnet://127.0.0.64:",
                                                                       (*nginx)->port(), " < ", req, " || true")});
  size_t first = p.out.find("first"), second = p.out.find("second");
  EXPECT_NE(first, std::string::npos) << p.out;
  EXPECT_NE(second, std::string::npos) << p.out;
  EXPECT_LT(first, second) << p.out;
  RemoveTree(dir);
}

TEST_F(HttpsTest, AgentTlsIsTerminatedWithAMintedLeafAndTheUpstreamIsVerified) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {"-H", "Authorization: Bearer agent-guess", nginx_->Url("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << h->DaemonLog();
  EXPECT_THAT(r.out, HasSubstr("authorization Bearer tls-upstream-token"));
  EXPECT_THAT(r.out, HasSubstr("scheme https"));
  EXPECT_THAT(r.out, Not(HasSubstr("agent-guess")));
  CommandResult denied = Curl(*h, {nginx_->Url("/admin")});
  EXPECT_THAT(denied.out, HasSubstr("403"));
  bool saw = false;
  for (const v1::AuditEvent& e : h->AuditEvents()) {
    if (e.kind() != v1::AUDIT_KIND_HTTP_REQUEST) continue;
    EXPECT_EQ(e.http().scheme(), "https");
    EXPECT_EQ(e.http().host(), "api.test");
    saw = true;
  }
  EXPECT_TRUE(saw);
}

TEST_F(HttpsTest, SniThatDisagreesWithHostIsRefused) {
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {"-H", "Host: other.test", nginx_->Url("/echo")});
  EXPECT_THAT(r.out, HasSubstr("421")) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("host_mismatch"));
  EXPECT_THAT(r.out, Not(HasSubstr("method GET")));
}

TEST_F(HttpsTest, AnUpstreamThatFailsVerificationGetsTheAgentA502) {
  auto h = Daemon(/*verify_with_test_ca=*/false);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {nginx_->Url("/echo")});
  EXPECT_THAT(r.out, HasSubstr("502")) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("tls-upstream-token")));
  bool saw = false;
  for (const v1::AuditEvent& e : h->AuditEvents()) saw |= e.reason() == "upstream_tls";
  EXPECT_TRUE(saw) << h->DaemonLog();
}

TEST_F(HttpsTest, WithoutTheRunBundleTheAgentDoesNotTrustTheLeaf) {
  // The leaf is only as trusted as the interception CA: an agent pointed at the system
  // store alone refuses it (curl exit 60), so the CA is what the agent opts into.
  auto h = Daemon();
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {"--cacert", "/etc/ssl/certs/ca-certificates.crt", nginx_->Url("/echo")});
  EXPECT_EQ(r.exit_code, 60) << r.out << r.err;
}

}  // namespace
}  // namespace interlock::testing
