// NginxServer, the HTTP test fixture: it serves what the test gives it, plain and TLS, on
// IPv4 and IPv6 loopback, to real clients (curl, python3-requests, python3-httpx), verifies against
// its test CA and nothing else, and leaves no process and no files behind.
#include "tests/testing/nginx_server.h"

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kCustomers[] = R"({"customers":[{"id":1,"name":"Ada"}]})";

NginxOptions Options(bool tls, const std::string& address = "127.0.0.71") {
  return {.address = address,
          .tls = tls,
          .server_name = "api.interlock.test",
          .files = {{.path = "/v1/customers", .body = kCustomers}},
          .locations = {EchoLocation("/echo"), {"= /health", "return 204;"}}};
}

CommandResult Curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "10"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

// Fetches `url` with python3-requests; prints "<status> <content-type>\n<body>".
CommandResult PythonGet(const std::string& url, const std::string& verify) {
  const std::string script =
      "import sys, requests\n"
      "r = requests.get(sys.argv[1], verify=sys.argv[2] if sys.argv[2] else True, timeout=10)\n"
      "print(r.status_code, r.headers['content-type'])\n"
      "print(r.text)\n";
  return RunCommand({"/usr/bin/python3", "-c", script, url, verify});
}

TEST(NginxServer, ServesFilesAndLocationsOverPlainHttp) {
  auto nginx = NginxServer::Start(Options(false));
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  const NginxServer& n = **nginx;
  EXPECT_EQ(n.Url("/x"), absl::StrCat("http://127.0.0.71:", n.port(), "/x"));
  EXPECT_TRUE(n.ca_file().empty());

  CommandResult r = Curl({"-i", n.Url("/v1/customers")});
  ASSERT_EQ(r.exit_code, 0) << r.err << n.Log();
  EXPECT_THAT(r.out, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(r.out, HasSubstr("Content-Type: application/json"));
  EXPECT_THAT(r.out, HasSubstr(kCustomers));

  r = Curl({"-H", "Authorization: Bearer tok", "--data", "abc", n.Url("/echo?a=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("method POST\nuri /echo?a=1\nprotocol HTTP/1.1\n"));
  EXPECT_THAT(r.out, HasSubstr("scheme http\ncontent_length 3\nauthorization Bearer tok\n"));

  r = Curl({"-o", "/dev/null", "-w", "%{http_code}", n.Url("/health")});
  EXPECT_EQ(r.out, "204");
  r = Curl({"-o", "/dev/null", "-w", "%{http_code}", n.Url("/missing")});
  EXPECT_EQ(r.out, "404");

  r = PythonGet(n.Url("/v1/customers"), "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("200 application/json\n", kCustomers, "\n"));
  EXPECT_THAT(n.AccessLog(), HasSubstr("GET /v1/customers HTTP/1.1"));
}

TEST(NginxServer, ServesTlsWithACertificateFromItsTestCa) {
  auto nginx = NginxServer::Start(Options(true));
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  const NginxServer& n = **nginx;
  ASSERT_FALSE(n.ca_file().empty());
  EXPECT_EQ(n.Url("/x"), absl::StrCat("https://api.interlock.test:", n.port(), "/x"));

  CommandResult r = Curl({"--cacert", n.ca_file(), "--resolve", n.CurlResolve(), n.Url("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err << n.Log();
  EXPECT_THAT(r.out, HasSubstr("host api.interlock.test\nscheme https\n"));
  // The address is in the certificate too.
  r = Curl({"--cacert", n.ca_file(), n.UrlByAddress("/v1/customers")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kCustomers);
  // Without the test CA the certificate is not trusted: the client really verifies.
  r = Curl({"--resolve", n.CurlResolve(), n.Url("/echo")});
  EXPECT_EQ(r.exit_code, 60) << r.out << r.err;  // CURLE_PEER_FAILED_VERIFICATION

  std::vector<std::string> argv = {"/usr/bin/python3", "-c",
                                   "import sys, requests\n"
                                   "r = requests.get(sys.argv[1], verify=sys.argv[2], timeout=10)\n"
                                   "print(r.status_code, r.text)\n",
                                   n.UrlByAddress("/v1/customers"), n.ca_file()};
  r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("200 ", kCustomers, "\n"));
  r = RunCommand({"/usr/bin/python3", "-c",
                  "import sys, httpx\n"
                  "r = httpx.get(sys.argv[1], verify=sys.argv[2], timeout=10)\n"
                  "print(r.status_code, r.http_version, r.text)\n",
                  n.UrlByAddress("/v1/customers"), n.ca_file()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("200 HTTP/1.1 ", kCustomers, "\n"));
  r = PythonGet(n.UrlByAddress("/v1/customers"), "");  // the system store only
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("CERTIFICATE_VERIFY_FAILED"));
}

TEST(NginxServer, ListensOnIpv6LoopbackAndProxies) {
  auto backend = NginxServer::Start(Options(false, "::1"));
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->Url("/e"), absl::StrCat("http://[::1]:", (*backend)->port(), "/e"));
  auto front = NginxServer::Start({.address = "127.0.0.72",
                                   .tls = true,
                                   .server_name = "front.interlock.test",
                                   .proxy_pass = (*backend)->Url("")});
  ASSERT_TRUE(front.ok()) << front.status();
  CommandResult r = Curl({"--cacert", (*front)->ca_file(), "--resolve", (*front)->CurlResolve(),
                          (*front)->Url("/echo?via=front")});
  ASSERT_EQ(r.exit_code, 0) << r.err << (*front)->Log();
  // The backend saw the request nginx forwarded: plain HTTP/1.1 from the front.
  EXPECT_THAT(r.out, HasSubstr("uri /echo?via=front\nprotocol HTTP/1.1\n"));
  EXPECT_THAT(r.out, HasSubstr("scheme http\n"));
  EXPECT_THAT((*backend)->AccessLog(), HasSubstr("GET /echo?via=front"));
}

// An upstream block with keepalive in extra_http: the front reuses one backend connection
// (the backend logs its connection serial number, relative paths are in its temp dir).
TEST(NginxServer, ProxyReusesUpstreamConnectionsThroughAnUpstreamBlock) {
  NginxOptions b = Options(false);
  b.extra_http = {"log_format conn '$connection $request_uri';", "access_log conn.log conn;"};
  auto backend = NginxServer::Start(b);
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto front = NginxServer::Start(
      {.address = "127.0.0.72",
       .proxy_pass = "http://backend",
       .extra_http = {absl::StrCat("upstream backend { server 127.0.0.71:", (*backend)->port(),
                                   "; keepalive 8; }")}});
  ASSERT_TRUE(front.ok()) << front.status();
  CommandResult r = Curl({"-o", "/dev/null", (*front)->Url("/echo?n=1"), "-o", "/dev/null",
                          (*front)->Url("/echo?n=2")});
  ASSERT_EQ(r.exit_code, 0) << r.err << (*front)->Log();
  std::ifstream log(absl::StrCat((*backend)->dir(), "/conn.log"));
  std::string c1, u1, c2, u2;
  log >> c1 >> u1 >> c2 >> u2;
  EXPECT_EQ(u1, "/echo?n=1");
  EXPECT_EQ(u2, "/echo?n=2");
  EXPECT_EQ(c1, c2) << "a new upstream connection per request";
}

// The children of `pid` (/proc/PID/task/PID/children).
std::vector<pid_t> Children(pid_t pid) {
  std::vector<pid_t> out;
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  for (pid_t child; in >> child;) out.push_back(child);
  return out;
}

TEST(NginxServer, WorkersForBenchmarksExitWithTheMaster) {
  NginxOptions o = Options(false);
  o.worker_processes = 2;
  std::vector<pid_t> workers;
  {
    auto nginx = NginxServer::Start(o);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    CommandResult r = Curl({(*nginx)->Url("/v1/customers")});
    ASSERT_EQ(r.exit_code, 0) << r.err << (*nginx)->Log();
    EXPECT_EQ(r.out, kCustomers);
    workers = Children((*nginx)->pid());
    EXPECT_EQ(workers.size(), 2u);
  }
  for (pid_t w : workers) EXPECT_NE(::kill(w, 0), 0) << "worker " << w << " still running";
}

TEST(NginxServer, RefusesNonLoopbackAndCleansUp) {
  for (const char* address : {"0.0.0.0", "::", "10.0.0.1", "not-an-address"}) {
    auto nginx = NginxServer::Start({.address = address});
    EXPECT_EQ(nginx.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
  std::string dir;
  pid_t pid = -1;
  {
    auto nginx = NginxServer::Start(Options(true));
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    dir = (*nginx)->dir();
    pid = (*nginx)->pid();
    ASSERT_GT(pid, 0);
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_NE(::kill(pid, 0), 0) << "nginx " << pid << " still running";
  struct stat st;
  EXPECT_NE(::stat(dir.c_str(), &st), 0) << dir << " left behind";

  // A configuration nginx refuses: Start says why and leaves nothing running.
  auto bad = NginxServer::Start({.locations = {{"/x", "no_such_directive on;"}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("no_such_directive"));
}

}  // namespace
}  // namespace interlock::testing
