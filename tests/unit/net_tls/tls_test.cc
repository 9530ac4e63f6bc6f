// TLS client/server over real loopback sockets. The peer is a thread serving one
// connection with blocking I/O through TlsConnection's server side (or raw OpenSSL, for a
// TLS 1.1-only server); the client is driven non-blockingly with poll(), the way the
// proxy's event loop drives it. Certificates come from TestCa.
#include "userspace/net/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
#include "tests/testing/test_ca.h"
#include "userspace/common/unique_fd.h"

namespace interlock::net {
namespace {

using ::interlock::testing::IssuedCert;
using ::interlock::testing::LeafSpec;
using ::interlock::testing::TestCa;
using ::testing::HasSubstr;

constexpr int kTimeoutMs = 10000;

// ---- sockets ----

struct Listener {
  UniqueFd fd;
  uint16_t port = 0;
};

// With `buffer_bytes`, accepted sockets inherit that send and receive buffer size, which
// also turns off the kernel's autotuning of them.
Listener ListenLoopback(int buffer_bytes = 0) {
  Listener l;
  l.fd.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (buffer_bytes > 0 &&
      (::setsockopt(l.fd.get(), SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes) != 0 ||
       ::setsockopt(l.fd.get(), SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes) != 0)) {
    ADD_FAILURE() << "buffer size: " << std::strerror(errno);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(l.fd.get(), 4) != 0 ||
      ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "listen on 127.0.0.1: " << std::strerror(errno);
    return l;
  }
  l.port = ntohs(addr.sin_port);
  return l;
}

// One connection within kTimeoutMs; blocking, with I/O timeouts so that a broken test fails
// instead of hanging.
UniqueFd AcceptOne(int listen_fd) {
  pollfd p{listen_fd, POLLIN, 0};
  if (::poll(&p, 1, kTimeoutMs) != 1) return UniqueFd();
  UniqueFd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  timeval tv{kTimeoutMs / 1000, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

// Connected to 127.0.0.1:port, then non-blocking, as the proxy's upstream socket is.
UniqueFd ConnectNonBlocking(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
    return UniqueFd();
  }
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return fd;
}

// poll(2) for the direction(s) a TLS operation waits on. False on timeout.
bool WaitFor(int fd, bool read, bool write) {
  pollfd p{fd, static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0)), 0};
  return ::poll(&p, 1, kTimeoutMs) == 1;
}

absl::Status ClientHandshake(TlsConnection& tls, int fd) {
  for (;;) {
    absl::StatusOr<TlsHandshake> step = tls.HandshakeStep();
    if (!step.ok()) return step.status();
    if (*step == TlsHandshake::kDone) return absl::OkStatus();
    EXPECT_EQ(tls.want(), *step == TlsHandshake::kWantRead ? TlsWant::kRead : TlsWant::kWrite);
    if (!WaitFor(fd, *step == TlsHandshake::kWantRead, *step == TlsHandshake::kWantWrite)) {
      return absl::DeadlineExceededError("client handshake timed out");
    }
  }
}

// Reads until eof into `out`. Errors: the Read status, or DEADLINE_EXCEEDED.
absl::Status ReadToEof(TlsConnection& tls, int fd, std::string* out) {
  char buf[4096];
  for (;;) {
    IoResult r = tls.Read(buf, sizeof buf);
    if (!r.status.ok()) return r.status;
    if (r.eof) return absl::OkStatus();
    out->append(buf, r.bytes);
    if (r.would_block &&
        !WaitFor(fd, tls.want() == TlsWant::kRead, tls.want() == TlsWant::kWrite)) {
      return absl::DeadlineExceededError("read timed out");
    }
  }
}

// ---- the peer ----

enum class ServerMode {
  kEcho,                  // echo until eof, then close_notify; small socket buffers
  kGreetThenCloseNotify,  // "bye", close_notify, wait for the client's close
  kGreetThenDrop,         // "bye", then close the socket without close_notify
  kDrop,                  // close right after the handshake
};

class TestServer {
 public:
  // The echo peer's socket buffers are small and fixed, so that what a client can have in
  // flight before it must read is bounded (see EchoesEightMibThroughPartialNonBlockingWrites).
  static constexpr int kEchoBufferBytes = 32 * 1024;

  TestServer(TlsServerContext& ctx, ServerMode mode)
      : listener_(ListenLoopback(mode == ServerMode::kEcho ? kEchoBufferBytes : 0)) {
    thread_ = std::thread([this, &ctx, mode] { Serve(ctx, mode); });
  }
  ~TestServer() { (void)Join(); }

  uint16_t port() const { return listener_.port; }
  // Waits for the connection to end. The server's handshake result.
  absl::Status Join() {
    if (thread_.joinable()) thread_.join();
    return handshake_;
  }
  // Valid after Join().
  const std::string& sni() const { return sni_; }

 private:
  void Serve(TlsServerContext& ctx, ServerMode mode) {
    UniqueFd fd = AcceptOne(listener_.fd.get());
    if (!fd) {
      handshake_ = absl::DeadlineExceededError("server: no connection");
      return;
    }
    absl::StatusOr<std::unique_ptr<TlsConnection>> tls = TlsConnection::CreateServer(ctx, fd.get());
    if (!tls.ok()) {
      handshake_ = tls.status();
      return;
    }
    absl::StatusOr<TlsHandshake> step = (*tls)->HandshakeStep();  // blocking fd: one call
    if (!step.ok() || *step != TlsHandshake::kDone) {
      handshake_ =
          step.ok() ? absl::DeadlineExceededError("server handshake timed out") : step.status();
      return;
    }
    handshake_ = absl::OkStatus();
    sni_ = (*tls)->RequestedServerName();
    TlsConnection& conn = **tls;
    switch (mode) {
      case ServerMode::kEcho:
        Echo(conn);
        (void)conn.Shutdown();
        break;
      case ServerMode::kGreetThenCloseNotify: {
        (void)conn.Write("bye", 3);
        (void)conn.Shutdown();
        char buf[256];
        while (conn.Read(buf, sizeof buf).bytes > 0) {
        }
        break;
      }
      case ServerMode::kGreetThenDrop:
        (void)conn.Write("bye", 3);
        break;
      case ServerMode::kDrop:
        break;
    }
  }

  static void Echo(TlsConnection& conn) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      IoResult r = conn.Read(buf.data(), buf.size());
      if (r.bytes == 0) return;  // eof, error, or timeout
      size_t off = 0;
      while (off < r.bytes) {
        IoResult w = conn.Write(buf.data() + off, r.bytes - off);
        if (!w.status.ok() || w.would_block) return;
        off += w.bytes;
      }
    }
  }

  Listener listener_;
  std::thread thread_;
  absl::Status handshake_ = absl::UnknownError("server: not finished");
  std::string sni_;
};

// One client connection to a fresh TestServer. Members are destroyed bottom-up: the TLS
// session, then the socket (which ends the server's loop), then the server thread is joined.
struct Session {
  std::unique_ptr<TlsServerContext> server_ctx;
  std::unique_ptr<TestServer> server;
  std::unique_ptr<TlsClientContext> client_ctx;
  UniqueFd fd;
  std::unique_ptr<TlsConnection> tls;
  absl::Status handshake;  // the client's
};

Session Start(const TlsClientOptions& options, const IssuedCert& cert,
              ServerMode mode = ServerMode::kEcho) {
  Session s;
  absl::StatusOr<std::unique_ptr<TlsServerContext>> server_ctx =
      TlsServerContext::Create(cert.cert_file, cert.key_file);
  if (!server_ctx.ok()) {
    s.handshake = server_ctx.status();
    return s;
  }
  s.server_ctx = *std::move(server_ctx);
  s.server = std::make_unique<TestServer>(*s.server_ctx, mode);
  s.fd = ConnectNonBlocking(s.server->port());
  absl::StatusOr<std::unique_ptr<TlsClientContext>> client_ctx = TlsClientContext::Create(options);
  if (!client_ctx.ok()) {
    s.handshake = client_ctx.status();
    return s;
  }
  s.client_ctx = *std::move(client_ctx);
  absl::StatusOr<std::unique_ptr<TlsConnection>> tls =
      TlsConnection::Create(*s.client_ctx, s.fd.get());
  if (!tls.ok()) {
    s.handshake = tls.status();
    return s;
  }
  s.tls = *std::move(tls);
  s.handshake = ClientHandshake(*s.tls, s.fd.get());
  return s;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = interlock::testing::MakeTempDir("interlock-tls-");
    ASSERT_FALSE(dir_.empty());
    auto ca = TestCa::Create(dir_, "ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    auto other = TestCa::Create(dir_, "other-ca");
    ASSERT_TRUE(other.ok()) << other.status();
    other_ca_ = *std::move(other);
    server_ =
        Issue("server", {.common_name = "db.test", .dns_names = {"db.test"}, .ips = {"127.0.0.1"}});
  }
  void TearDown() override { interlock::testing::RemoveTree(dir_); }

  IssuedCert Issue(const std::string& stem, const LeafSpec& spec) {
    auto cert = ca_->Issue(stem, spec);
    EXPECT_TRUE(cert.ok()) << cert.status();
    return cert.ok() ? *cert : IssuedCert{};
  }

  TlsClientOptions VerifyFull(const std::string& server_name) {
    return {.mode = SslMode::kVerifyFull, .ca_file = ca_->cert_file(), .server_name = server_name};
  }

  std::string dir_;
  std::unique_ptr<TestCa> ca_;
  std::unique_ptr<TestCa> other_ca_;
  IssuedCert server_;
};

// ---- sslmode and context configuration ----

TEST(SslMode, ParsesEveryLibpqName) {
  const std::pair<const char*, SslMode> kCases[] = {
      {"disable", SslMode::kDisable},    {"allow", SslMode::kAllow},
      {"prefer", SslMode::kPrefer},      {"require", SslMode::kRequire},
      {"verify-ca", SslMode::kVerifyCa}, {"verify-full", SslMode::kVerifyFull},
  };
  for (const auto& [name, mode] : kCases) {
    absl::StatusOr<SslMode> parsed = ParseSslMode(name);
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status();
    EXPECT_EQ(*parsed, mode) << name;
    EXPECT_EQ(SslModeName(mode), name);
  }
}

TEST(SslMode, RejectsUnknownAndMiscasedNames) {
  for (const char* name : {"", "Require", "verify_full", "verify-full ", "on"}) {
    absl::StatusOr<SslMode> parsed = ParseSslMode(name);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

TEST_F(TlsTest, VerifyModesWithoutCaFileAreInvalid) {
  for (SslMode mode : {SslMode::kVerifyCa, SslMode::kVerifyFull}) {
    auto ctx = TlsClientContext::Create({.mode = mode, .server_name = "db.test"});
    EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument) << SslModeName(mode);
    EXPECT_THAT(std::string(ctx.status().message()), HasSubstr("ca_file is required"));
  }
}

TEST_F(TlsTest, RefusesUnusableOptions) {
  const TlsClientOptions kBad[] = {
      {.mode = SslMode::kDisable},
      {.mode = SslMode::kVerifyFull, .ca_file = ca_->cert_file()},  // no server_name
      {.mode = SslMode::kRequire, .crl_file = "/nonexistent.crl"},  // crl without ca
      {.mode = SslMode::kRequire, .cert_file = server_.cert_file},  // cert without key
      {.mode = SslMode::kRequire, .min_version = TLS1_1_VERSION},
      {.mode = SslMode::kVerifyCa, .ca_file = server_.key_file},  // not a certificate
  };
  for (const TlsClientOptions& o : kBad) {
    auto ctx = TlsClientContext::Create(o);
    EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument) << ctx.status();
  }
}

TEST_F(TlsTest, MissingCaFileIsNotFoundNamingThePath) {
  auto ctx =
      TlsClientContext::Create({.mode = SslMode::kRequire, .ca_file = dir_ + "/missing.crt"});
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ctx.status().message()),
              HasSubstr("tls: require: ca_file " + dir_ + "/missing.crt"));
}

TEST_F(TlsTest, ClientKeyReadableByOthersIsRefused) {
  IssuedCert client = Issue("client", {.common_name = "agent"});
  ASSERT_TRUE(
      TlsClientContext::Create(
          {.mode = SslMode::kRequire, .cert_file = client.cert_file, .key_file = client.key_file})
          .ok());
  ASSERT_EQ(::chmod(client.key_file.c_str(), 0644), 0);
  auto ctx = TlsClientContext::Create(
      {.mode = SslMode::kRequire, .cert_file = client.cert_file, .key_file = client.key_file});
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(ctx.status().message()), HasSubstr("mode 0644"));
}

TEST_F(TlsTest, TestCaWritesKeysOwnerOnly) {
  struct stat st;
  ASSERT_EQ(::stat(server_.key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(ca_->key_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

// ---- sslmode semantics against a live server ----

TEST_F(TlsTest, EncryptingModesWithoutCaAcceptAnUnknownCa) {
  IssuedCert stranger = *other_ca_->Issue("stranger", {.dns_names = {"db.test"}});
  for (SslMode mode : {SslMode::kAllow, SslMode::kPrefer, SslMode::kRequire}) {
    Session s = Start({.mode = mode}, stranger);
    ASSERT_TRUE(s.handshake.ok()) << SslModeName(mode) << ": " << s.handshake;
    EXPECT_EQ(s.tls->Version(), "TLSv1.3");
    EXPECT_FALSE(s.tls->Cipher().empty());
    EXPECT_FALSE(s.client_ctx->verifies_chain());
  }
}

TEST_F(TlsTest, RequireWithCaFileVerifiesLikeVerifyCa) {
  // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same as
  // that of verify-ca".
  Session bad = Start({.mode = SslMode::kRequire, .ca_file = other_ca_->cert_file()}, server_);
  EXPECT_EQ(bad.handshake.code(), absl::StatusCode::kUnauthenticated) << bad.handshake;
  EXPECT_THAT(std::string(bad.handshake.message()),
              HasSubstr("tls: require: server certificate verification failed: unable to get "
                        "local issuer certificate"));
  Session good = Start({.mode = SslMode::kRequire, .ca_file = ca_->cert_file()}, server_);
  EXPECT_TRUE(good.handshake.ok()) << good.handshake;
  EXPECT_TRUE(good.client_ctx->verifies_chain());
}

TEST_F(TlsTest, VerifyCaRejectsAnUnknownCaWithTheVerifyReason) {
  Session s = Start({.mode = SslMode::kVerifyCa, .ca_file = other_ca_->cert_file()}, server_);
  EXPECT_EQ(s.handshake.code(), absl::StatusCode::kUnauthenticated) << s.handshake;
  EXPECT_THAT(std::string(s.handshake.message()),
              HasSubstr("tls: verify-ca: server certificate verification failed: unable to get "
                        "local issuer certificate"));
  // The server hears about it as an alert.
  EXPECT_FALSE(s.server->Join().ok());
  // The failure is final.
  EXPECT_EQ(s.tls->HandshakeStep().status(), s.handshake);
}

TEST_F(TlsTest, VerifyCaAcceptsTheRightCaWhateverTheName) {
  IssuedCert other_name = Issue("other-name", {.dns_names = {"elsewhere.test"}});
  Session s =
      Start({.mode = SslMode::kVerifyCa, .ca_file = ca_->cert_file(), .server_name = "db.test"},
            other_name);
  EXPECT_TRUE(s.handshake.ok()) << s.handshake;
}

TEST_F(TlsTest, VerifyCaRejectsAnExpiredCertificate) {
  IssuedCert expired = Issue("expired", {.dns_names = {"db.test"}, .expired = true});
  Session s = Start({.mode = SslMode::kVerifyCa, .ca_file = ca_->cert_file()}, expired);
  EXPECT_EQ(s.handshake.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(s.handshake.message()), HasSubstr("certificate has expired"));
}

TEST_F(TlsTest, CrlRevokesACertificate) {
  IssuedCert revoked = Issue("revoked", {.dns_names = {"db.test"}});
  auto crl = ca_->WriteCrl("crl", {revoked.serial});
  ASSERT_TRUE(crl.ok()) << crl.status();
  TlsClientOptions options{
      .mode = SslMode::kVerifyCa, .ca_file = ca_->cert_file(), .crl_file = *crl};
  Session bad = Start(options, revoked);
  EXPECT_EQ(bad.handshake.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(bad.handshake.message()), HasSubstr("certificate revoked"));
  Session good = Start(options, server_);
  EXPECT_TRUE(good.handshake.ok()) << good.handshake;
}

TEST_F(TlsTest, VerifyFullAcceptsSanIpWithoutSni) {
  Session s = Start(VerifyFull("127.0.0.1"), server_);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  s.tls.reset();
  s.fd.Reset();
  ASSERT_TRUE(s.server->Join().ok());
  EXPECT_EQ(s.server->sni(), "");  // RFC 6066: no IP literals in SNI
}

TEST_F(TlsTest, VerifyFullAcceptsSanDnsAndSendsSni) {
  Session s = Start(VerifyFull("db.test"), server_);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  s.tls.reset();
  s.fd.Reset();
  ASSERT_TRUE(s.server->Join().ok());
  EXPECT_EQ(s.server->sni(), "db.test");
}

TEST_F(TlsTest, VerifyFullRejectsAMismatchedName) {
  Session dns = Start(VerifyFull("other.test"), server_);
  EXPECT_EQ(dns.handshake.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(dns.handshake.message()),
              HasSubstr("tls: verify-full: certificate does not match other.test"));
  Session ip = Start(VerifyFull("127.0.0.42"), server_);
  EXPECT_EQ(ip.handshake.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(ip.handshake.message()),
              HasSubstr("tls: verify-full: certificate does not match 127.0.0.42"));
}

TEST_F(TlsTest, VerifyFullWildcardCoversExactlyOneLabel) {
  IssuedCert wildcard = Issue("wildcard", {.dns_names = {"*.db.test"}});
  EXPECT_TRUE(Start(VerifyFull("a.db.test"), wildcard).handshake.ok());
  EXPECT_FALSE(Start(VerifyFull("a.b.db.test"), wildcard).handshake.ok());
  EXPECT_FALSE(Start(VerifyFull("db.test"), wildcard).handshake.ok());
}

TEST_F(TlsTest, VerifyFullUsesCnOnlyWithoutASanOfTheSameKind) {
  // libpq (PostgreSQL 14+): a DNS host ignores the CN when there is a dNSName SAN; an IP host
  // ignores it only when there is an iPAddress SAN, and also accepts a dNSName SAN that
  // spells the address.
  IssuedCert cn_dns = Issue("cn-dns", {.common_name = "db.test"});
  IssuedCert cn_ip = Issue("cn-ip", {.common_name = "127.0.0.1"});
  IssuedCert cn_dns_with_san =
      Issue("cn-dns-san", {.common_name = "db.test", .dns_names = {"a.test"}});
  IssuedCert cn_ip_with_dns_san =
      Issue("cn-ip-dns-san", {.common_name = "127.0.0.1", .dns_names = {"a.test"}});
  IssuedCert cn_ip_with_ip_san =
      Issue("cn-ip-ip-san", {.common_name = "127.0.0.1", .ips = {"127.0.0.2"}});
  IssuedCert dns_san_is_ip = Issue("dns-san-ip", {.common_name = "x", .dns_names = {"127.0.0.1"}});
  EXPECT_TRUE(Start(VerifyFull("db.test"), cn_dns).handshake.ok());
  EXPECT_TRUE(Start(VerifyFull("127.0.0.1"), cn_ip).handshake.ok());
  EXPECT_FALSE(Start(VerifyFull("db.test"), cn_dns_with_san).handshake.ok());
  EXPECT_TRUE(Start(VerifyFull("127.0.0.1"), cn_ip_with_dns_san).handshake.ok());
  EXPECT_FALSE(Start(VerifyFull("127.0.0.1"), cn_ip_with_ip_san).handshake.ok());
  EXPECT_TRUE(Start(VerifyFull("127.0.0.1"), dns_san_is_ip).handshake.ok());
}

TEST_F(TlsTest, RejectsATls11OnlyServer) {
  Listener listener = ListenLoopback();
  int server_rc = 1;
  std::thread server([&] {
    // OpenSSL's socket BIO writes with write(2): keep a SIGPIPE in this thread.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    UniqueFd fd = AcceptOne(listener.fd.get());
    tls_internal::SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    ASSERT_NE(ctx, nullptr);
    // TLS 1.1 needs security level 0 in OpenSSL 3 (its handshake signatures use SHA-1).
    SSL_CTX_set_security_level(ctx.get(), 0);
    ASSERT_EQ(SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0"), 1);
    ASSERT_EQ(SSL_CTX_set_min_proto_version(ctx.get(), TLS1_1_VERSION), 1);
    ASSERT_EQ(SSL_CTX_set_max_proto_version(ctx.get(), TLS1_1_VERSION), 1);
    ASSERT_EQ(SSL_CTX_use_certificate_file(ctx.get(), server_.cert_file.c_str(), SSL_FILETYPE_PEM),
              1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx.get(), server_.key_file.c_str(), SSL_FILETYPE_PEM),
              1);
    tls_internal::SslPtr ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd.get());
    server_rc = SSL_accept(ssl.get());
  });
  UniqueFd fd = ConnectNonBlocking(listener.port);
  auto ctx = TlsClientContext::Create({.mode = SslMode::kRequire});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  auto tls = TlsConnection::Create(**ctx, fd.get());
  ASSERT_TRUE(tls.ok()) << tls.status();
  absl::Status st = ClientHandshake(**tls, fd.get());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  // The server refuses first: our ClientHello offers only TLS 1.2 and 1.3.
  EXPECT_THAT(std::string(st.message()), HasSubstr("tls: require: handshake: "));
  EXPECT_THAT(std::string(st.message()), HasSubstr("protocol version"));
  tls->reset();
  fd.Reset();
  server.join();
  EXPECT_NE(server_rc, 1);
}

// ---- data ----

TEST_F(TlsTest, EchoesEightMibThroughPartialNonBlockingWrites) {
  Session s = Start(VerifyFull("127.0.0.1"), server_);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  TlsConnection& tls = *s.tls;
  // Loopback's autotuned buffers can swallow all 8 MiB (one run in a hundred wrote every
  // chunk whole). With all four buffers small and fixed, at most about 256 KiB (the kernel
  // doubles each) is in flight before this loop reads, less than the largest chunk below,
  // so the socket must push back mid-chunk, as a slow upstream would.
  int small = 32 * 1024;
  ASSERT_EQ(::setsockopt(s.fd.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  ASSERT_EQ(::setsockopt(s.fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);

  std::string sent(8 << 20, '\0');
  std::mt19937 rng(42);
  for (char& c : sent) c = static_cast<char>(rng());
  std::string received;
  received.reserve(sent.size());
  std::vector<char> buf(48 * 1024 + 7);

  size_t off = 0;
  int writes = 0;
  int partial_writes = 0;
  TlsWant write_want = TlsWant::kNone;
  TlsWant read_want = TlsWant::kNone;
  while (received.size() < sent.size()) {
    bool progress = false;
    write_want = TlsWant::kNone;
    if (off < sent.size()) {
      // Chunks of varying size (all above one 16 KiB record, so a retry always covers the
      // record OpenSSL holds); every other write comes from a copy, i.e. a moved buffer.
      size_t chunk = std::min(sent.size() - off, size_t{100'000} + (writes % 5) * 77'777);
      std::string copy;
      const char* p = sent.data() + off;
      if (writes % 2 == 1) {
        copy.assign(p, chunk);
        p = copy.data();
      }
      ++writes;
      IoResult w = tls.Write(p, chunk);
      ASSERT_TRUE(w.status.ok()) << w.status;
      ASSERT_FALSE(w.eof);
      if (w.bytes > 0 && w.bytes < chunk) ++partial_writes;
      if (w.bytes > 0) progress = true;
      off += w.bytes;
      if (w.would_block) write_want = tls.want();
    }
    for (;;) {
      IoResult r = tls.Read(buf.data(), buf.size());
      ASSERT_TRUE(r.status.ok()) << r.status;
      ASSERT_FALSE(r.eof) << "after " << received.size() << " bytes";
      if (r.would_block) {
        read_want = tls.want();
        break;
      }
      received.append(buf.data(), r.bytes);
      progress = true;
    }
    if (!progress) {
      bool want_read = read_want == TlsWant::kRead || write_want == TlsWant::kRead;
      bool want_write = read_want == TlsWant::kWrite || write_want == TlsWant::kWrite;
      ASSERT_TRUE(WaitFor(s.fd.get(), want_read, want_write))
          << "stuck at sent " << off << " received " << received.size();
    }
  }
  EXPECT_TRUE(received == sent) << "echo differs";  // not EXPECT_EQ: no 8 MiB diff
  EXPECT_GT(partial_writes, 0) << "of " << writes << " writes";

  // Our close_notify ends the server's echo loop; it answers with its own.
  ASSERT_TRUE(s.tls->Shutdown().ok());
  std::string rest;
  ASSERT_TRUE(ReadToEof(tls, s.fd.get(), &rest).ok());
  EXPECT_EQ(rest, "");
  EXPECT_TRUE(tls.close_notify_received());
}

TEST_F(TlsTest, CloseNotifyIsACleanEof) {
  Session s = Start(VerifyFull("db.test"), server_, ServerMode::kGreetThenCloseNotify);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  std::string got;
  ASSERT_TRUE(ReadToEof(*s.tls, s.fd.get(), &got).ok());
  EXPECT_EQ(got, "bye");
  EXPECT_TRUE(s.tls->close_notify_received());
  char c;
  EXPECT_TRUE(s.tls->Read(&c, 1).eof);  // and stays at eof
  absl::StatusOr<TlsWant> shutdown = s.tls->Shutdown();
  ASSERT_TRUE(shutdown.ok()) << shutdown.status();
  EXPECT_EQ(*shutdown, TlsWant::kNone);
}

TEST_F(TlsTest, EofWithoutCloseNotifyIsFlaggedUnclean) {
  Session s = Start(VerifyFull("db.test"), server_, ServerMode::kGreetThenDrop);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  std::string got;
  ASSERT_TRUE(ReadToEof(*s.tls, s.fd.get(), &got).ok());
  EXPECT_EQ(got, "bye");
  EXPECT_FALSE(s.tls->close_notify_received());
  char c;
  EXPECT_TRUE(s.tls->Read(&c, 1).eof);
  IoResult w = s.tls->Write("x", 1);
  EXPECT_THAT(std::string(w.status.message()), HasSubstr("without close_notify"));
}

TEST_F(TlsTest, WriteToAClosedPeerIsAnErrorNotSigpipe) {
  // SIGPIPE's default action kills the process: if the TLS layer wrote with write(2), this
  // test would not get to fail.
  Session s = Start({.mode = SslMode::kRequire}, server_, ServerMode::kDrop);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  ASSERT_TRUE(s.server->Join().ok());
  std::string data(64 * 1024, 'x');
  absl::Status st;
  for (int i = 0; i < 1000 && st.ok(); ++i) {
    IoResult w = s.tls->Write(data.data(), data.size());
    st = w.status;
    if (w.would_block) WaitFor(s.fd.get(), false, true);
  }
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("tls: require: write"));
}

TEST_F(TlsTest, ReadAndWriteBeforeTheHandshakeAreRefused) {
  auto ctx = TlsClientContext::Create({.mode = SslMode::kRequire});
  ASSERT_TRUE(ctx.ok());
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  auto tls = TlsConnection::Create(**ctx, a.get());
  ASSERT_TRUE(tls.ok());
  char c;
  EXPECT_EQ((*tls)->Read(&c, 1).status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*tls)->Write("x", 1).status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*tls)->PeerCertificateDer(), "");
  EXPECT_EQ((*tls)->PeerSignatureNid(), NID_undef);
  EXPECT_EQ((*tls)->Version(), "");
  // The ClientHello goes out; then it waits for the server.
  absl::StatusOr<TlsHandshake> step = (*tls)->HandshakeStep();
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(*step, TlsHandshake::kWantRead);
  // The peer reads the ClientHello and hangs up.
  char hello[4096];
  EXPECT_GT(::recv(b.get(), hello, sizeof hello, 0), 0);
  b.Reset();
  step = (*tls)->HandshakeStep();
  EXPECT_EQ(step.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(step.status().message()),
              HasSubstr("tls: require: handshake: connection closed"));
}

// ---- identity ----

TEST_F(TlsTest, PeerCertificateAndSignatureDigestForChannelBinding) {
  Session s = Start(VerifyFull("db.test"), server_);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  EXPECT_EQ(s.tls->PeerCertificateDer(), server_.der);
  EXPECT_EQ(s.tls->PeerSignatureNid(), NID_sha256);  // ecdsa-with-SHA256
}

TEST_F(TlsTest, TheFdStaysTheCallers) {
  Session s = Start(VerifyFull("127.0.0.1"), server_);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  int fd = s.fd.get();
  s.tls.reset();
  EXPECT_NE(::fcntl(fd, F_GETFD), -1) << "TlsConnection closed the caller's fd";
}

TEST_F(TlsTest, ConnectionOutlivesItsContext) {
  Session s = Start(VerifyFull("db.test"), server_, ServerMode::kGreetThenCloseNotify);
  ASSERT_TRUE(s.handshake.ok()) << s.handshake;
  s.client_ctx.reset();  // the SSL keeps its own reference to the SSL_CTX
  std::string got;
  ASSERT_TRUE(ReadToEof(*s.tls, s.fd.get(), &got).ok());
  EXPECT_EQ(got, "bye");
}

}  // namespace
}  // namespace interlock::net
