#include "userspace/net/blocking_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/net/openssl_util.h"

namespace interlock::net {
namespace {

std::string PeerName(const std::string& host, uint16_t port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

struct AddrInfoFree {
  void operator()(addrinfo* a) const { ::freeaddrinfo(a); }
};

absl::StatusOr<std::unique_ptr<addrinfo, AddrInfoFree>> Resolve(const std::string& host,
                                                                uint16_t port, int socktype) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = absl::StrCat(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", ::gai_strerror(rc)));
  }
  return std::unique_ptr<addrinfo, AddrInfoFree>(res);
}

void SetTimeouts(int fd, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Nonblocking connect bounded by `timeout`, then back to blocking with SO_*TIMEO set.
absl::StatusOr<UniqueFd> ConnectOne(const addrinfo* a, absl::Duration timeout) {
  UniqueFd fd(
      ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
    if (errno != EINPROGRESS)
      return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(errno)));
    pollfd p{fd.get(), POLLOUT, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return absl::DeadlineExceededError("connect: timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (rc < 0 || err != 0) {
      return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(rc < 0 ? errno : err)));
    }
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  if (a->ai_socktype == SOCK_STREAM) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  SetTimeouts(fd.get(), timeout);
  return fd;
}

absl::Status IoError(const std::string& peer, absl::string_view what, int err) {
  if (err == EAGAIN || err == EWOULDBLOCK)
    return absl::DeadlineExceededError(absl::StrCat(peer, ": ", what, ": timed out"));
  return absl::UnavailableError(
      absl::StrCat(peer, ": ", what, ": ", err == 0 ? "connection closed" : std::strerror(err)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockingStream>> BlockingStream::Connect(
    const BlockingClientOptions& options) {
  const std::string peer = PeerName(options.host, options.port);
  auto addrs = Resolve(options.host, options.port, SOCK_STREAM);
  if (!addrs.ok())
    return absl::UnavailableError(absl::StrCat(peer, ": ", addrs.status().message()));
  absl::Status last = absl::UnavailableError("no address");
  for (const addrinfo* a = addrs->get(); a != nullptr; a = a->ai_next) {
    absl::StatusOr<UniqueFd> fd = ConnectOne(a, options.timeout);
    if (!fd.ok()) {
      last = fd.status();
      continue;
    }
    std::unique_ptr<BlockingStream> s(new BlockingStream(*std::move(fd), peer));
    if (options.tls) {
      if (absl::Status st = s->StartTls(options); !st.ok()) return st;
    }
    return s;
  }
  return absl::Status(last.code(), absl::StrCat(peer, ": ", last.message()));
}

absl::Status BlockingStream::StartTls(const BlockingClientOptions& options) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr)
    return absl::InternalError(absl::StrCat(peer_, ": tls: ", TakeOpensslReason()));
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_default_passwd_cb(ctx_, NoPassword);
  if (options.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat(peer_, ": tls: system trust store: ", TakeOpensslReason()));
    }
  } else if (SSL_CTX_load_verify_locations(ctx_, options.ca_file.c_str(), nullptr) != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(peer_, ": tls: ca_file ", options.ca_file, ": ", TakeOpensslReason()));
  }
  if (!options.client_cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, options.client_cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, options.client_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx_) != 1) {
      return absl::FailedPreconditionError(absl::StrCat(peer_, ": tls: client certificate ",
                                                        options.client_cert_file, ": ",
                                                        TakeOpensslReason()));
    }
  }
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr)
    return absl::InternalError(absl::StrCat(peer_, ": tls: ", TakeOpensslReason()));
  const std::string& name = options.server_name.empty() ? options.host : options.server_name;
  in6_addr ip6;
  in_addr ip4;
  const bool is_ip = ::inet_pton(AF_INET, name.c_str(), &ip4) == 1 ||
                     ::inet_pton(AF_INET6, name.c_str(), &ip6) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) {
      return absl::InternalError(absl::StrCat(peer_, ": tls: server name ", name));
    }
  } else {
    if (X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1 ||
        SSL_set_tlsext_host_name(ssl_, name.c_str()) != 1) {
      return absl::InternalError(absl::StrCat(peer_, ": tls: server name ", name));
    }
  }
  SSL_set_fd(ssl_, fd_.get());
  ERR_clear_error();
  if (int rc = SSL_connect(ssl_); rc != 1) {
    const int err = SSL_get_error(ssl_, rc);
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return absl::UnauthenticatedError(absl::StrCat(peer_, ": tls: server certificate (expected ",
                                                     name,
                                                     "): ", X509_verify_cert_error_string(verify)));
    }
    if (err == SSL_ERROR_SYSCALL) return IoError(peer_, "tls handshake", errno);
    return absl::UnavailableError(absl::StrCat(peer_, ": tls handshake: ", TakeOpensslReason()));
  }
  return absl::OkStatus();
}

BlockingStream::~BlockingStream() {
  if (ssl_ != nullptr) {
    // A best-effort close_notify; the socket has a send timeout, so this cannot hang.
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  ERR_clear_error();
}

absl::Status BlockingStream::WriteAll(absl::string_view data) {
  while (!data.empty()) {
    if (ssl_ != nullptr) {
      size_t written = 0;
      ERR_clear_error();
      if (SSL_write_ex(ssl_, data.data(), data.size(), &written) != 1) {
        const int err = SSL_get_error(ssl_, 0);
        if (err == SSL_ERROR_SYSCALL) return IoError(peer_, "write", errno);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
          return IoError(peer_, "write", EAGAIN);
        return absl::UnavailableError(absl::StrCat(peer_, ": tls write: ", TakeOpensslReason()));
      }
      data.remove_prefix(written);
    } else {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return IoError(peer_, "write", n < 0 ? errno : 0);
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> BlockingStream::Read(char* buf, size_t n) {
  while (true) {
    if (ssl_ != nullptr) {
      size_t got = 0;
      ERR_clear_error();
      if (SSL_read_ex(ssl_, buf, n, &got) == 1) return got;
      const int err = SSL_get_error(ssl_, 0);
      if (err == SSL_ERROR_ZERO_RETURN) return 0;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return IoError(peer_, "read", EAGAIN);
      if (err == SSL_ERROR_SYSCALL) {
        if (errno == 0) return 0;  // EOF without close_notify: treated as a close
        return IoError(peer_, "read", errno);
      }
      return absl::UnavailableError(absl::StrCat(peer_, ": tls read: ", TakeOpensslReason()));
    }
    ssize_t got = ::recv(fd_.get(), buf, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return IoError(peer_, "read", errno);
    return static_cast<size_t>(got);
  }
}

bool BlockingStream::PeerClosed() {
  pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLRDHUP)) return true;
  char c;
  ssize_t n = ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

absl::StatusOr<std::unique_ptr<DatagramClient>> DatagramClient::Connect(const std::string& host,
                                                                        uint16_t port) {
  const std::string peer = PeerName(host, port);
  auto addrs = Resolve(host, port, SOCK_DGRAM);
  if (!addrs.ok())
    return absl::UnavailableError(absl::StrCat(peer, ": ", addrs.status().message()));
  const addrinfo* a = addrs->get();
  UniqueFd fd(::socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, absl::StrCat(peer, ": socket"));
  if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
    return absl::UnavailableError(absl::StrCat(peer, ": connect: ", std::strerror(errno)));
  }
  SetTimeouts(fd.get(), absl::Seconds(5));
  return std::unique_ptr<DatagramClient>(new DatagramClient(std::move(fd), peer));
}

absl::Status DatagramClient::Send(absl::string_view datagram) {
  while (true) {
    ssize_t n = ::send(fd_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(peer_, "send", errno);
    return absl::OkStatus();
  }
}

}  // namespace interlock::net
