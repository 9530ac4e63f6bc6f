// TLS for the connections interlockd makes and accepts: a client context with libpq's
// sslmode semantics (PostgreSQL docs §34.19.1 "Client Verification of Server
// Certificates", §34.19.2 sslmode table), a server context, and TlsConnection, a
// non-blocking TLS session over a connected socket that the caller owns and polls.
//
//   INTERLOCK_ASSIGN_OR_RETURN(SslMode mode, ParseSslMode("verify-full"));
//   INTERLOCK_ASSIGN_OR_RETURN(auto ctx, TlsClientContext::Create({
//       .mode = mode, .ca_file = "/etc/interlock/pg-ca.crt", .server_name = "db.internal"}));
//   // ... plaintext SSLRequest sent, the server answered 'S' ...
//   INTERLOCK_ASSIGN_OR_RETURN(auto tls, TlsConnection::Create(*ctx, fd));
//   // On readiness, until kDone: kWantRead -> poll for EPOLLIN, kWantWrite -> EPOLLOUT.
//   INTERLOCK_ASSIGN_OR_RETURN(TlsHandshake step, tls->HandshakeStep());
//   // Then, like RelayBuffer: r.bytes / r.eof / r.would_block / r.status.
//   IoResult r = tls->Read(buf, sizeof buf);
//   if (r.would_block) /* poll for tls->want(): a read can wait for EPOLLOUT */;
//
// What TlsClientContext::Create does per sslmode:
//   disable            INVALID_ARGUMENT: there is no TLS to configure.
//   allow, prefer,     Encrypt; the server certificate is not checked — UNLESS ca_file is
//   require            set: then the chain must verify against it, exactly as verify-ca
//                      (libpq's backwards-compatibility rule, §34.19.1: "if a root CA file
//                      exists, the behavior of sslmode=require will be the same as that of
//                      verify-ca"; libpq applies it to allow and prefer too, and so do we).
//                      Whether to send SSLRequest at all, and the plaintext fallback of
//                      allow/prefer, are the caller's protocol decisions.
//   verify-ca          The chain must verify against ca_file (required), and crl_file if set.
//   verify-full        verify-ca, and server_name (required) must match the certificate:
//                      a DNS name against the dNSName SANs (`*` only as a whole leftmost
//                      label), or the subject CN when there is no dNSName SAN; an IP
//                      address against the iPAddress SANs, or — as libpq does — a dNSName
//                      SAN spelling the same address, or the CN when there is no iPAddress
//                      SAN.
// Deliberate differences from libpq: no defaults from ~/.postgresql/ (every file is an
// explicit path); a file that is set must exist (libpq silently skips a missing root file
// under require); no sslpassword (keys must be unencrypted); no sslcrldir; no
// sslrootcert=system. TLS 1.2 is the minimum; renegotiation is refused.
//
// The agent-facing HTTPS server picks its certificate per handshake instead of from files:
//
//   LeafCache leaves(*ca);  // interception_ca.h, leaf_cache.h
//   INTERLOCK_ASSIGN_OR_RETURN(auto ctx,
//       TlsServerContext::CreateWithCertificateSource(leaves, {"http/1.1"}));
//   // fallback: the original destination the agent dialled, for clients that send no SNI
//   INTERLOCK_ASSIGN_OR_RETURN(auto tls, TlsConnection::CreateServer(*ctx, fd, "10.0.0.7"));
//   // after the handshake: tls->RequestedServerName() (the SNI, or empty), tls->Alpn()
//
// Ownership: every SSL_CTX and SSL has one owner here. A TlsConnection holds its own
// reference to its context's SSL_CTX, so it may outlive the TlsClientContext or
// TlsServerContext object. The fd is never closed by this code.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/net/relay_buffer.h"

namespace interlock::net {

// libpq's sslmode, in its order of increasing protection.
enum class SslMode { kDisable, kAllow, kPrefer, kRequire, kVerifyCa, kVerifyFull };

// "disable", "allow", "prefer", "require", "verify-ca", "verify-full" (case-sensitive, as in
// libpq). INVALID_ARGUMENT for anything else.
absl::StatusOr<SslMode> ParseSslMode(absl::string_view text);
// The libpq spelling of `mode`.
absl::string_view SslModeName(SslMode mode);

struct TlsClientOptions {
  SslMode mode = SslMode::kVerifyFull;
  // PEM root certificate(s) the server's chain must verify against (libpq sslrootcert).
  // Required for verify-ca/verify-full; turns on verification in allow/prefer/require.
  std::string ca_file;
  // PEM CRL(s) checked for every certificate in the chain (libpq sslcrl). Needs ca_file.
  std::string crl_file;
  // Optional client certificate chain and its unencrypted private key (libpq sslcert,
  // sslkey), both or neither. Like libpq, the key file is refused when group/other have
  // access (0640 is allowed when it is owned by root).
  std::string cert_file;
  std::string key_file;
  // The host name or IP address text the server was reached by: matched by verify-full,
  // and sent as SNI when it is a DNS name (RFC 6066 forbids IP literals there).
  std::string server_name;
  // TLS1_2_VERSION or TLS1_3_VERSION.
  int min_version = TLS1_2_VERSION;
  // Protocols offered with ALPN (RFC 7301), most preferred first ("h2", "http/1.1");
  // empty offers none. TlsConnection::Alpn() tells what the server chose.
  std::vector<std::string> alpn;
};

namespace tls_internal {
struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// What TlsConnection's socket BIO (tls.cc) knows about the fd.
struct SocketState {
  int fd = -1;
  int error = 0;     // errno of the last failed send/recv (not EAGAIN/EINTR)
  bool eof = false;  // recv returned 0
};

// What a server TlsConnection tells its context's certificate callback (tls.cc).
struct ServerSelection {
  std::string fallback_name;  // CreateServer's fallback_name
  absl::Status error;         // why the certificate source refused, for HandshakeError
};
}  // namespace tls_internal

// Where a server context made by TlsServerContext::CreateWithCertificateSource gets the
// certificate for each handshake (the interception CA's LeafCache, leaf_cache.h).
class ServerCertificateSource {
 public:
  // Borrowed from the source; valid until its next call.
  struct Certificate {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
  };
  virtual ~ServerCertificateSource() = default;
  // The certificate to present to a client that asked for `name`: the SNI it sent, or the
  // connection's fallback name when it sent none. An error refuses the handshake:
  // INVALID_ARGUMENT with an unrecognized_name alert, anything else with internal_error.
  virtual absl::StatusOr<Certificate> CertificateFor(absl::string_view name) = 0;
};

class TlsClientContext {
 public:
  // Builds the SSL_CTX for `options` (see the sslmode table above). Errors:
  // INVALID_ARGUMENT for an unusable combination (disable, verify-* without ca_file,
  // verify-full without server_name, crl_file without ca_file, cert without key, a
  // min_version below TLS 1.2) or a file OpenSSL cannot parse; PERMISSION_DENIED for a key
  // file group/other can read; errno-derived codes (NOT_FOUND, ...) for files that cannot be
  // opened. Every message names the file it is about.
  static absl::StatusOr<std::unique_ptr<TlsClientContext>> Create(const TlsClientOptions& options);

  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  const TlsClientOptions& options() const { return options_; }
  // True when handshakes check the server's chain: verify-ca, verify-full, or any
  // encrypting mode with ca_file set.
  bool verifies_chain() const { return verifies_chain_; }

 private:
  friend class TlsConnection;
  TlsClientContext(TlsClientOptions options, tls_internal::SslCtxPtr ctx, bool verifies_chain)
      : options_(std::move(options)), ctx_(std::move(ctx)), verifies_chain_(verifies_chain) {}

  TlsClientOptions options_;
  tls_internal::SslCtxPtr ctx_;
  bool verifies_chain_;
};

// The accepting side (agent-facing TLS, and tests). Does not ask for client certificates
// and issues no session tickets (there is no resumption to offer).
class TlsServerContext {
 public:
  // `cert_file`: PEM certificate chain, leaf first; `key_file`: its unencrypted PEM key.
  // INVALID_ARGUMENT when they do not parse or do not match; errno-derived codes when they
  // cannot be opened.
  static absl::StatusOr<std::unique_ptr<TlsServerContext>> Create(const std::string& cert_file,
                                                                  const std::string& key_file);

  // A context that picks each connection's certificate from `source` during the handshake,
  // once the ClientHello has been read (OpenSSL's servername callback, which runs whether
  // or not the client sent SNI, before the certificate is chosen): for the SNI name, or
  // the fallback name given to TlsConnection::CreateServer when there is none (clients
  // send no SNI for an IP address, RFC 6066 §3). No SNI and no fallback name: the
  // handshake fails with unrecognized_name. `source` must outlive every TlsConnection made
  // from this context.
  //
  // `alpn`: protocols the server accepts, most preferred first. The first one the client
  // also offered is selected; when the client offered only others (say only "h2" to an
  // http/1.1 server), the handshake goes on without ALPN and the client falls back to its
  // default (HTTP/1.1 for every HTTP client), as RFC 7301 §3.2 allows. INVALID_ARGUMENT
  // for an empty or over-long (>255) protocol name.
  static absl::StatusOr<std::unique_ptr<TlsServerContext>> CreateWithCertificateSource(
      ServerCertificateSource& source, const std::vector<std::string>& alpn = {});

  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

 private:
  friend class TlsConnection;
  explicit TlsServerContext(tls_internal::SslCtxPtr ctx) : ctx_(std::move(ctx)) {}
  tls_internal::SslCtxPtr ctx_;
};

// HandshakeStep's progress: done, or poll the fd for readability / writability and call
// again.
enum class TlsHandshake { kDone, kWantRead, kWantWrite };

// What the last operation that would block is waiting for. Either direction is possible
// for any operation: a TLS read may have to flush a pending record, a write may have to
// read a post-handshake message first.
enum class TlsWant { kNone, kRead, kWrite };

class TlsConnection {
 public:
  // A client session over the connected socket `fd` (blocking or not: with a blocking fd
  // the steps below simply never report "want"). The fd stays owned by the caller and must
  // outlive this object.
  static absl::StatusOr<std::unique_ptr<TlsConnection>> Create(TlsClientContext& ctx, int fd);
  // The server side of an accepted socket, with the same stepping API. `fallback_name`
  // (for a context with a certificate source) is the name to mint for when the client
  // sends no SNI: the original destination address the agent dialled, as text.
  static absl::StatusOr<std::unique_ptr<TlsConnection>> CreateServer(
      TlsServerContext& ctx, int fd, std::string fallback_name = "");

  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  // Advances the handshake as far as the socket allows. kDone once complete (and on every
  // later call). Errors, all final:
  //   UNAUTHENTICATED  the server certificate failed verification; the message has the
  //                    X509 reason ("tls: verify-ca: server certificate verification
  //                    failed: unable to get local issuer certificate", "tls: verify-full:
  //                    certificate does not match 127.0.0.42 (IP address mismatch)").
  //   UNAVAILABLE      the TLS negotiation failed (no common protocol version, an alert from
  //                    the peer, ...) or the peer closed the connection.
  //   errno codes      a socket error.
  //   source codes     server side: the certificate source refused the name, with its
  //                    status (INVALID_ARGUMENT for an SNI that is not a valid host name).
  absl::StatusOr<TlsHandshake> HandshakeStep();
  bool handshake_done() const { return handshake_done_; }

  // Reads at most `len` plaintext bytes, after the handshake. Exactly one of: bytes > 0;
  // eof (the peer closed; close_notify_received() tells whether cleanly); would_block (poll
  // for want()); a non-OK status (socket error, TLS protocol error — final). OpenSSL may
  // hold already-decrypted bytes that epoll cannot see: after a Read that filled `len`,
  // read again (or check pending()) before waiting for EPOLLIN.
  IoResult Read(char* buf, size_t len);

  // Writes as much of `buf` as the socket takes, after the handshake; bytes are reported
  // only once they have been handed to the kernel. When would_block, OpenSSL may already
  // hold the next record, encrypted from the start of `buf`: the next Write must begin
  // with the same bytes (it may pass more of them, and the buffer may have moved).
  // A status is final (EPIPE/ECONNRESET, protocol error).
  IoResult Write(const char* buf, size_t len);

  // What the last HandshakeStep/Read/Write/Shutdown that would block is waiting for;
  // kNone after one that did not block.
  TlsWant want() const { return want_; }
  // Decrypted bytes buffered inside OpenSSL, readable without waiting for the socket.
  size_t pending() const;
  // True once the peer's close_notify was read. An eof without it is an unclean close
  // (truncation is possible: the peer, or something on the path, dropped the TCP stream).
  bool close_notify_received() const { return close_notify_received_; }

  // Sends close_notify, best effort, without waiting for the peer's. Returns kNone when it
  // was sent or there is nothing to do (handshake not done, a fatal error happened, already
  // sent), kWrite (or kRead) when the socket is full: call again when ready, or give up.
  // Errors are socket errors; the caller may ignore them and close the fd.
  absl::StatusOr<TlsWant> Shutdown();

  // The peer's leaf certificate, DER-encoded; empty when there is none (a client that sent
  // none, or before the handshake).
  std::string PeerCertificateDer() const;
  // The NID of the digest in the peer certificate's signature algorithm (NID_sha256 for
  // ecdsa-with-SHA256 and sha256WithRSAEncryption, the PSS hash for RSA-PSS), for RFC 5929
  // tls-server-end-point channel binding. NID_undef when there is no certificate or the
  // algorithm has no separate digest (Ed25519, Ed448). RFC 5929 §4.1: the caller must hash
  // with SHA-256 when this is NID_md5 or NID_sha1.
  int PeerSignatureNid() const;
  // Server side: the host name the client asked for with SNI; empty when it sent none.
  std::string RequestedServerName() const;
  // Negotiated cipher suite ("TLS_AES_256_GCM_SHA384") and protocol ("TLSv1.3"); empty
  // before the handshake.
  std::string Cipher() const;
  // The protocol ALPN selected ("http/1.1"); empty when none was.
  std::string Alpn() const;
  std::string Version() const;

 private:
  TlsConnection(tls_internal::SslPtr ssl, int fd, bool is_client, std::string context,
                std::string server_name, bool verifies_chain);
  static absl::StatusOr<std::unique_ptr<TlsConnection>> Make(SSL_CTX* ctx, int fd, bool is_client,
                                                             std::string context,
                                                             std::string server_name,
                                                             bool verifies_chain);
  absl::Status HandshakeError(int ssl_error);
  absl::Status IoError(int ssl_error, absl::string_view op);

  tls_internal::SocketState socket_;  // first: outlives the BIO (in ssl_) that points at it
  tls_internal::ServerSelection selection_;  // server: the SSL's ex_data points here
  tls_internal::SslPtr ssl_;
  bool is_client_;
  std::string context_;      // "tls: verify-full" / "tls: server": error message prefix
  std::string server_name_;  // for verify-full mismatch messages
  bool verifies_chain_;
  bool handshake_done_ = false;
  bool fatal_ = false;  // after SSL_ERROR_SSL/SYSCALL OpenSSL forbids further use
  absl::Status fatal_status_;
  bool eof_ = false;  // Read reported eof (clean or not); later Reads repeat it
  bool close_notify_received_ = false;
  bool close_notify_sent_ = false;
  TlsWant want_ = TlsWant::kNone;
};

}  // namespace interlock::net
