// NginxServer: a real, throwaway nginx for HTTP/HTTPS integration tests and benchmarks —
// Debian's /usr/sbin/nginx, one process (`daemon off; master_process off`, so it never
// changes user and its pid is the only one to stop; or a master and workers, for
// benchmarks), everything it writes (pid file, logs,
// client body and proxy temp dirs, document root, TLS files) in its own temp dir. It
// listens on one loopback address (127.0.0.0/8 or ::1; anything else is refused), plain
// or TLS with a certificate for `server_name` (and the address) issued by a test CA
// whose certificate clients get from ca_file(). Stopped by pid and removed in the
// destructor, also when the test failed half-way.
//
//   auto nginx = NginxServer::Start({.address = "127.0.0.70", .tls = true,
//                                    .server_name = "api.test",
//                                    .files = {{"/v1/customers", R"({"id":1})"}},
//                                    .locations = {EchoLocation("/echo")}});
//   ASSERT_TRUE(nginx.ok()) << nginx.status();
//   RunCommand({"/usr/bin/curl", "--cacert", (*nginx)->ca_file(), (*nginx)->Url("/echo")});
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace interlock::testing {

// A file under the document root, served at exactly `path` with `content_type`.
struct NginxFile {
  std::string path;  // URL path, "/v1/customers"
  std::string body;
  std::string content_type = "application/json";
};

// `location <match> { <directives> }`, verbatim ("= /health", "return 200 'ok';").
struct NginxLocation {
  std::string match;
  std::string directives;
};

// A location answering 200 text/plain with one line per request detail:
// "method GET", "uri /echo?a=1", "protocol HTTP/1.1", "host api.test", "body_length 0",
// "authorization Bearer x", "scheme https".
NginxLocation EchoLocation(const std::string& match);

struct NginxOptions {
  std::string address = "127.0.0.1";  // loopback only
  uint16_t port = 0;                  // 0: a free port
  bool tls = false;
  std::string server_name = "localhost";  // server_name, and the certificate's DNS SAN
  // With `tls`: serve this certificate and key (PEM files, read by nginx as root) instead
  // of a fresh one from a test CA; ca_file() is then empty.
  std::string cert_file;
  std::string key_file;
  std::vector<NginxFile> files;
  std::vector<NginxLocation> locations;
  // Non-empty: `location / { proxy_pass <url>; }`, HTTP/1.1 with no Connection header, for
  // nginx as a reverse proxy in front of something else. An https:// upstream is verified
  // against `proxy_ca_file` when given, else not verified. A URL naming a host opens a
  // connection per request; to reuse them (benchmarks), put `upstream NAME { server
  // HOST:PORT; keepalive 32; }` in extra_http and give "http://NAME".
  std::string proxy_pass;
  std::string proxy_ca_file;
  std::vector<std::string> extra_http;  // directives appended inside http {}
  // 0: one process (master_process off), the default. N: a master and N workers, for
  // benchmarks; the workers stay root (`user root`: everything is in a 0700 temp dir) and
  // exit with the master, which is the pid Stop() signals.
  int worker_processes = 0;
};

class NginxServer {
 public:
  // Writes the configuration, starts nginx and waits until it accepts connections (10 s).
  // INVALID_ARGUMENT for a non-loopback address; FAILED_PRECONDITION without
  // /usr/sbin/nginx (tools/setup.sh installs it); INTERNAL with nginx's log when it exits
  // or never listens.
  static absl::StatusOr<std::unique_ptr<NginxServer>> Start(NginxOptions options);
  ~NginxServer();
  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;

  // SIGTERM (fast shutdown) to its own pid, SIGKILL after 10 s. Idempotent.
  void Stop();

  // "http://127.0.0.1:PORT<path>", "https://<server_name>:PORT<path>" with TLS (give
  // curl `--resolve` or use UrlByAddress when the name does not resolve to the address).
  std::string Url(const std::string& path) const;
  std::string UrlByAddress(const std::string& path) const;
  // "--resolve server_name:port:address" for curl.
  std::string CurlResolve() const;

  const std::string& address() const { return options_.address; }
  uint16_t port() const { return options_.port; }
  const std::string& server_name() const { return options_.server_name; }
  const std::string& ca_file() const { return ca_file_; }  // empty without TLS
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }
  std::string Log() const;        // error log and nginx's own output
  std::string AccessLog() const;  // one line per request

 private:
  explicit NginxServer(NginxOptions options, std::string dir);
  absl::Status WriteConfig();
  absl::Status Launch();

  NginxOptions options_;
  std::string dir_;
  std::string ca_file_;
  std::string cert_file_;
  std::string key_file_;
  pid_t pid_ = -1;
};

inline constexpr char kNginxBinary[] = "/usr/sbin/nginx";

}  // namespace interlock::testing
