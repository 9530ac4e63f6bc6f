#include "userspace/net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/openssl_util.h"

namespace interlock::net {
namespace {

using tls_internal::SslCtxPtr;
using tls_internal::SslPtr;

constexpr struct {
  SslMode mode;
  absl::string_view name;
} kSslModeNames[] = {
    {SslMode::kDisable, "disable"},    {SslMode::kAllow, "allow"},
    {SslMode::kPrefer, "prefer"},      {SslMode::kRequire, "require"},
    {SslMode::kVerifyCa, "verify-ca"}, {SslMode::kVerifyFull, "verify-full"},
};

// An IPv4 or IPv6 address literal to its network-order bytes: 4, 16, or 0 when `text` is
// not one (then it is a DNS name).
int ParseIp(const std::string& text, unsigned char out[16]) {
  if (::inet_pton(AF_INET, text.c_str(), out) == 1) return 4;
  if (::inet_pton(AF_INET6, text.c_str(), out) == 1) return 16;
  return 0;
}

bool IsIpLiteral(const std::string& text) {
  unsigned char bytes[16];
  return ParseIp(text, bytes) != 0;
}

// True when `s` (a dNSName SAN or the subject CN) spells the address `want`.
bool TextIsAddress(const ASN1_STRING* s, const unsigned char* want, int want_len) {
  if (s == nullptr) return false;
  const unsigned char* data = ASN1_STRING_get0_data(s);
  int len = ASN1_STRING_length(s);
  if (data == nullptr || len <= 0 || std::memchr(data, '\0', static_cast<size_t>(len)) != nullptr) {
    return false;
  }
  unsigned char got[16];
  std::string text(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
  return ParseIp(text, got) == want_len &&
         std::memcmp(got, want, static_cast<size_t>(want_len)) == 0;
}

// libpq's rules for an IP-address host beyond OpenSSL's iPAddress SAN check
// (pgtls_verify_peer_name_matches_certificate_guts, PostgreSQL 14+): a dNSName SAN that
// spells the address matches; the CN is consulted only when there is no iPAddress SAN
// (even when dNSName SANs exist — libpq departs from RFC 6125 there, on purpose).
bool IpMatchesLikeLibpq(X509* leaf, const std::string& ip_text) {
  unsigned char want[16];
  int want_len = ParseIp(ip_text, want);
  if (want_len == 0) return false;
  bool has_ip_san = false;
  GeneralNamesPtr sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
    if (name->type == GEN_IPADD) has_ip_san = true;
    if (name->type == GEN_DNS && TextIsAddress(name->d.dNSName, want, want_len)) return true;
  }
  if (has_ip_san) return false;
  X509_NAME* subject = X509_get_subject_name(leaf);
  int cn = subject != nullptr ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
  if (cn < 0) return false;
  return TextIsAddress(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn)), want, want_len);
}

// The chain verification callback. OpenSSL's own checks decide everything except one
// case: verify-full to an IP address, where X509_VERIFY_PARAM_set1_ip_asc looks only at
// iPAddress SANs and libpq also accepts a dNSName SAN or the CN. The expected address comes
// from the verify params, so the callback needs no pointer back to our objects.
int VerifyCallback(int ok, X509_STORE_CTX* store) {
  if (ok == 1 || X509_STORE_CTX_get_error(store) != X509_V_ERR_IP_ADDRESS_MISMATCH) return ok;
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  char* ip = X509_VERIFY_PARAM_get1_ip_asc(X509_STORE_CTX_get0_param(store));
  bool match = leaf != nullptr && ip != nullptr && IpMatchesLikeLibpq(leaf, ip);
  OPENSSL_free(ip);
  if (!match) return 0;
  X509_STORE_CTX_set_error(store, X509_V_OK);
  return 1;
}

// Opens `path` once for reading so a missing or unreadable file is reported with its errno
// (NOT_FOUND, PERMISSION_DENIED) rather than as an OpenSSL parse failure.
absl::Status CheckReadable(absl::string_view context, absl::string_view what,
                           const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat(context, ": ", what, " ", path));
  return absl::OkStatus();
}

// libpq's private key file rule: no group/other access when owned by us; at most 0640 when
// owned by root (a key shared with a group, e.g. ssl-cert).
absl::Status CheckKeyFileMode(absl::string_view context, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat(context, ": key_file ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": key_file ", path, ": not a regular file"));
  }
  bool bad = (st.st_uid == 0) ? (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0
                              : (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
  if (bad) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: key_file %s: mode %04o gives group/other access; want 0600 (or 0640 owned by "
        "root)",
        context, path, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

absl::Status LoadCertAndKey(SSL_CTX* ctx, absl::string_view context, const std::string& cert,
                            const std::string& key) {
  INTERLOCK_RETURN_IF_ERROR(CheckReadable(context, "cert_file", cert));
  INTERLOCK_RETURN_IF_ERROR(CheckReadable(context, "key_file", key));
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": cert_file ", cert, ": ", TakeOpensslReason()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": key_file ", key, ": ", TakeOpensslReason()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": key_file ", key,
                                                   " does not match cert_file ", cert, ": ",
                                                   TakeOpensslReason()));
  }
  return absl::OkStatus();
}

// Settings both sides share: TLS 1.2+, no renegotiation (a renegotiation could swap the
// peer's identity mid-stream), no compression (CRIME), and the write modes TlsConnection's
// Write contract relies on: a write returns after each record (so `bytes` is exact), and a
// retried write may come from a moved buffer (the relay compacts its buffers).
absl::StatusOr<SslCtxPtr> NewContext(const SSL_METHOD* method, absl::string_view context,
                                     int min_version) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat(context, ": SSL_CTX_new: ", TakeOpensslReason()));
  }
  if (SSL_CTX_set_min_proto_version(ctx.get(), min_version) != 1) {
    return absl::InternalError(
        absl::StrCat(context, ": set min protocol version: ", TakeOpensslReason()));
  }
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_default_passwd_cb(ctx.get(), NoPassword);
  return ctx;
}

// ALPN's wire format (RFC 7301 §3.1): each protocol name prefixed by its length.
absl::StatusOr<std::string> AlpnWire(absl::string_view context,
                                     const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": alpn protocol \"", p, "\": want 1 to 255 bytes"));
    }
    wire.push_back(static_cast<char>(p.size()));
    wire.append(p);
  }
  return wire;
}

// ---- Certificates from a ServerCertificateSource ----

// What the callbacks of a CreateWithCertificateSource context need. Owned by the SSL_CTX
// (freed with it through ex_data), since TlsConnections may outlive the TlsServerContext.
struct SourceState {
  ServerCertificateSource* source;
  std::vector<std::string> alpn;
};

void FreeSourceState(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<SourceState*>(ptr);
}

int SourceStateIndex() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeSourceState);
  return index;
}

// Index of the SSL ex_data pointing at the TlsConnection's ServerSelection.
int SelectionIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// OpenSSL's servername callback: runs on the server after the ClientHello's extensions are
// parsed, with or without SNI, and before the certificate is chosen, so the certificate
// set here is the one presented.
int SelectCertificate(SSL* ssl, int* alert, void* arg) {
  auto* state = static_cast<SourceState*>(arg);
  auto* selection =
      static_cast<tls_internal::ServerSelection*>(SSL_get_ex_data(ssl, SelectionIndex()));
  if (selection == nullptr) {  // an SSL not made by TlsConnection::CreateServer
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const std::string name = sni != nullptr ? sni : selection->fallback_name;
  if (name.empty()) {
    selection->error = absl::InvalidArgumentError(
        "no server name: the client sent no SNI and there is no fallback");
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  absl::StatusOr<ServerCertificateSource::Certificate> cert =
      state->source->CertificateFor(name);
  if (!cert.ok()) {
    selection->error = cert.status();
    *alert = cert.status().code() == absl::StatusCode::kInvalidArgument ? SSL_AD_UNRECOGNIZED_NAME
                                                                        : SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  // Both take their own references.
  if (SSL_use_certificate(ssl, cert->cert) != 1 || SSL_use_PrivateKey(ssl, cert->key) != 1) {
    selection->error =
        absl::InternalError(absl::StrCat("use certificate for ", name, ": ", TakeOpensslReason()));
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

// The first of the server's protocols that the client offered; none: no ALPN at all
// (NOACK) rather than a no_application_protocol alert, so an h2-only offer still connects.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
               unsigned int in_len, void* arg) {
  const auto* state = static_cast<const SourceState*>(arg);
  for (const std::string& ours : state->alpn) {
    for (unsigned int i = 0; i < in_len; i += 1u + in[i]) {
      unsigned int len = in[i];
      if (i + 1 + len > in_len) break;  // malformed; OpenSSL validates it first anyway
      if (len == ours.size() && std::memcmp(in + i + 1, ours.data(), len) == 0) {
        *out = in + i + 1;
        *out_len = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// ---- The socket BIO ----
//
// OpenSSL's BIO_s_socket writes with write(2), which raises SIGPIPE when the peer is gone;
// every socket write in net uses send(MSG_NOSIGNAL) instead, so TLS does too. The BIO also
// records the errno and EOF it saw: after SSL_ERROR_SYSCALL/SSL_ERROR_SSL, errno may no
// longer be the socket's, and OpenSSL 3 reports a peer's plain EOF as SSL_ERROR_SSL.

tls_internal::SocketState* StateOf(BIO* bio) {
  return static_cast<tls_internal::SocketState*>(BIO_get_data(bio));
}

int BioWrite(BIO* bio, const char* buf, int len) {
  tls_internal::SocketState* st = StateOf(bio);
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  for (;;) {
    ssize_t n = ::send(st->fd, buf, static_cast<size_t>(len), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_write(bio);
      return -1;
    }
    st->error = errno;
    return -1;
  }
}

int BioRead(BIO* bio, char* buf, int len) {
  tls_internal::SocketState* st = StateOf(bio);
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  for (;;) {
    ssize_t n = ::recv(st->fd, buf, static_cast<size_t>(len), 0);
    if (n > 0) return static_cast<int>(n);
    if (n == 0) {
      st->eof = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_read(bio);
      return -1;
    }
    st->error = errno;
    return -1;
  }
}

long BioCtrl(BIO* bio, int cmd, long, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // send(2) does not buffer
    case BIO_CTRL_DUP:
      return 1;
    case BIO_C_GET_FD: {  // SSL_get_fd
      int fd = StateOf(bio)->fd;
      if (ptr != nullptr) *static_cast<int*>(ptr) = fd;
      return fd;
    }
    default:  // no KTLS, no close-on-free: the fd is the caller's
      return 0;
  }
}

BIO_METHOD* SocketBioMethod() {
  // Created once and never freed (one small allocation for the process lifetime).
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "interlock socket");
    if (m == nullptr || BIO_meth_set_write(m, BioWrite) != 1 ||
        BIO_meth_set_read(m, BioRead) != 1 || BIO_meth_set_ctrl(m, BioCtrl) != 1) {
      std::abort();  // allocation failure at first use: nothing sensible to continue with
    }
    return m;
  }();
  return method;
}

}  // namespace

// ---- SslMode ----

absl::StatusOr<SslMode> ParseSslMode(absl::string_view text) {
  for (const auto& m : kSslModeNames) {
    if (m.name == text) return m.mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("tls: sslmode \"", text,
                   "\": want disable, allow, prefer, require, verify-ca or verify-full"));
}

absl::string_view SslModeName(SslMode mode) {
  for (const auto& m : kSslModeNames) {
    if (m.mode == mode) return m.name;
  }
  std::abort();  // every enumerator is in the table
}

// ---- TlsClientContext ----

absl::StatusOr<std::unique_ptr<TlsClientContext>> TlsClientContext::Create(
    const TlsClientOptions& options) {
  const std::string context = absl::StrCat("tls: ", SslModeName(options.mode));
  const bool verify_mode =
      options.mode == SslMode::kVerifyCa || options.mode == SslMode::kVerifyFull;
  if (options.mode == SslMode::kDisable) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": no tls to configure"));
  }
  if (verify_mode && options.ca_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": ca_file is required to verify the server certificate"));
  }
  if (options.mode == SslMode::kVerifyFull && options.server_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": server_name is required to match the certificate"));
  }
  if (!options.crl_file.empty() && options.ca_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": crl_file needs ca_file"));
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": cert_file and key_file must be set together"));
  }
  if (options.min_version != TLS1_2_VERSION && options.min_version != TLS1_3_VERSION) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: min_version 0x%04x: want TLS1_2_VERSION or TLS1_3_VERSION", context,
                        options.min_version));
  }

  INTERLOCK_ASSIGN_OR_RETURN(std::string alpn, AlpnWire(context, options.alpn));
  INTERLOCK_ASSIGN_OR_RETURN(SslCtxPtr ctx,
                             NewContext(TLS_client_method(), context, options.min_version));
  // SSL_CTX_set_alpn_protos returns 0 on success.
  if (!alpn.empty() &&
      SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned int>(alpn.size())) != 0) {
    return absl::InternalError(absl::StrCat(context, ": alpn: ", TakeOpensslReason()));
  }
  // Clients of ours never resume sessions; off is also the default, stated for the reader.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);

  // libpq verifies the chain whenever a root file is loaded, whatever the sslmode.
  const bool verifies_chain = !options.ca_file.empty();
  if (verifies_chain) {
    INTERLOCK_RETURN_IF_ERROR(CheckReadable(context, "ca_file", options.ca_file));
    ERR_clear_error();
    if (SSL_CTX_load_verify_file(ctx.get(), options.ca_file.c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": ca_file ", options.ca_file, ": ", TakeOpensslReason()));
    }
    if (!options.crl_file.empty()) {
      INTERLOCK_RETURN_IF_ERROR(CheckReadable(context, "crl_file", options.crl_file));
      X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
      X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());  // owned by store
      if (lookup == nullptr ||
          X509_load_crl_file(lookup, options.crl_file.c_str(), X509_FILETYPE_PEM) <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(context, ": crl_file ", options.crl_file, ": ", TakeOpensslReason()));
      }
      // As libpq: check every certificate of the chain, not only the leaf.
      X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, VerifyCallback);
    if (options.mode == SslMode::kVerifyFull) {
      X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx.get());
      int ok;
      if (IsIpLiteral(options.server_name)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, options.server_name.c_str());
      } else {
        // libpq's wildcard: `*` as the whole leftmost label only ("*.example.com").
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(param, options.server_name.c_str(),
                                         options.server_name.size());
      }
      if (ok != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            context, ": server_name \"", options.server_name, "\": ", TakeOpensslReason()));
      }
    }
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }

  if (!options.cert_file.empty()) {
    INTERLOCK_RETURN_IF_ERROR(CheckKeyFileMode(context, options.key_file));
    INTERLOCK_RETURN_IF_ERROR(
        LoadCertAndKey(ctx.get(), context, options.cert_file, options.key_file));
  }
  return std::unique_ptr<TlsClientContext>(
      new TlsClientContext(options, std::move(ctx), verifies_chain));
}

// ---- TlsServerContext ----

namespace {

// The server settings of both server factories: TLS 1.2+, no client certificate request
// (the default), and no resumption: no session cache, no TLS 1.2 tickets, no TLS 1.3
// NewSessionTicket messages (which a client that never reads would otherwise leave unread,
// turning its close into a reset).
absl::StatusOr<SslCtxPtr> NewServerContext(absl::string_view context) {
  INTERLOCK_ASSIGN_OR_RETURN(SslCtxPtr ctx,
                             NewContext(TLS_server_method(), context, TLS1_2_VERSION));
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  return ctx;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsServerContext>> TlsServerContext::Create(
    const std::string& cert_file, const std::string& key_file) {
  constexpr absl::string_view kContext = "tls: server";
  INTERLOCK_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewServerContext(kContext));
  INTERLOCK_RETURN_IF_ERROR(LoadCertAndKey(ctx.get(), kContext, cert_file, key_file));
  return std::unique_ptr<TlsServerContext>(new TlsServerContext(std::move(ctx)));
}

absl::StatusOr<std::unique_ptr<TlsServerContext>> TlsServerContext::CreateWithCertificateSource(
    ServerCertificateSource& source, const std::vector<std::string>& alpn) {
  constexpr absl::string_view kContext = "tls: server";
  INTERLOCK_RETURN_IF_ERROR(AlpnWire(kContext, alpn).status());
  INTERLOCK_ASSIGN_OR_RETURN(SslCtxPtr ctx, NewServerContext(kContext));
  auto state = std::make_unique<SourceState>(SourceState{.source = &source, .alpn = alpn});
  if (SourceStateIndex() < 0 || SelectionIndex() < 0 ||
      SSL_CTX_set_ex_data(ctx.get(), SourceStateIndex(), state.get()) != 1) {
    return absl::InternalError(absl::StrCat(kContext, ": ex_data: ", TakeOpensslReason()));
  }
  SourceState* owned = state.release();  // freed with the SSL_CTX (FreeSourceState)
  SSL_CTX_set_tlsext_servername_callback(ctx.get(), SelectCertificate);
  SSL_CTX_set_tlsext_servername_arg(ctx.get(), owned);
  if (!owned->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx.get(), SelectAlpn, owned);
  return std::unique_ptr<TlsServerContext>(new TlsServerContext(std::move(ctx)));
}

// ---- TlsConnection ----

TlsConnection::TlsConnection(SslPtr ssl, int fd, bool is_client, std::string context,
                             std::string server_name, bool verifies_chain)
    : ssl_(std::move(ssl)),
      is_client_(is_client),
      context_(std::move(context)),
      server_name_(std::move(server_name)),
      verifies_chain_(verifies_chain) {
  socket_.fd = fd;
}

TlsConnection::~TlsConnection() = default;

absl::StatusOr<std::unique_ptr<TlsConnection>> TlsConnection::Make(SSL_CTX* ctx, int fd,
                                                                   bool is_client,
                                                                   std::string context,
                                                                   std::string server_name,
                                                                   bool verifies_chain) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat(context, ": invalid fd ", fd));
  ERR_clear_error();
  SslPtr ssl(SSL_new(ctx));  // takes its own reference to ctx
  if (ssl == nullptr) {
    return absl::InternalError(absl::StrCat(context, ": SSL_new: ", TakeOpensslReason()));
  }
  BIO* bio = BIO_new(SocketBioMethod());
  if (bio == nullptr) {
    return absl::InternalError(absl::StrCat(context, ": BIO_new: ", TakeOpensslReason()));
  }
  std::unique_ptr<TlsConnection> conn(new TlsConnection(
      std::move(ssl), fd, is_client, std::move(context), std::move(server_name), verifies_chain));
  BIO_set_data(bio, &conn->socket_);
  BIO_set_init(bio, 1);
  // One BIO for both directions: SSL_set_bio takes over the single reference.
  SSL_set_bio(conn->ssl_.get(), bio, bio);
  if (is_client) {
    SSL_set_connect_state(conn->ssl_.get());
    if (!conn->server_name_.empty() && !IsIpLiteral(conn->server_name_) &&
        SSL_set_tlsext_host_name(conn->ssl_.get(), conn->server_name_.c_str()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(conn->context_, ": server_name \"",
                                                     conn->server_name_,
                                                     "\" as SNI: ", TakeOpensslReason()));
    }
  } else {
    SSL_set_accept_state(conn->ssl_.get());
    conn->selection_.fallback_name = conn->server_name_;
    if (SSL_set_ex_data(conn->ssl_.get(), SelectionIndex(), &conn->selection_) != 1) {
      return absl::InternalError(absl::StrCat(conn->context_, ": ex_data: ", TakeOpensslReason()));
    }
  }
  return conn;
}

absl::StatusOr<std::unique_ptr<TlsConnection>> TlsConnection::Create(TlsClientContext& ctx,
                                                                     int fd) {
  return Make(ctx.ctx_.get(), fd, /*is_client=*/true,
              absl::StrCat("tls: ", SslModeName(ctx.options().mode)), ctx.options().server_name,
              ctx.verifies_chain());
}

absl::StatusOr<std::unique_ptr<TlsConnection>> TlsConnection::CreateServer(
    TlsServerContext& ctx, int fd, std::string fallback_name) {
  return Make(ctx.ctx_.get(), fd, /*is_client=*/false, "tls: server", std::move(fallback_name),
              /*verifies_chain=*/false);
}

absl::StatusOr<TlsHandshake> TlsConnection::HandshakeStep() {
  want_ = TlsWant::kNone;
  if (handshake_done_) return TlsHandshake::kDone;
  if (fatal_) return fatal_status_;
  ERR_clear_error();
  socket_.error = 0;
  int rc = SSL_do_handshake(ssl_.get());
  if (rc == 1) {
    // SSL_VERIFY_PEER already failed the handshake on a bad chain; this guards the
    // invariant that a verifying client never proceeds without a verified certificate.
    if (is_client_ && verifies_chain_ &&
        (SSL_get0_peer_certificate(ssl_.get()) == nullptr ||
         SSL_get_verify_result(ssl_.get()) != X509_V_OK)) {
      fatal_ = true;
      fatal_status_ = absl::UnauthenticatedError(
          absl::StrCat(context_, ": server presented no verified certificate"));
      return fatal_status_;
    }
    handshake_done_ = true;
    return TlsHandshake::kDone;
  }
  int err = SSL_get_error(ssl_.get(), rc);
  if (err == SSL_ERROR_WANT_READ) {
    want_ = TlsWant::kRead;
    return TlsHandshake::kWantRead;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    want_ = TlsWant::kWrite;
    return TlsHandshake::kWantWrite;
  }
  return HandshakeError(err);
}

absl::Status TlsConnection::HandshakeError(int ssl_error) {
  fatal_ = true;
  long verify = SSL_get_verify_result(ssl_.get());
  std::string reason = TakeOpensslReason();
  if (is_client_ && verifies_chain_ && verify != X509_V_OK) {
    const char* why = X509_verify_cert_error_string(verify);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      fatal_status_ = absl::UnauthenticatedError(
          absl::StrCat(context_, ": certificate does not match ", server_name_, " (", why, ")"));
    } else {
      fatal_status_ = absl::UnauthenticatedError(
          absl::StrCat(context_, ": server certificate verification failed: ", why));
    }
  } else if (!selection_.error.ok()) {
    fatal_status_ = Annotate(selection_.error, absl::StrCat(context_, ": handshake"));
  } else if (socket_.error != 0) {
    fatal_status_ = ErrnoStatus(socket_.error, absl::StrCat(context_, ": handshake"));
  } else if (ssl_error == SSL_ERROR_SSL && !socket_.eof) {
    fatal_status_ = absl::UnavailableError(absl::StrCat(context_, ": handshake: ", reason));
  } else {
    fatal_status_ =
        absl::UnavailableError(absl::StrCat(context_, ": handshake: connection closed by peer"));
  }
  return fatal_status_;
}

absl::Status TlsConnection::IoError(int ssl_error, absl::string_view op) {
  fatal_ = true;
  std::string reason = TakeOpensslReason();
  if (socket_.error != 0) {
    fatal_status_ = ErrnoStatus(socket_.error, absl::StrCat(context_, ": ", op));
  } else if (ssl_error == SSL_ERROR_SSL) {
    fatal_status_ = absl::UnavailableError(absl::StrCat(context_, ": ", op, ": ", reason));
  } else {
    fatal_status_ =
        absl::UnavailableError(absl::StrCat(context_, ": ", op, ": connection closed by peer"));
  }
  return fatal_status_;
}

IoResult TlsConnection::Read(char* buf, size_t len) {
  IoResult r;
  want_ = TlsWant::kNone;
  if (!handshake_done_) {
    r.status = absl::FailedPreconditionError(
        absl::StrCat(context_, ": read before the handshake completed"));
    return r;
  }
  if (eof_) {
    r.eof = true;
    return r;
  }
  if (fatal_) {
    r.status = fatal_status_;
    return r;
  }
  if (len == 0) return r;
  ERR_clear_error();
  socket_.error = 0;
  size_t n = 0;
  int rc = SSL_read_ex(ssl_.get(), buf, len, &n);
  if (rc == 1) {
    r.bytes = n;
    return r;
  }
  int err = SSL_get_error(ssl_.get(), rc);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      want_ = TlsWant::kRead;
      r.would_block = true;
      return r;
    case SSL_ERROR_WANT_WRITE:
      want_ = TlsWant::kWrite;
      r.would_block = true;
      return r;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      ERR_clear_error();
      close_notify_received_ = true;
      eof_ = true;
      r.eof = true;
      return r;
    default:
      break;
  }
  if (socket_.error == 0 && socket_.eof) {
    // TCP EOF without close_notify. OpenSSL 3 reports it as SSL_ERROR_SSL
    // (unexpected eof while reading), 1.1 as SSL_ERROR_SYSCALL with errno 0; either way
    // the session is dead: reads report eof, writes the error.
    ERR_clear_error();
    fatal_ = true;
    fatal_status_ = absl::UnavailableError(
        absl::StrCat(context_, ": peer closed the connection without close_notify"));
    eof_ = true;
    r.eof = true;
    return r;
  }
  r.status = IoError(err, "read");
  return r;
}

IoResult TlsConnection::Write(const char* buf, size_t len) {
  IoResult r;
  want_ = TlsWant::kNone;
  if (!handshake_done_) {
    r.status = absl::FailedPreconditionError(
        absl::StrCat(context_, ": write before the handshake completed"));
    return r;
  }
  if (fatal_) {
    r.status = fatal_status_;
    return r;
  }
  while (r.bytes < len) {
    ERR_clear_error();
    socket_.error = 0;
    size_t n = 0;
    // With SSL_MODE_ENABLE_PARTIAL_WRITE this returns after each record it sent.
    int rc = SSL_write_ex(ssl_.get(), buf + r.bytes, len - r.bytes, &n);
    if (rc == 1) {
      r.bytes += n;
      continue;
    }
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      want_ = err == SSL_ERROR_WANT_READ ? TlsWant::kRead : TlsWant::kWrite;
      r.would_block = true;
      break;
    }
    r.status = IoError(err, "write");
    break;
  }
  return r;
}

size_t TlsConnection::pending() const {
  int n = SSL_pending(ssl_.get());
  return n > 0 ? static_cast<size_t>(n) : 0;
}

absl::StatusOr<TlsWant> TlsConnection::Shutdown() {
  want_ = TlsWant::kNone;
  // OpenSSL forbids SSL_shutdown after a fatal error, and during a handshake.
  if (!handshake_done_ || fatal_ || close_notify_sent_) return TlsWant::kNone;
  ERR_clear_error();
  socket_.error = 0;
  int rc = SSL_shutdown(ssl_.get());
  if (rc >= 0) {  // 0: ours sent, theirs not yet read (we do not wait); 1: both
    close_notify_sent_ = true;
    return TlsWant::kNone;
  }
  int err = SSL_get_error(ssl_.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    want_ = err == SSL_ERROR_WANT_READ ? TlsWant::kRead : TlsWant::kWrite;
    return want_;
  }
  return IoError(err, "shutdown");
}

std::string TlsConnection::PeerCertificateDer() const {
  X509* cert = SSL_get0_peer_certificate(ssl_.get());  // not a new reference
  if (cert == nullptr) return "";
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return "";
  std::string der(static_cast<size_t>(len), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_X509(cert, &p) != len) return "";
  return der;
}

int TlsConnection::PeerSignatureNid() const {
  X509* cert = SSL_get0_peer_certificate(ssl_.get());
  if (cert == nullptr) return NID_undef;
  int md_nid = NID_undef;
  if (X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return NID_undef;
  }
  return md_nid;
}

std::string TlsConnection::RequestedServerName() const {
  const char* name =
      is_client_ ? nullptr : SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? name : "";
}

std::string TlsConnection::Cipher() const {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_.get());
  return handshake_done_ && cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "";
}

std::string TlsConnection::Alpn() const {
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &proto, &len);
  return proto != nullptr ? std::string(reinterpret_cast<const char*>(proto), len) : "";
}

std::string TlsConnection::Version() const {
  return handshake_done_ ? SSL_get_version(ssl_.get()) : "";
}

}  // namespace interlock::net
