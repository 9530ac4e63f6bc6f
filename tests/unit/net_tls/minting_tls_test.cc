// TLS handshakes against a server context that takes its certificates from the
// interception CA's leaf cache (TlsServerContext::CreateWithCertificateSource): the SNI
// name, the fallback address when there is no SNI, refused names, ALPN. Both ends are
// TlsConnections on a non-blocking socketpair, stepped in turn in one thread; the client
// checks the server as an agent would (verify-full against the CA file).
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/privileged.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/interception_ca.h"
#include "userspace/net/leaf_cache.h"
#include "userspace/net/tls.h"

namespace interlock::net {
namespace {

using ::interlock::testing::FakeClock;
using ::testing::HasSubstr;

// More than any handshake needs (a few round trips); a side still unfinished after this
// many steps is stuck.
constexpr int kMaxSteps = 200;

struct Outcome {
  absl::Status client = absl::UnknownError("not run");
  absl::Status server = absl::UnknownError("not run");
  std::string sni;          // what the server saw
  std::string client_alpn;  // what each side says was selected
  std::string server_alpn;
  std::string peer_der;  // the certificate the client received
};

// Steps `tls` once unless it has finished; records an error in `status`.
void Step(TlsConnection& tls, absl::Status& status, bool& finished) {
  if (finished) return;
  absl::StatusOr<TlsHandshake> step = tls.HandshakeStep();
  if (!step.ok()) {
    status = step.status();
    finished = true;
  } else if (*step == TlsHandshake::kDone) {
    status = absl::OkStatus();
    finished = true;
  }
}

class MintingTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = interlock::testing::MakeTempDir("interlock-minting-");
    ASSERT_FALSE(dir_.empty());
    auto ca = LocalCa::Init(dir_, clock_);
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    cache_ = std::make_unique<LeafCache>(*ca_);
    auto ctx = TlsServerContext::CreateWithCertificateSource(*cache_, {"http/1.1"});
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    server_ctx_ = *std::move(ctx);
  }
  void TearDown() override { interlock::testing::RemoveTree(dir_); }

  TlsClientOptions VerifyFull(const std::string& server_name) {
    return {.mode = SslMode::kVerifyFull, .ca_file = ca_->cert_file(), .server_name = server_name};
  }

  Outcome Handshake(const TlsClientOptions& options, const std::string& fallback_name) {
    Outcome out;
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      ADD_FAILURE() << "socketpair";
      return out;
    }
    UniqueFd client_fd(fds[0]);
    UniqueFd server_fd(fds[1]);
    auto client_ctx = TlsClientContext::Create(options);
    if (!client_ctx.ok()) {
      out.client = client_ctx.status();
      return out;
    }
    auto client = TlsConnection::Create(**client_ctx, client_fd.get());
    auto server = TlsConnection::CreateServer(*server_ctx_, server_fd.get(), fallback_name);
    if (!client.ok() || !server.ok()) {
      ADD_FAILURE() << client.status() << " / " << server.status();
      return out;
    }
    bool client_finished = false;
    bool server_finished = false;
    for (int i = 0; i < kMaxSteps && !(client_finished && server_finished); ++i) {
      Step(**client, out.client, client_finished);
      Step(**server, out.server, server_finished);
    }
    if (!client_finished) out.client = absl::DeadlineExceededError("client handshake stuck");
    if (!server_finished) out.server = absl::DeadlineExceededError("server handshake stuck");
    out.sni = (*server)->RequestedServerName();
    out.client_alpn = (*client)->Alpn();
    out.server_alpn = (*server)->Alpn();
    out.peer_der = (*client)->PeerCertificateDer();
    return out;
  }

  std::string LeafDer(absl::string_view name) {
    auto leaf = cache_->Get(name);
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    if (!leaf.ok()) return "";
    unsigned char* der = nullptr;
    int n = i2d_X509((*leaf)->cert.get(), &der);
    std::string out(reinterpret_cast<char*>(der), n > 0 ? static_cast<size_t>(n) : 0);
    OPENSSL_free(der);
    return out;
  }

  std::string dir_;
  FakeClock clock_{absl::Now()};  // the client verifies against the real clock
  std::unique_ptr<LocalCa> ca_;
  std::unique_ptr<LeafCache> cache_;
  std::unique_ptr<TlsServerContext> server_ctx_;
};

TEST_F(MintingTlsTest, MintsForTheSniName) {
  Outcome out = Handshake(VerifyFull("api.internal"), "127.0.0.9");
  ASSERT_TRUE(out.client.ok()) << out.client;
  ASSERT_TRUE(out.server.ok()) << out.server;
  EXPECT_EQ(out.sni, "api.internal");
  EXPECT_EQ(out.peer_der, LeafDer("api.internal"));  // SNI wins over the fallback
  EXPECT_EQ(cache_->minted(), 1u);
  // A second connection to the same name reuses the leaf.
  out = Handshake(VerifyFull("api.internal"), "127.0.0.9");
  ASSERT_TRUE(out.client.ok()) << out.client;
  EXPECT_EQ(cache_->minted(), 1u);
}

TEST_F(MintingTlsTest, UppercaseSniGetsTheNormalisedLeaf) {
  Outcome out = Handshake(VerifyFull("API.Internal"), "");
  ASSERT_TRUE(out.client.ok()) << out.client;
  EXPECT_EQ(out.sni, "API.Internal");
  EXPECT_EQ(out.peer_der, LeafDer("api.internal"));
}

TEST_F(MintingTlsTest, MintsForTheFallbackAddressWithoutSni) {
  for (const char* ip : {"127.0.0.9", "::1"}) {
    // The client sends no SNI for an IP address and checks the iPAddress SAN.
    Outcome out = Handshake(VerifyFull(ip), ip);
    ASSERT_TRUE(out.client.ok()) << ip << ": " << out.client;
    ASSERT_TRUE(out.server.ok()) << ip << ": " << out.server;
    EXPECT_EQ(out.sni, "") << ip;
    EXPECT_EQ(out.peer_der, LeafDer(ip)) << ip;
  }
}

TEST_F(MintingTlsTest, ClientRefusesALeafForAnotherAddress) {
  Outcome out = Handshake(VerifyFull("127.0.0.9"), "127.0.0.10");
  EXPECT_EQ(out.client.code(), absl::StatusCode::kUnauthenticated) << out.client;
  EXPECT_FALSE(out.server.ok());
}

TEST_F(MintingTlsTest, ClientTrustingAnotherCaRefuses) {
  auto other = LocalCa::Init(dir_ + "/other", clock_);
  ASSERT_TRUE(other.ok());
  TlsClientOptions options = VerifyFull("api.internal");
  options.ca_file = (*other)->cert_file();
  Outcome out = Handshake(options, "");
  EXPECT_EQ(out.client.code(), absl::StatusCode::kUnauthenticated) << out.client;
}

TEST_F(MintingTlsTest, InvalidSniFailsTheHandshake) {
  for (const char* sni : {"evil..name", "*.example.com", "999.1.1.1", "under_score.test"}) {
    // No verification: only the server's refusal can fail this handshake.
    Outcome out = Handshake({.mode = SslMode::kRequire, .server_name = sni}, "127.0.0.9");
    EXPECT_EQ(out.server.code(), absl::StatusCode::kInvalidArgument) << sni << ": " << out.server;
    EXPECT_THAT(std::string(out.server.message()), HasSubstr("tls: server: handshake")) << sni;
    EXPECT_EQ(out.client.code(), absl::StatusCode::kUnavailable) << sni << ": " << out.client;
    EXPECT_THAT(std::string(out.client.message()), HasSubstr("unrecognized name")) << sni;
  }
  EXPECT_EQ(cache_->minted(), 0u);
}

TEST_F(MintingTlsTest, NoSniAndNoFallbackFailsTheHandshake) {
  Outcome out = Handshake({.mode = SslMode::kRequire, .server_name = "127.0.0.9"}, "");
  EXPECT_EQ(out.server.code(), absl::StatusCode::kInvalidArgument) << out.server;
  EXPECT_THAT(std::string(out.server.message()), HasSubstr("no SNI"));
  EXPECT_FALSE(out.client.ok());
}

TEST_F(MintingTlsTest, AlpnSelectsHttp11OnlyWhenOffered) {
  struct Case {
    std::vector<std::string> offered;
    std::string selected;  // by both sides; "" when ALPN was not used
  };
  const Case kCases[] = {
      {{"h2", "http/1.1"}, "http/1.1"},
      {{"http/1.1"}, "http/1.1"},
      {{"h2"}, ""},  // no overlap: no ALPN, the handshake proceeds (clients fall back)
      {{}, ""},
  };
  for (const Case& c : kCases) {
    TlsClientOptions options = VerifyFull("api.internal");
    options.alpn = c.offered;
    Outcome out = Handshake(options, "");
    ASSERT_TRUE(out.client.ok()) << c.offered.size() << ": " << out.client;
    ASSERT_TRUE(out.server.ok()) << c.offered.size() << ": " << out.server;
    EXPECT_EQ(out.client_alpn, c.selected) << c.offered.size();
    EXPECT_EQ(out.server_alpn, c.selected) << c.offered.size();
  }
}

// A raw OpenSSL client on `fd`, configured by `configure`, against a TlsConnection server:
// what TlsClientContext cannot do (old versions, counting tickets and certificate requests).
struct RawOutcome {
  int client_rc = 0;  // SSL_do_handshake's last result
  absl::Status server = absl::UnknownError("not run");
  int tickets = 0;          // session tickets the client received
  int cert_requests = 0;    // times the server asked for a client certificate
  std::string client_read;  // what the client read after the handshake
};

int g_tickets = 0;
int g_cert_requests = 0;

class MintingTlsRawTest : public MintingTlsTest {
 protected:
  RawOutcome RawHandshake(void (*configure)(SSL_CTX*)) {
    RawOutcome out;
    g_tickets = 0;
    g_cert_requests = 0;
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return out;
    UniqueFd client_fd(fds[0]);
    UniqueFd server_fd(fds[1]);
    tls_internal::SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
    SSL_CTX_sess_set_new_cb(ctx.get(), [](SSL*, SSL_SESSION*) {
      ++g_tickets;
      return 0;  // not kept
    });
    SSL_CTX_set_client_cert_cb(ctx.get(), [](SSL*, X509**, EVP_PKEY**) {
      ++g_cert_requests;
      return 0;  // no certificate
    });
    configure(ctx.get());
    tls_internal::SslPtr ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), client_fd.get());
    SSL_set_connect_state(ssl.get());
    auto server = TlsConnection::CreateServer(*server_ctx_, server_fd.get(), "127.0.0.9");
    if (!server.ok()) return out;
    bool server_finished = false;
    for (int i = 0; i < kMaxSteps; ++i) {
      out.client_rc = SSL_do_handshake(ssl.get());
      Step(**server, out.server, server_finished);
      int err = SSL_get_error(ssl.get(), out.client_rc);
      if (server_finished &&
          (out.client_rc == 1 || (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE))) {
        break;
      }
    }
    if (out.client_rc == 1 && out.server.ok()) {
      // Post-handshake messages (TLS 1.3 tickets) come before the first data byte.
      EXPECT_EQ((*server)->Write("x", 1).bytes, 1u);
      char buf[8];
      for (int i = 0; i < kMaxSteps && out.client_read.empty(); ++i) {
        int n = SSL_read(ssl.get(), buf, sizeof buf);
        if (n > 0) out.client_read.assign(buf, static_cast<size_t>(n));
      }
    }
    ERR_clear_error();
    out.tickets = g_tickets;
    out.cert_requests = g_cert_requests;
    return out;
  }
};

TEST_F(MintingTlsRawTest, NoTicketsAndNoCertificateRequest) {
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    static int v;
    v = version;
    RawOutcome out = RawHandshake([](SSL_CTX* ctx) {
      SSL_CTX_set_min_proto_version(ctx, v);
      SSL_CTX_set_max_proto_version(ctx, v);
    });
    ASSERT_EQ(out.client_rc, 1) << version;
    ASSERT_TRUE(out.server.ok()) << out.server;
    EXPECT_EQ(out.client_read, "x") << version;
    EXPECT_EQ(out.tickets, 0) << version;
    EXPECT_EQ(out.cert_requests, 0) << version;
  }
}

TEST_F(MintingTlsRawTest, RefusesTls11) {
  RawOutcome out = RawHandshake([](SSL_CTX* ctx) {
    // TLS 1.1 needs security level 0 in OpenSSL 3 (its handshake signatures use SHA-1).
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
  });
  EXPECT_NE(out.client_rc, 1);
  EXPECT_EQ(out.server.code(), absl::StatusCode::kUnavailable) << out.server;
  EXPECT_THAT(std::string(out.server.message()), HasSubstr("protocol"));
}

TEST_F(MintingTlsTest, InvalidAlpnConfigurationIsRefused) {
  EXPECT_EQ(TlsServerContext::CreateWithCertificateSource(*cache_, {""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsServerContext::CreateWithCertificateSource(*cache_, {std::string(256, 'x')})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsClientContext::Create({.mode = SslMode::kRequire, .alpn = {""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MintingTlsTest, ConnectionOutlivesItsContext) {
  // The SSL_CTX (and the callbacks' state) is reference-counted: dropping the
  // TlsServerContext before the handshake must not break it.
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd client_fd(fds[0]);
  UniqueFd server_fd(fds[1]);
  auto server = TlsConnection::CreateServer(*server_ctx_, server_fd.get(), "127.0.0.9");
  ASSERT_TRUE(server.ok());
  server_ctx_.reset();
  auto client_ctx = TlsClientContext::Create(VerifyFull("127.0.0.9"));
  ASSERT_TRUE(client_ctx.ok());
  auto client = TlsConnection::Create(**client_ctx, client_fd.get());
  ASSERT_TRUE(client.ok());
  absl::Status client_status, server_status;
  bool client_finished = false, server_finished = false;
  for (int i = 0; i < kMaxSteps && !(client_finished && server_finished); ++i) {
    Step(**client, client_status, client_finished);
    Step(**server, server_status, server_finished);
  }
  EXPECT_TRUE(client_finished && client_status.ok()) << client_status;
  EXPECT_TRUE(server_finished && server_status.ok()) << server_status;
}

}  // namespace
}  // namespace interlock::net
