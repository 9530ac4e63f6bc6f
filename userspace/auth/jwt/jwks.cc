#include "userspace/auth/jwt/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace interlock::auth::jwt {

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

constexpr size_t kP256CoordinateBytes = 32;
constexpr size_t kEd25519KeyBytes = 32;
constexpr size_t kMaxRsaExponentBytes = 8;  // OpenSSL refuses e > 64 bits for big moduli

absl::Status Unusable(absl::string_view why) { return absl::InvalidArgumentError(why); }

std::string OpensslError() {
  unsigned long e = ERR_get_error();
  char buf[256] = "no openssl error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// The string member `name`; nullopt when absent; INVALID_ARGUMENT when not a string.
absl::StatusOr<std::optional<std::string>> OptionalString(const Struct& jwk, const char* name) {
  auto it = jwk.fields().find(name);
  if (it == jwk.fields().end()) return std::optional<std::string>();
  if (it->second.kind_case() != Value::kStringValue) {
    return Unusable(absl::StrCat("\"", name, "\" is not a string"));
  }
  return std::optional<std::string>(it->second.string_value());
}

// A required base64url member, decoded.
absl::StatusOr<std::string> RequiredBytes(const Struct& jwk, const char* name) {
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> s, OptionalString(jwk, name));
  if (!s.has_value()) return Unusable(absl::StrCat("no \"", name, "\""));
  absl::StatusOr<std::string> bytes = Base64UrlDecode(*s);
  if (!bytes.ok()) return Unusable(absl::StrCat("\"", name, "\": ", bytes.status().message()));
  if (bytes->empty()) return Unusable(absl::StrCat("\"", name, "\" is empty"));
  return bytes;
}

// The public key from OSSL_PARAMs (OpenSSL 3 provider-native keys, no deprecated RSA*/EC_KEY*).
absl::StatusOr<EvpPkeyPtr> FromData(const char* type, OSSL_PARAM* params) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return Unusable(absl::StrCat("openssl refused the ", type, " key: ", OpensslError()));
  }
  return EvpPkeyPtr(raw);
}

absl::StatusOr<Jwk> ParseRsa(const Struct& jwk) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string n_bytes, RequiredBytes(jwk, "n"));
  INTERLOCK_ASSIGN_OR_RETURN(std::string e_bytes, RequiredBytes(jwk, "e"));
  BnPtr n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes.data()),
                    static_cast<int>(n_bytes.size()), nullptr));
  BnPtr e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes.data()),
                    static_cast<int>(e_bytes.size()), nullptr));
  if (n == nullptr || e == nullptr) return absl::InternalError("rsa: out of memory");
  int bits = BN_num_bits(n.get());
  if (bits < kMinRsaBits) {
    return Unusable(absl::StrCat("rsa key of ", bits, " bits < minimum ", kMinRsaBits));
  }
  if (bits > kMaxRsaBits) {
    return Unusable(absl::StrCat("rsa key of ", bits, " bits > maximum ", kMaxRsaBits));
  }
  if (!BN_is_odd(n.get())) return Unusable("rsa modulus is even");
  if (!BN_is_odd(e.get()) || BN_is_one(e.get()) ||
      BN_num_bytes(e.get()) > static_cast<int>(kMaxRsaExponentBytes)) {
    return Unusable("rsa exponent is not an odd number in [3, 2^64)");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return absl::InternalError(absl::StrCat("rsa params: ", OpensslError()));
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (params == nullptr) return absl::InternalError(absl::StrCat("rsa params: ", OpensslError()));
  Jwk out;
  out.type = KeyType::kRsa;
  out.bits = bits;
  INTERLOCK_ASSIGN_OR_RETURN(out.key, FromData("RSA", params.get()));
  return out;
}

absl::StatusOr<Jwk> ParseEc(const Struct& jwk) {
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> crv, OptionalString(jwk, "crv"));
  if (!crv.has_value()) return Unusable("EC key without \"crv\"");
  if (*crv != "P-256") return Unusable(absl::StrCat("EC curve \"", *crv, "\" not supported"));
  INTERLOCK_ASSIGN_OR_RETURN(std::string x, RequiredBytes(jwk, "x"));
  INTERLOCK_ASSIGN_OR_RETURN(std::string y, RequiredBytes(jwk, "y"));
  // RFC 7518 §6.2.1.2: each coordinate is the full size of the field, leading zeros kept.
  if (x.size() != kP256CoordinateBytes || y.size() != kP256CoordinateBytes) {
    return Unusable(
        absl::StrCat("P-256 coordinates of ", x.size(), "/", y.size(), " bytes, not 32"));
  }
  std::string point = absl::StrCat("\x04", x, y);  // SEC 1 uncompressed point
  char group[] = SN_X9_62_prime256v1;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end(),
  };
  Jwk out;
  out.type = KeyType::kEc;
  out.bits = 256;
  INTERLOCK_ASSIGN_OR_RETURN(out.key, FromData("EC", params));
  // Decoding already refuses points off the curve; the explicit check also refuses the
  // point at infinity and points outside the prime-order subgroup.
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, out.key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    return Unusable(absl::StrCat("P-256 point is invalid: ", OpensslError()));
  }
  return out;
}

absl::StatusOr<Jwk> ParseOkp(const Struct& jwk) {
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> crv, OptionalString(jwk, "crv"));
  if (!crv.has_value()) return Unusable("OKP key without \"crv\"");
  if (*crv != "Ed25519") return Unusable(absl::StrCat("OKP curve \"", *crv, "\" not supported"));
  INTERLOCK_ASSIGN_OR_RETURN(std::string x, RequiredBytes(jwk, "x"));
  if (x.size() != kEd25519KeyBytes) {
    return Unusable(absl::StrCat("Ed25519 key of ", x.size(), " bytes, not 32"));
  }
  Jwk out;
  out.type = KeyType::kOkp;
  out.bits = 256;
  out.key.reset(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size()));
  if (out.key == nullptr) return Unusable(absl::StrCat("Ed25519 key: ", OpensslError()));
  return out;
}

}  // namespace

absl::StatusOr<Jwk> ParseJwk(const Struct& jwk) {
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> kty, OptionalString(jwk, "kty"));
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> kid, OptionalString(jwk, "kid"));
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> use, OptionalString(jwk, "use"));
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> alg_name, OptionalString(jwk, "alg"));
  if (!kty.has_value()) return Unusable("no \"kty\"");
  if (*kty != "RSA" && *kty != "EC" && *kty != "OKP") {
    return Unusable(absl::StrCat("kty \"", *kty, "\" not supported"));
  }

  // RFC 7517 §4.2/§4.3: a key meant for encryption, or not for verification, is not ours.
  if (use.has_value() && *use != "sig") {
    return Unusable(absl::StrCat("\"use\" is \"", *use, "\", not \"sig\""));
  }
  auto ops = jwk.fields().find("key_ops");
  if (ops != jwk.fields().end()) {
    bool verify = false;
    if (ops->second.kind_case() != Value::kListValue)
      return Unusable("\"key_ops\" is not an array");
    for (const Value& op : ops->second.list_value().values()) {
      verify |= op.kind_case() == Value::kStringValue && op.string_value() == "verify";
    }
    if (!verify) return Unusable("\"key_ops\" lacks \"verify\"");
  }
  // A published private key is a leak, not a configuration: refuse to use it at all.
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (jwk.fields().count(member) != 0) {
      return Unusable(absl::StrCat("carries private or secret key member \"", member, "\""));
    }
  }
  std::optional<Alg> alg;
  if (alg_name.has_value()) {
    alg = ParseAlg(*alg_name);
    if (!alg.has_value()) {
      return Unusable(absl::StrCat("\"alg\" \"", *alg_name, "\" not supported"));
    }
  }

  absl::StatusOr<Jwk> out = *kty == "RSA"  ? ParseRsa(jwk)
                            : *kty == "EC" ? ParseEc(jwk)
                                           : ParseOkp(jwk);
  if (!out.ok()) return out.status();
  if (alg.has_value() && KeyTypeOf(*alg) != out->type) {
    return Unusable(absl::StrCat("\"alg\" ", AlgName(*alg), " does not match kty ", *kty));
  }
  out->alg = alg;
  out->kid = kid.value_or("");
  return out;
}

absl::StatusOr<KeySet> KeySet::Parse(absl::string_view json, std::vector<std::string>* notes) {
  if (json.size() > kMaxJwksBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("jwks: ", json.size(), " bytes > max ", kMaxJwksBytes));
  }
  absl::StatusOr<Struct> doc = ParseJsonObject(json);
  if (!doc.ok()) return Annotate(doc.status(), "jwks");
  auto keys = doc->fields().find("keys");
  if (keys == doc->fields().end() || keys->second.kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError("jwks: no \"keys\" array");
  }
  KeySet set;
  int index = 0;
  for (const Value& v : keys->second.list_value().values()) {
    std::string where = absl::StrCat("jwks: key ", index++);
    if (v.kind_case() == Value::kStructValue) {
      auto kid = v.struct_value().fields().find("kid");
      if (kid != v.struct_value().fields().end() &&
          kid->second.kind_case() == Value::kStringValue) {
        absl::StrAppend(&where, " (kid \"", kid->second.string_value().substr(0, 64), "\")");
      }
    }
    if (set.keys_.size() == kMaxJwksKeys) {
      if (notes != nullptr)
        notes->push_back(absl::StrCat(where, ": more than ", kMaxJwksKeys, " keys; skipped"));
      continue;
    }
    if (v.kind_case() != Value::kStructValue) {
      if (notes != nullptr) notes->push_back(absl::StrCat(where, ": not an object; skipped"));
      continue;
    }
    absl::StatusOr<Jwk> jwk = ParseJwk(v.struct_value());
    if (!jwk.ok()) {
      if (notes != nullptr) {
        notes->push_back(absl::StrCat(where, ": ", jwk.status().message(), "; skipped"));
      }
      continue;
    }
    set.keys_.push_back(*std::move(jwk));
  }
  return set;
}

std::vector<const Jwk*> KeySet::WithKid(absl::string_view kid) const {
  std::vector<const Jwk*> out;
  for (const Jwk& k : keys_) {
    if (k.kid == kid) out.push_back(&k);
  }
  return out;
}

std::vector<const Jwk*> KeySet::Fitting(Alg alg) const {
  std::vector<const Jwk*> out;
  for (const Jwk& k : keys_) {
    if (k.Fits(alg)) out.push_back(&k);
  }
  return out;
}

}  // namespace interlock::auth::jwt
