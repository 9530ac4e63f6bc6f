#include "tests/testing/test_issuer.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "userspace/auth/jwt/jwt.h"

namespace interlock::testing {

namespace test_issuer_internal {
void EvpPkeyFree::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
}  // namespace test_issuer_internal

namespace {

struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

absl::Status OpensslError(absl::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return absl::InternalError(absl::StrCat("test issuer: ", what, ": ", buf));
}

// A BIGNUM parameter of `key`, big-endian, left-padded to `width` bytes (0: minimal).
std::string BnParam(EVP_PKEY* key, const char* name, int width) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return "";
  std::unique_ptr<BIGNUM, BnFree> bn(raw);
  int n = width > 0 ? width : BN_num_bytes(bn.get());
  std::string out(static_cast<size_t>(n), '\0');
  BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), n);
  return out;
}

}  // namespace

std::string Base64UrlDecodeLenient(absl::string_view text) {
  std::optional<std::string> out = auth::jwt::Base64DecodeAnySpelling(text);
  if (!out.has_value()) std::abort();  // not base64 at all: a broken test
  return *std::move(out);
}

std::string FlipEs256S(absl::string_view raw_signature) {
  if (raw_signature.size() != 64) std::abort();
  std::unique_ptr<EC_GROUP, decltype(&EC_GROUP_free)> group(
      EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1), &EC_GROUP_free);
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), &BN_CTX_free);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> s(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(raw_signature.data()) + 32, 32, nullptr),
      &BN_free);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> flipped(BN_new(), &BN_free);
  if (group == nullptr || ctx == nullptr || s == nullptr || flipped == nullptr ||
      BN_sub(flipped.get(), EC_GROUP_get0_order(group.get()), s.get()) != 1) {
    std::abort();
  }
  std::string out(raw_signature.substr(0, 32));
  out.resize(64);
  if (BN_bn2binpad(flipped.get(), reinterpret_cast<unsigned char*>(out.data()) + 32, 32) != 32) {
    std::abort();
  }
  return out;
}

std::string ReencodeEs256Token(absl::string_view token) {
  size_t dot = token.rfind('.');
  if (dot == absl::string_view::npos) std::abort();
  return absl::StrCat(token.substr(0, dot + 1),
                      Base64Url(FlipEs256S(Base64UrlDecodeLenient(token.substr(dot + 1)))));
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(ch);
        }
    }
  }
  out += "\"";
  return out;
}

std::string Base64Url(absl::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

JsonObject& JsonObject::Raw(const std::string& name, std::string json) {
  for (auto& [n, v] : members_) {
    if (n == name) {
      v = std::move(json);
      return *this;
    }
  }
  members_.emplace_back(name, std::move(json));
  return *this;
}

JsonObject& JsonObject::Str(const std::string& name, absl::string_view value) {
  return Raw(name, JsonQuote(value));
}

JsonObject& JsonObject::Int(const std::string& name, int64_t value) {
  return Raw(name, absl::StrCat(value));
}

JsonObject& JsonObject::Strs(const std::string& name, const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const std::string& v : values) quoted.push_back(JsonQuote(v));
  return Raw(name, absl::StrCat("[", absl::StrJoin(quoted, ","), "]"));
}

JsonObject& JsonObject::Obj(const std::string& name, const JsonObject& value) {
  return Raw(name, value.Json());
}

JsonObject& JsonObject::Erase(const std::string& name) {
  members_.erase(std::remove_if(members_.begin(), members_.end(),
                                [&](const auto& m) { return m.first == name; }),
                 members_.end());
  return *this;
}

bool JsonObject::Has(const std::string& name) const {
  return std::any_of(members_.begin(), members_.end(),
                     [&](const auto& m) { return m.first == name; });
}

std::string JsonObject::Json() const {
  std::vector<std::string> parts;
  for (const auto& [n, v] : members_) parts.push_back(absl::StrCat(JsonQuote(n), ":", v));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

absl::StatusOr<std::unique_ptr<TestIssuer>> TestIssuer::Create(std::string issuer) {
  return std::unique_ptr<TestIssuer>(new TestIssuer(std::move(issuer)));
}

absl::Status TestIssuer::AddKey(const std::string& kid, TestKeyKind kind) {
  EVP_PKEY* raw = nullptr;
  switch (kind) {
    case TestKeyKind::kRsa2048:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
      break;
    case TestKeyKind::kRsa1024:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
      break;
    case TestKeyKind::kP256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case TestKeyKind::kEd25519:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (raw == nullptr) return OpensslError(absl::StrCat("generate key ", kid));
  keys_[kid] = Key{kind, EvpPkeyPtr(raw)};
  return absl::OkStatus();
}

void TestIssuer::RemoveKey(const std::string& kid) { keys_.erase(kid); }

JsonObject TestIssuer::PublicJwk(const std::string& kid) const {
  JsonObject jwk;
  auto it = keys_.find(kid);
  if (it == keys_.end()) return jwk;
  EVP_PKEY* key = it->second.pkey.get();
  switch (it->second.kind) {
    case TestKeyKind::kRsa2048:
    case TestKeyKind::kRsa1024:
      jwk.Str("kty", "RSA").Str("kid", kid);
      jwk.Str("n", Base64Url(BnParam(key, OSSL_PKEY_PARAM_RSA_N, 0)));
      jwk.Str("e", Base64Url(BnParam(key, OSSL_PKEY_PARAM_RSA_E, 0)));
      break;
    case TestKeyKind::kP256:
      jwk.Str("kty", "EC").Str("kid", kid).Str("crv", "P-256");
      jwk.Str("x", Base64Url(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32)));
      jwk.Str("y", Base64Url(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32)));
      break;
    case TestKeyKind::kEd25519: {
      unsigned char x[32];
      size_t len = sizeof x;
      EVP_PKEY_get_raw_public_key(key, x, &len);
      jwk.Str("kty", "OKP").Str("kid", kid).Str("crv", "Ed25519");
      jwk.Str("x", Base64Url(absl::string_view(reinterpret_cast<char*>(x), len)));
      break;
    }
  }
  return jwk;
}

std::string TestIssuer::Jwks(const std::vector<std::string>& kids) const {
  std::vector<JsonObject> jwks;
  if (kids.empty()) {
    for (const auto& [kid, key] : keys_) jwks.push_back(PublicJwk(kid));
  } else {
    for (const std::string& kid : kids) jwks.push_back(PublicJwk(kid));
  }
  return JwksOf(jwks);
}

std::string TestIssuer::JwksOf(const std::vector<JsonObject>& jwks) {
  std::vector<std::string> parts;
  for (const JsonObject& j : jwks) parts.push_back(j.Json());
  return absl::StrCat("{\"keys\":[", absl::StrJoin(parts, ","), "]}");
}

std::string TestIssuer::PublicKeyPem(const std::string& kid) const {
  auto it = keys_.find(kid);
  if (it == keys_.end()) return "";
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), it->second.pkey.get()) != 1) return "";
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

JsonObject TestIssuer::StandardClaims(absl::Time now, const std::string& sub,
                                      const std::string& aud) const {
  int64_t t = absl::ToUnixSeconds(now);
  JsonObject claims;
  claims.Str("iss", issuer_).Str("sub", sub).Str("aud", aud);
  claims.Int("iat", t).Int("nbf", t).Int("exp", t + 3600);
  return claims;
}

JsonObject TestIssuer::Header(absl::string_view alg, absl::string_view kid) {
  JsonObject h;
  h.Str("alg", alg).Str("typ", "JWT");
  if (!kid.empty()) h.Str("kid", kid);
  return h;
}

absl::StatusOr<std::string> TestIssuer::Sign(const std::string& kid, absl::string_view alg,
                                             absl::string_view header_json,
                                             absl::string_view payload_json) const {
  auto it = keys_.find(kid);
  if (it == keys_.end()) return absl::NotFoundError(absl::StrCat("test issuer: no key ", kid));
  EVP_PKEY* key = it->second.pkey.get();
  std::string input = absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));

  const EVP_MD* md = EVP_sha256();
  if (alg == "EdDSA") {
    md = nullptr;
  } else if (alg != "RS256" && alg != "PS256" && alg != "ES256") {
    return absl::InvalidArgumentError(absl::StrCat("test issuer: cannot sign ", alg));
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    return OpensslError("sign init");
  }
  if (alg == "PS256" && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
                         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1)) {
    return OpensslError("pss parameters");
  }
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) return OpensslError("sign");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     input.size()) != 1) {
    return OpensslError("sign");
  }
  sig.resize(len);
  if (alg == "ES256") {
    // DER -> JOSE r||s, 32 bytes each.
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> es(
        d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (es == nullptr) return OpensslError("ecdsa signature");
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    sig = std::move(raw);
  }
  return absl::StrCat(input, ".", Base64Url(sig));
}

absl::StatusOr<std::string> TestIssuer::Mint(const std::string& kid, absl::string_view alg,
                                             const JsonObject& claims) const {
  return Sign(kid, alg, Header(alg, kid).Json(), claims.Json());
}

std::string TestIssuer::SignHs256(absl::string_view secret, absl::string_view header_json,
                                  absl::string_view payload_json) {
  std::string input = absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return absl::StrCat(input, ".", Base64Url(absl::string_view(reinterpret_cast<char*>(mac), len)));
}

std::string TestIssuer::Unsigned(absl::string_view header_json, absl::string_view payload_json) {
  return absl::StrCat(Base64Url(header_json), ".", Base64Url(payload_json), ".");
}

}  // namespace interlock::testing
