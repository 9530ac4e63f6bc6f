#include "userspace/auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace interlock::auth {
namespace {

constexpr size_t kKeyLen = 32;  // SHA-256 output
constexpr size_t kNonceRandomBytes = 24;
constexpr size_t kMaxQuotedErrorBytes = 128;
constexpr size_t kMaxQuotedMechanisms = 8;
constexpr absl::string_view kGs2None = "n,,";
constexpr absl::string_view kGs2NotOffered = "y,,";
constexpr absl::string_view kGs2TlsServerEndPoint = "p=tls-server-end-point,,";

using Key = std::array<uint8_t, kKeyLen>;

// The keys of one exchange, wiped when it goes out of scope.
struct DerivedKeys {
  Key salted_password{};
  Key client_key{};
  Key stored_key{};
  Key server_key{};
  Key client_signature{};
  ~DerivedKeys() { OPENSSL_cleanse(this, sizeof *this); }
};

bool IsPrintable(char c) { return c >= 0x21 && c <= 0x7E; }

// Strict RFC 4648 base64 (standard alphabet, '=' padding required, no whitespace).
// PostgreSQL always sends canonical base64; anything else is a malformed message.
bool StrictBase64Decode(absl::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 != 0) return false;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  for (size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // data after padding
      v[k] = value(c);
      if (v[k] < 0) return false;
    }
    uint32_t triple = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<char>(triple >> 16));
    if (pad < 2) out->push_back(static_cast<char>((triple >> 8) & 0xFF));
    if (pad < 1) out->push_back(static_cast<char>(triple & 0xFF));
    // Non-canonical: bits below the padding must be zero.
    if ((pad == 1 && (triple & 0xFF) != 0) || (pad == 2 && (triple & 0xFFFF) != 0)) {
      return false;
    }
  }
  return true;
}

absl::string_view AsView(const Key& k) {
  return absl::string_view(reinterpret_cast<const char*>(k.data()), k.size());
}

bool Hmac(absl::string_view key, absl::string_view data, Key* out) {
  unsigned int len = 0;
  return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), out->data(),
              &len) != nullptr &&
         len == kKeyLen;
}

bool Sha256(absl::string_view data, Key* out) {
  unsigned int len = 0;
  return EVP_Digest(data.data(), data.size(), out->data(), &len, EVP_sha256(), nullptr) == 1 &&
         len == kKeyLen;
}

// SASLname (RFC 5802 section 5.1): ',' -> "=2C", '=' -> "=3D".
std::string EscapeSaslName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// "<attr>=<value>" -> value; nullopt when `part` is a different attribute.
std::optional<absl::string_view> Attribute(absl::string_view part, char attr) {
  if (part.size() < 2 || part[0] != attr || part[1] != '=') return std::nullopt;
  return part.substr(2);
}

// A server-supplied string, made safe to put in a status message.
std::string Quote(absl::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxQuotedErrorBytes)) {
    out.push_back(c >= 0x20 && c <= 0x7E ? c : '?');
  }
  if (s.size() > kMaxQuotedErrorBytes) out += "...";
  return out;
}

absl::Status Malformed(absl::string_view what, absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat("scram: ", what, ": ", detail));
}

// Size and byte-range checks shared by both server messages.
absl::Status CheckServerMessage(absl::string_view what, absl::string_view msg) {
  if (msg.size() > kMaxScramMessageBytes) {
    return Malformed(what, absl::StrCat("length ", msg.size(), " > max ", kMaxScramMessageBytes));
  }
  if (msg.empty()) return Malformed(what, "empty");
  for (size_t i = 0; i < msg.size(); ++i) {
    if (!IsPrintable(msg[i])) return Malformed(what, absl::StrCat("bad byte at offset ", i));
  }
  return absl::OkStatus();
}

}  // namespace

// ---- ChannelBinding ------------------------------------------------------------------

ChannelBinding ChannelBinding::None() { return ChannelBinding(Flag::kN, ""); }
ChannelBinding ChannelBinding::NotOfferedByServer() { return ChannelBinding(Flag::kY, ""); }
ChannelBinding ChannelBinding::TlsServerEndPoint(std::string cert_hash) {
  return ChannelBinding(Flag::kP, std::move(cert_hash));
}

absl::string_view ChannelBinding::mechanism() const {
  return flag_ == Flag::kP ? kScramSha256Plus : kScramSha256;
}

absl::string_view ChannelBinding::gs2_header() const {
  switch (flag_) {
    case Flag::kN:
      return kGs2None;
    case Flag::kY:
      return kGs2NotOffered;
    case Flag::kP:
      return kGs2TlsServerEndPoint;
  }
  return kGs2None;
}

absl::StatusOr<ChannelBinding> SelectMechanism(const std::vector<std::string>& offered,
                                               std::optional<std::string> tls_server_end_point,
                                               ChannelBindingPolicy policy) {
  const bool tls = tls_server_end_point.has_value();
  if (tls && tls_server_end_point->empty()) {
    return absl::InvalidArgumentError("scram: empty tls-server-end-point hash");
  }
  const bool bind = tls && policy != ChannelBindingPolicy::kDisable;
  bool plus = false;
  bool plain = false;
  for (const std::string& m : offered) {
    if (m == kScramSha256Plus) {
      // PostgreSQL offers -PLUS only over TLS: seeing it on a plain connection means
      // something between us rewrote the connection (libpq refuses too).
      if (!tls) {
        return absl::FailedPreconditionError(
            "scram: server offered SCRAM-SHA-256-PLUS over a non-TLS connection");
      }
      plus = true;
    } else if (m == kScramSha256) {
      plain = true;
    }
  }
  if (plus && bind) return ChannelBinding::TlsServerEndPoint(*std::move(tls_server_end_point));
  if (policy == ChannelBindingPolicy::kRequire) {
    return absl::FailedPreconditionError(
        "scram: channel binding is required, but the server did not offer "
        "SCRAM-SHA-256-PLUS over TLS");
  }
  if (!plain) {
    std::vector<std::string> quoted;
    for (const std::string& m : offered) {
      if (quoted.size() == kMaxQuotedMechanisms) {
        quoted.push_back("...");
        break;
      }
      quoted.push_back(Quote(m));
    }
    return absl::UnimplementedError(
        absl::StrCat("scram: none of the server's SASL mechanisms is supported: [",
                     absl::StrJoin(quoted, ", "), "]"));
  }
  return bind ? ChannelBinding::NotOfferedByServer() : ChannelBinding::None();
}

// ---- ScramClient ---------------------------------------------------------------------

ScramClient::ScramClient(Secret password, SaslPrepOutcome outcome, ChannelBinding cb,
                         std::string client_nonce, std::string username)
    : password_(std::move(password)),
      saslprep_outcome_(outcome),
      cb_(std::move(cb)),
      client_nonce_(std::move(client_nonce)),
      client_first_bare_(absl::StrCat("n=", username, ",r=", client_nonce_)) {}

ScramClient::~ScramClient() { OPENSSL_cleanse(server_signature_.data(), server_signature_.size()); }

absl::StatusOr<ScramClient> ScramClient::Create(absl::string_view password, ChannelBinding cb,
                                                std::string client_nonce,
                                                absl::string_view username) {
  if (client_nonce.empty() || client_nonce.size() > kMaxClientNonceBytes) {
    return absl::InvalidArgumentError(absl::StrCat("scram: client nonce: length ",
                                                   client_nonce.size(), " not in [1, ",
                                                   kMaxClientNonceBytes, "]"));
  }
  for (char c : client_nonce) {
    if (!IsPrintable(c) || c == ',') {
      return absl::InvalidArgumentError(
          "scram: client nonce: bytes must be printable ASCII other than ','");
    }
  }
  if (username.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("scram: user name contains NUL");
  }
  SaslPrepResult prep = PgSaslPrep(password);
  return ScramClient(std::move(prep.password), prep.outcome, std::move(cb), std::move(client_nonce),
                     EscapeSaslName(username));
}

std::string ScramClient::ClientFirstMessage() const {
  return absl::StrCat(cb_.gs2_header(), client_first_bare_);
}

absl::StatusOr<std::string> ScramClient::HandleServerFirst(absl::string_view server_first) {
  constexpr absl::string_view kWhat = "server-first";
  if (state_ != State::kStart) {
    state_ = State::kFailed;
    return absl::FailedPreconditionError("scram: server-first: unexpected at this point");
  }
  state_ = State::kFailed;  // until proven otherwise
  if (absl::Status st = CheckServerMessage(kWhat, server_first); !st.ok()) return st;

  // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
  //                        ["," extensions]
  // A mandatory extension (m=) must make us fail (RFC 5802 section 5.1); like libpq we
  // also refuse optional extensions after i=, which PostgreSQL never sends.
  std::vector<absl::string_view> parts = absl::StrSplit(server_first, ',');
  if (Attribute(parts[0], 'm')) return Malformed(kWhat, "mandatory extension m= not supported");
  if (parts.size() != 3) {
    return Malformed(kWhat, absl::StrCat("want 3 attributes r=,s=,i=; got ", parts.size()));
  }
  std::optional<absl::string_view> nonce = Attribute(parts[0], 'r');
  std::optional<absl::string_view> salt_b64 = Attribute(parts[1], 's');
  std::optional<absl::string_view> iter_text = Attribute(parts[2], 'i');
  if (!nonce) return Malformed(kWhat, "first attribute is not r=");
  if (!salt_b64) return Malformed(kWhat, "second attribute is not s=");
  if (!iter_text) return Malformed(kWhat, "third attribute is not i=");

  // The server appends its own (non-empty) part to our nonce.
  if (nonce->size() <= client_nonce_.size() ||
      nonce->substr(0, client_nonce_.size()) != client_nonce_) {
    return Malformed(kWhat, "nonce does not extend the client nonce");
  }
  std::string salt;
  if (!StrictBase64Decode(*salt_b64, &salt)) return Malformed(kWhat, "salt is not base64");
  if (salt.empty()) return Malformed(kWhat, "empty salt");

  uint64_t iterations = 0;
  if (iter_text->empty()) return Malformed(kWhat, "empty iteration count");
  for (char c : *iter_text) {
    if (c < '0' || c > '9') return Malformed(kWhat, "iteration count is not a number");
    iterations = iterations * 10 + static_cast<uint64_t>(c - '0');
    if (iterations > kMaxScramIterations) break;  // no overflow on long digit strings
  }
  if (iterations < kMinScramIterations || iterations > kMaxScramIterations) {
    return Malformed(kWhat, absl::StrCat("iteration count ", Quote(*iter_text), " not in [",
                                         kMinScramIterations, ", ", kMaxScramIterations, "]"));
  }

  // RFC 5802 section 3:
  //   SaltedPassword  := Hi(Normalize(password), salt, i)      (PBKDF2-HMAC-SHA-256)
  //   ClientKey       := HMAC(SaltedPassword, "Client Key")
  //   StoredKey       := H(ClientKey)
  //   AuthMessage     := client-first-message-bare + "," + server-first-message + "," +
  //                      client-final-message-without-proof
  //   ClientSignature := HMAC(StoredKey, AuthMessage)
  //   ClientProof     := ClientKey XOR ClientSignature
  //   ServerKey       := HMAC(SaltedPassword, "Server Key")
  //   ServerSignature := HMAC(ServerKey, AuthMessage)
  // c= carries the GS2 header plus the channel binding data, so binding is covered by
  // the proof.
  const std::string final_without_proof = absl::StrCat(
      "c=", absl::Base64Escape(absl::StrCat(cb_.gs2_header(), cb_.data())), ",r=", *nonce);
  const std::string auth_message =
      absl::StrCat(client_first_bare_, ",", server_first, ",", final_without_proof);

  DerivedKeys k;
  absl::string_view pw = password_.empty() ? absl::string_view("") : password_.reveal();
  if (PKCS5_PBKDF2_HMAC(pw.data(), static_cast<int>(pw.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        kKeyLen, k.salted_password.data()) != 1) {
    return absl::InternalError("scram: pbkdf2 failed");
  }
  password_ = Secret();  // wiped; only the derived keys are needed from here on
  Key server_signature;
  if (!Hmac(AsView(k.salted_password), "Client Key", &k.client_key) ||
      !Sha256(AsView(k.client_key), &k.stored_key) ||
      !Hmac(AsView(k.stored_key), auth_message, &k.client_signature) ||
      !Hmac(AsView(k.salted_password), "Server Key", &k.server_key) ||
      !Hmac(AsView(k.server_key), auth_message, &server_signature)) {
    return absl::InternalError("scram: hmac-sha-256 failed");
  }
  Key proof;
  for (size_t i = 0; i < kKeyLen; ++i) proof[i] = k.client_key[i] ^ k.client_signature[i];
  server_signature_ = server_signature;
  OPENSSL_cleanse(server_signature.data(), server_signature.size());

  state_ = State::kWaitServerFinal;
  return absl::StrCat(final_without_proof, ",p=", absl::Base64Escape(AsView(proof)));
}

absl::Status ScramClient::HandleServerFinal(absl::string_view server_final) {
  constexpr absl::string_view kWhat = "server-final";
  if (state_ != State::kWaitServerFinal) {
    state_ = State::kFailed;
    return absl::FailedPreconditionError("scram: server-final: unexpected at this point");
  }
  state_ = State::kFailed;
  // server-final-message = (server-error / verifier) ["," extensions]
  if (std::optional<absl::string_view> error = Attribute(server_final, 'e')) {
    return absl::PermissionDeniedError(
        absl::StrCat("scram: server-final: server error: ", Quote(*error)));
  }
  if (absl::Status st = CheckServerMessage(kWhat, server_final); !st.ok()) return st;
  std::optional<absl::string_view> verifier = Attribute(server_final, 'v');
  if (!verifier) return Malformed(kWhat, "want v= or e=");
  if (verifier->find(',') != absl::string_view::npos) {
    return Malformed(kWhat, "unexpected attributes after v=");
  }
  std::string signature;
  if (!StrictBase64Decode(*verifier, &signature)) {
    return Malformed(kWhat, "signature is not base64");
  }
  if (signature.size() != kKeyLen) {
    return Malformed(kWhat, absl::StrCat("signature length ", signature.size(), " != ", kKeyLen));
  }
  if (CRYPTO_memcmp(signature.data(), server_signature_.data(), kKeyLen) != 0) {
    return absl::UnauthenticatedError(
        "scram: server-final: server signature mismatch (the server does not know the "
        "password's verifier)");
  }
  OPENSSL_cleanse(server_signature_.data(), server_signature_.size());
  state_ = State::kDone;
  return absl::OkStatus();
}

// ---- helpers -------------------------------------------------------------------------

absl::StatusOr<std::string> RandomNonce() {
  unsigned char raw[kNonceRandomBytes];
  if (RAND_bytes(raw, sizeof raw) != 1) return absl::InternalError("scram: RAND_bytes failed");
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

namespace {
std::string NidName(int nid) {
  const char* sn = OBJ_nid2sn(nid);
  return sn != nullptr ? std::string(sn) : absl::StrCat("nid ", nid);
}
}  // namespace

absl::StatusOr<std::string> TlsServerEndPointHash(absl::string_view der_cert, int signature_nid) {
  // Same derivation as PostgreSQL's be_tls_get_certificate_hash.
  // `signature_nid` is a signature algorithm (ecdsa-with-SHA256) or, as the TLS layer
  // reports it, already that algorithm's digest (sha256).
  int md_nid = NID_undef;
  if (OBJ_find_sigid_algs(signature_nid, &md_nid, nullptr) != 1 &&
      EVP_get_digestbynid(signature_nid) != nullptr) {
    md_nid = signature_nid;
  }
  if (md_nid == NID_undef) {
    return absl::InvalidArgumentError(
        absl::StrCat("scram: tls-server-end-point: signature algorithm ", NidName(signature_nid),
                     " has no single hash function; channel binding undefined (RFC 5929 4.1)"));
  }
  if (md_nid == NID_md5 || md_nid == NID_sha1) md_nid = NID_sha256;
  const EVP_MD* md = EVP_get_digestbynid(md_nid);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("scram: tls-server-end-point: no digest for ", NidName(md_nid)));
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(der_cert.data(), der_cert.size(), out, &len, md, nullptr) != 1) {
    return absl::InternalError("scram: tls-server-end-point: digest failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace interlock::auth
