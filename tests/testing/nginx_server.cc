#include "tests/testing/nginx_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/testing/privileged.h"
#include "tests/testing/test_ca.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace interlock::testing {

namespace {

constexpr int kStartTimeoutS = 10;

bool IsV6(const std::string& address) { return absl::StrContains(address, ':'); }

// 127.0.0.0/8 or ::1: a test server must never be reachable from outside the host.
bool IsLoopback(const std::string& address) {
  if (IsV6(address)) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, address.c_str(), &a) == 1 && IN6_IS_ADDR_LOOPBACK(&a);
  }
  in_addr a{};
  return ::inet_pton(AF_INET, address.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::string HostPort(const std::string& host, uint16_t port) {
  return IsV6(host) ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

bool Accepts(const std::string& address, uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (IsV6(address)) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    ::inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd.get() >= 0 && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0;
}

}  // namespace

NginxLocation EchoLocation(const std::string& match) {
  return {match,
          "default_type text/plain;\n"
          "    return 200 \"method $request_method\\nuri $request_uri\\n"
          "protocol $server_protocol\\nhost $host\\nscheme $scheme\\n"
          "content_length $content_length\\nauthorization $http_authorization\\n\";"};
}

NginxServer::NginxServer(NginxOptions options, std::string dir)
    : options_(std::move(options)), dir_(std::move(dir)) {}

NginxServer::~NginxServer() {
  Stop();
  if (!dir_.empty()) RemoveTree(dir_);
}

absl::StatusOr<std::unique_ptr<NginxServer>> NginxServer::Start(NginxOptions options) {
  if (!IsLoopback(options.address)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nginx: address ", options.address, " is not loopback"));
  }
  if (::access(kNginxBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("nginx: no ", kNginxBinary, " (tools/setup.sh installs nginx)"));
  }
  if (options.port == 0) options.port = FreePort(options.address);
  std::string dir = MakeTempDir("interlock-nginx-");
  if (dir.empty()) return absl::InternalError("nginx: mkdtemp failed");
  std::unique_ptr<NginxServer> server(new NginxServer(std::move(options), std::move(dir)));
  INTERLOCK_RETURN_IF_ERROR(server->WriteConfig());
  INTERLOCK_RETURN_IF_ERROR(server->Launch());
  return server;
}

absl::Status NginxServer::WriteConfig() {
  for (const char* sub :
       {"/html", "/tmp", "/tmp/body", "/tmp/proxy", "/tmp/fastcgi", "/tmp/uwsgi", "/tmp/scgi"}) {
    INTERLOCK_RETURN_IF_ERROR(MakeDirs(absl::StrCat(dir_, sub), 0700));
  }
  std::vector<std::string> server = {
      absl::StrCat("listen ", HostPort(options_.address, options_.port), options_.tls ? " ssl" : "",
                   ";"),
      absl::StrCat("server_name ", options_.server_name, ";"),
      absl::StrCat("root ", dir_, "/html;")};
  if (options_.tls && !options_.cert_file.empty()) {
    cert_file_ = options_.cert_file;
    key_file_ = options_.key_file;
  } else if (options_.tls) {
    auto ca = TestCa::Create(dir_, "ca");
    if (!ca.ok()) return ca.status();
    auto leaf =
        (*ca)->Issue("server", {.dns_names = {options_.server_name}, .ips = {options_.address}});
    if (!leaf.ok()) return leaf.status();
    ca_file_ = (*ca)->cert_file();
    cert_file_ = leaf->cert_file;
    key_file_ = leaf->key_file;
  }
  if (options_.tls) {
    server.push_back(absl::StrCat("ssl_certificate ", cert_file_, ";"));
    server.push_back(absl::StrCat("ssl_certificate_key ", key_file_, ";"));
  }
  for (const NginxFile& f : options_.files) {
    if (!absl::StartsWith(f.path, "/") || absl::StrContains(f.path, "..")) {
      return absl::InvalidArgumentError(absl::StrCat("nginx: file path ", f.path));
    }
    const std::string file = absl::StrCat(dir_, "/html", f.path);
    INTERLOCK_RETURN_IF_ERROR(MakeDirs(file.substr(0, file.rfind('/')), 0700));
    INTERLOCK_RETURN_IF_ERROR(WriteFileAtomic(file, f.body, 0644));
    server.push_back(
        absl::StrCat("location = ", f.path, " { default_type ", f.content_type, "; }"));
  }
  for (const NginxLocation& l : options_.locations) {
    server.push_back(absl::StrCat("location ", l.match, " {\n    ", l.directives, "\n  }"));
  }
  if (!options_.proxy_pass.empty()) {
    std::string proxy = absl::StrCat("location / {\n    proxy_pass ", options_.proxy_pass,
                                     ";\n    proxy_http_version 1.1;\n"
                                     "    proxy_set_header Connection \"\";\n");
    if (!options_.proxy_ca_file.empty()) {
      absl::StrAppend(&proxy, "    proxy_ssl_verify on;\n    proxy_ssl_server_name on;\n",
                      "    proxy_ssl_trusted_certificate ", options_.proxy_ca_file, ";\n");
    }
    server.push_back(absl::StrCat(proxy, "  }"));
  }
  const std::string t = absl::StrCat(dir_, "/tmp");
  std::string conf =
      absl::StrCat("daemon off;\n",
                   options_.worker_processes > 0
                       ? absl::StrCat("master_process on;\nuser root;\nworker_processes ",
                                      options_.worker_processes, ";\n")
                       : "master_process off;\nworker_processes 1;\n",
                   "pid ", dir_, "/nginx.pid;\n", "error_log ", dir_, "/error.log info;\n",
                   "events { worker_connections 1024; }\n", "http {\n", "  access_log ", dir_,
                   "/access.log;\n", "  client_body_temp_path ", t, "/body;\n",
                   "  proxy_temp_path ", t, "/proxy;\n", "  fastcgi_temp_path ", t, "/fastcgi;\n",
                   "  uwsgi_temp_path ", t, "/uwsgi;\n", "  scgi_temp_path ", t, "/scgi;\n",
                   "  types { text/html html; application/json json; text/plain txt; }\n",
                   "  default_type application/octet-stream;\n", "  keepalive_requests 100000;\n");
  for (const std::string& line : options_.extra_http) absl::StrAppend(&conf, "  ", line, "\n");
  absl::StrAppend(&conf, "  server {\n    ", absl::StrJoin(server, "\n    "), "\n  }\n}\n");
  return WriteFileAtomic(absl::StrCat(dir_, "/nginx.conf"), conf, 0600);
}

absl::Status NginxServer::Launch() {
  // -e: errors before the configuration is read go here, not to /var/log/nginx.
  pid_ = Spawn({kNginxBinary, "-p", absl::StrCat(dir_, "/"), "-c",
                absl::StrCat(dir_, "/nginx.conf"), "-e", absl::StrCat(dir_, "/error.log")},
               absl::StrCat(dir_, "/nginx.out"));
  if (pid_ < 0) return absl::InternalError("nginx: fork failed");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStartTimeoutS);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("nginx exited during start-up:\n", Log()));
    }
    if (Accepts(options_.address, options_.port)) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Stop();
  return absl::DeadlineExceededError(absl::StrCat("nginx did not come up:\n", Log()));
}

void NginxServer::Stop() {
  if (pid_ <= 0) return;
  StopProcess(pid_);
  pid_ = -1;
}

std::string NginxServer::Url(const std::string& path) const {
  if (!options_.tls) return UrlByAddress(path);
  return absl::StrCat("https://", options_.server_name, ":", options_.port, path);
}

std::string NginxServer::UrlByAddress(const std::string& path) const {
  return absl::StrCat(options_.tls ? "https://" : "http://",
                      HostPort(options_.address, options_.port), path);
}

std::string NginxServer::CurlResolve() const {
  const std::string addr =
      IsV6(options_.address) ? absl::StrCat("[", options_.address, "]") : options_.address;
  return absl::StrCat(options_.server_name, ":", options_.port, ":", addr);
}

std::string NginxServer::Log() const {
  std::string out;
  for (const char* name : {"/nginx.out", "/error.log"}) {
    auto text = ReadFile(absl::StrCat(dir_, name));
    if (text.ok()) absl::StrAppend(&out, *text);
  }
  return out.empty() ? "(no nginx log)" : out;
}

std::string NginxServer::AccessLog() const {
  auto text = ReadFile(absl::StrCat(dir_, "/access.log"));
  return text.ok() ? *text : "";
}

}  // namespace interlock::testing
