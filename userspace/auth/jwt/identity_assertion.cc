#include "userspace/auth/jwt/identity_assertion.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "userspace/auth/jwt/jwt.h"
#include "userspace/common/json_text.h"
#include "userspace/common/sha256.h"
#include "userspace/common/status_macros.h"

namespace interlock::auth::jwt {
namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};
struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};

absl::Status CryptoError(absl::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return absl::InternalError(absl::StrCat("assertion: ", what, ": ", buf));
}

absl::Status RequireP256(EVP_PKEY* key) {
  char group[64] = "";
  size_t len = 0;
  if (key == nullptr || EVP_PKEY_is_a(key, "EC") != 1 ||
      EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1 ||
      std::strcmp(group, "prime256v1") != 0) {
    ERR_clear_error();
    return absl::InvalidArgumentError("assertion: the key is not an ECDSA P-256 key");
  }
  return absl::OkStatus();
}

// A coordinate of the public point, big-endian, left-padded to 32 bytes.
absl::StatusOr<std::string> Coordinate(EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return CryptoError(name);
  std::unique_ptr<BIGNUM, BnFree> bn(raw);
  std::string out(32, '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), 32) != 32) return CryptoError(name);
  return out;
}

void AppendMember(absl::string_view name, absl::string_view value, std::string* out) {
  out->push_back(',');
  AppendJsonQuoted(name, out);
  out->push_back(':');
  AppendJsonQuoted(value, out);
}

void AppendNumber(absl::string_view name, int64_t value, std::string* out) {
  out->push_back(',');
  AppendJsonQuoted(name, out);
  absl::StrAppend(out, ":", value);
}

}  // namespace

std::string AssertionClaimsJson(const AssertionClaims& c) {
  std::string out = "{";
  AppendJsonQuoted("iss", &out);
  out.push_back(':');
  AppendJsonQuoted(c.iss, &out);
  AppendMember("aud", c.aud, &out);
  AppendNumber("iat", c.iat, &out);
  AppendNumber("exp", c.exp, &out);
  AppendMember("jti", c.jti, &out);
  AppendMember("sid", c.sid, &out);
  AppendMember("workload", c.workload, &out);
  AppendMember("cgroup_path", c.cgroup_path, &out);
  AppendNumber("uid", c.uid, &out);
  AppendNumber("pid", c.pid, &out);
  AppendMember("exe", c.exe, &out);
  if (c.has_token) {
    AppendMember("sub", c.sub, &out);
    AppendMember("token_iss", c.token_iss, &out);
    out.append(",\"groups\":[");
    for (size_t i = 0; i < c.groups.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendJsonQuoted(c.groups[i], &out);
    }
    out.push_back(']');
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<std::string> SignEs256Jws(EVP_PKEY* key, absl::string_view kid, absl::string_view claims_json) {
  INTERLOCK_RETURN_IF_ERROR(RequireP256(key));
  std::string header = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":";
  AppendJsonQuoted(kid, &header);
  header.push_back('}');
  const std::string input = absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(claims_json));

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return CryptoError("sign init");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) return CryptoError("sign");
  std::string der(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len, in, input.size()) != 1) {
    return CryptoError("sign");
  }
  der.resize(len);
  // OpenSSL writes an ASN.1 ECDSA-Sig-Value; JOSE wants R || S, 32 bytes each
  // (RFC 7518 §3.4).
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr) return CryptoError("ecdsa signature");
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + 32, 32) != 32) {
    return CryptoError("ecdsa signature r||s");
  }
  return absl::StrCat(input, ".", Base64UrlEncode(raw));
}

absl::StatusOr<std::string> Es256PublicJwk(EVP_PKEY* key) {
  INTERLOCK_RETURN_IF_ERROR(RequireP256(key));
  INTERLOCK_ASSIGN_OR_RETURN(std::string x, Coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X));
  INTERLOCK_ASSIGN_OR_RETURN(std::string y, Coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y));
  // RFC 7638 §3.2/§3.3: required members only, lexicographic order, no
  // whitespace. The values are base64url and a fixed name: nothing to escape.
  return absl::StrCat("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", Base64UrlEncode(x), "\",\"y\":\"",
                      Base64UrlEncode(y), "\"}");
}

absl::StatusOr<std::string> Es256JwkThumbprint(EVP_PKEY* key) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string jwk, Es256PublicJwk(key));
  const Sha256Digest d = Sha256(jwk);
  return Base64UrlEncode(absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

}  // namespace interlock::auth::jwt
