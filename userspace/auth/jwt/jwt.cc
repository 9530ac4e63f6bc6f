#include "userspace/auth/jwt/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::auth::jwt {

namespace {

constexpr std::array<absl::string_view, 12> kReasonCodes = {
    "malformed",     "alg_none",         "alg_not_allowed", "unknown_kid",
    "bad_signature", "wrong_issuer",     "wrong_audience",  "expired",
    "not_yet_valid", "issued_in_future", "missing_claim",   "key_fetch_failed",
};
static_assert(kReasonCodes.size() == static_cast<size_t>(Reason::kKeyFetchFailed) + 1);

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};
struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct OpensslBytesFree {
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};

// -1 for a character outside the base64url alphabet.
constexpr std::array<int8_t, 256> MakeBase64UrlTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 26; ++i) {
    t['A' + i] = static_cast<int8_t>(i);
    t['a' + i] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(52 + i);
  t['-'] = 62;
  t['_'] = 63;
  return t;
}
constexpr std::array<int8_t, 256> kBase64UrlTable = MakeBase64UrlTable();
constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The current OpenSSL error queue as text (then cleared), for internal errors.
std::string TakeOpensslError() {
  unsigned long e = ERR_get_error();
  char buf[256] = "no openssl error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// Reads an optional string member of a header. INVALID_ARGUMENT when present and not a
// string.
absl::Status OptionalHeaderString(const google::protobuf::Struct& header, const char* name,
                                  std::string* out) {
  auto it = header.fields().find(name);
  if (it == header.fields().end()) return absl::OkStatus();
  if (it->second.kind_case() != google::protobuf::Value::kStringValue) {
    return Fail(Reason::kMalformed, absl::StrCat("header \"", name, "\" is not a string"));
  }
  *out = it->second.string_value();
  return absl::OkStatus();
}

// JOSE ECDSA signatures are r||s, each left-padded to the curve size (RFC 7518 §3.4);
// OpenSSL verifies the DER SEQUENCE { r INTEGER, s INTEGER } form.
absl::StatusOr<std::string> RawEcdsaToDer(absl::string_view raw) {
  constexpr size_t kHalf = 32;
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  std::unique_ptr<BIGNUM, BnFree> r(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), kHalf, nullptr));
  std::unique_ptr<BIGNUM, BnFree> s(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + kHalf, kHalf, nullptr));
  if (sig == nullptr || r == nullptr || s == nullptr) {
    return absl::InternalError(absl::StrCat("ecdsa signature: ", TakeOpensslError()));
  }
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return absl::InternalError(absl::StrCat("ecdsa signature: ", TakeOpensslError()));
  }
  r.release();  // now owned by sig
  s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  std::unique_ptr<unsigned char, OpensslBytesFree> owned(der);
  if (len <= 0) return absl::InternalError(absl::StrCat("ecdsa signature: ", TakeOpensslError()));
  return std::string(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
}

// Checks that `key` can verify `alg`: its type, curve and size.
absl::Status CheckKeyFits(Alg alg, EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  switch (alg) {
    case Alg::kRS256:
    case Alg::kPS256: {
      if (id != EVP_PKEY_RSA) break;
      int bits = EVP_PKEY_get_bits(key);
      if (bits < kMinRsaBits || bits > kMaxRsaBits) {
        return Fail(Reason::kBadSignature, absl::StrCat("rsa key of ", bits, " bits outside [",
                                                        kMinRsaBits, ", ", kMaxRsaBits, "]"));
      }
      return absl::OkStatus();
    }
    case Alg::kES256: {
      if (id != EVP_PKEY_EC) break;
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1 ||
          (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
        ERR_clear_error();
        return Fail(Reason::kAlgNotAllowed,
                    absl::StrCat("ES256 needs a P-256 key, not curve ", group));
      }
      return absl::OkStatus();
    }
    case Alg::kEdDSA:
      if (id != EVP_PKEY_ED25519) break;
      return absl::OkStatus();
  }
  return Fail(Reason::kAlgNotAllowed,
              absl::StrCat(AlgName(alg), " cannot be verified with a key of type ",
                           OBJ_nid2sn(id) != nullptr ? OBJ_nid2sn(id) : "unknown"));
}

// The order n of P-256 (SEC 2 §2.4.2, FIPS 186-4 D.1.2.3) shifted right by one: the
// largest low s. Big-endian, so a byte-wise comparison is a numeric one.
constexpr unsigned char kP256HalfOrder[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
};

}  // namespace

bool IsHighS(absl::string_view raw_es256_signature) {
  if (raw_es256_signature.size() != 64) return false;
  return std::memcmp(raw_es256_signature.data() + 32, kP256HalfOrder, sizeof kP256HalfOrder) > 0;
}

void EvpPkeyFree::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

absl::string_view ReasonCode(Reason reason) { return kReasonCodes[static_cast<size_t>(reason)]; }

absl::Status Fail(Reason reason, absl::string_view detail) {
  return absl::UnauthenticatedError(absl::StrCat(ReasonCode(reason), ": ", detail));
}

absl::string_view ReasonOf(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnauthenticated) return {};
  absl::string_view message = status.message();
  size_t colon = message.find(':');
  absl::string_view head = message.substr(0, colon);  // the whole message without ':'
  for (absl::string_view code : kReasonCodes) {
    if (head == code) return code;
  }
  return {};
}

absl::string_view AlgName(Alg alg) {
  switch (alg) {
    case Alg::kRS256:
      return "RS256";
    case Alg::kPS256:
      return "PS256";
    case Alg::kES256:
      return "ES256";
    case Alg::kEdDSA:
      return "EdDSA";
  }
  return "?";
}

std::optional<Alg> ParseAlg(absl::string_view name) {
  for (Alg alg : {Alg::kRS256, Alg::kPS256, Alg::kES256, Alg::kEdDSA}) {
    if (name == AlgName(alg)) return alg;
  }
  return std::nullopt;
}

KeyType KeyTypeOf(Alg alg) {
  switch (alg) {
    case Alg::kRS256:
    case Alg::kPS256:
      return KeyType::kRsa;
    case Alg::kES256:
      return KeyType::kEc;
    case Alg::kEdDSA:
      return KeyType::kOkp;
  }
  return KeyType::kRsa;
}

absl::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEc:
      return "EC";
    case KeyType::kOkp:
      return "OKP";
  }
  return "?";
}

std::optional<std::string> Base64DecodeAnySpelling(absl::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int v;
    if (ch >= 'A' && ch <= 'Z') {
      v = ch - 'A';
    } else if (ch >= 'a' && ch <= 'z') {
      v = ch - 'a' + 26;
    } else if (ch >= '0' && ch <= '9') {
      v = ch - '0' + 52;
    } else if (ch == '-' || ch == '+') {
      v = 62;
    } else if (ch == '_' || ch == '/') {
      v = 63;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int acc_bits = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    int8_t v = kBase64UrlTable[static_cast<unsigned char>(in[i])];
    if (v < 0) {
      return absl::InvalidArgumentError(
          in[i] == '=' ? absl::StrCat("base64url: padding '=' at offset ", i, " (JWS forbids it)")
                       : absl::StrCat("base64url: invalid character at offset ", i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    acc_bits += 6;
    if (acc_bits >= 8) {
      acc_bits -= 8;
      out.push_back(static_cast<char>((acc >> acc_bits) & 0xff));
    }
  }
  if (in.size() % 4 == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("base64url: length ", in.size(), " is not a valid encoding length"));
  }
  // 2 or 4 bits left over after the last full byte: they must be zero, or two encodings
  // would decode to the same bytes.
  if ((acc & ((1u << acc_bits) - 1)) != 0) {
    return absl::InvalidArgumentError("base64url: non-zero trailing bits (non-canonical)");
  }
  return out;
}

std::string Base64UrlEncode(absl::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int acc_bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    acc_bits += 8;
    while (acc_bits >= 6) {
      acc_bits -= 6;
      out.push_back(kBase64UrlAlphabet[(acc >> acc_bits) & 0x3f]);
    }
  }
  if (acc_bits > 0) out.push_back(kBase64UrlAlphabet[(acc << (6 - acc_bits)) & 0x3f]);
  return out;
}

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json) {
  google::protobuf::Struct out;
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &out, options);
  if (!status.ok()) {
    // The parser's message quotes the input after its first line; keep only the first.
    std::string message(status.message());
    message = message.substr(0, message.find('\n'));
    if (message.empty()) message = "invalid json";
    return absl::InvalidArgumentError(absl::StrCat("json: ", message));
  }
  return out;
}

absl::StatusOr<Jws> DecodeJws(absl::string_view token) {
  if (token.empty()) return Fail(Reason::kMalformed, "empty token");
  if (token.size() > kMaxTokenBytes) {
    return Fail(Reason::kMalformed,
                absl::StrCat("token of ", token.size(), " bytes > max ", kMaxTokenBytes));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) {
    return Fail(Reason::kMalformed, absl::StrCat("compact jws has ", parts.size(),
                                                 " parts, not 3 (encrypted JWTs unsupported)"));
  }
  if (parts[0].empty() || parts[1].empty()) {
    return Fail(Reason::kMalformed, "empty header or payload");
  }
  Jws jws;
  const char* names[] = {"header", "payload", "signature"};
  std::string decoded[3];
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::string> d = Base64UrlDecode(parts[i]);
    if (!d.ok())
      return Fail(Reason::kMalformed, absl::StrCat(names[i], ": ", d.status().message()));
    decoded[i] = *std::move(d);
  }
  absl::StatusOr<google::protobuf::Struct> header = ParseJsonObject(decoded[0]);
  if (!header.ok()) {
    return Fail(Reason::kMalformed, absl::StrCat("header: ", header.status().message()));
  }
  jws.header = *std::move(header);
  absl::StatusOr<google::protobuf::Struct> payload = ParseJsonObject(decoded[1]);
  if (!payload.ok()) {
    return Fail(Reason::kMalformed, absl::StrCat("payload: ", payload.status().message()));
  }
  jws.payload = *std::move(payload);

  auto alg = jws.header.fields().find("alg");
  if (alg == jws.header.fields().end()) return Fail(Reason::kMalformed, "header has no \"alg\"");
  INTERLOCK_RETURN_IF_ERROR(OptionalHeaderString(jws.header, "alg", &jws.alg));
  INTERLOCK_RETURN_IF_ERROR(OptionalHeaderString(jws.header, "kid", &jws.kid));
  INTERLOCK_RETURN_IF_ERROR(OptionalHeaderString(jws.header, "typ", &jws.typ));
  if (jws.header.fields().count("crit") != 0) {
    return Fail(Reason::kMalformed, "header \"crit\" names extensions this verifier lacks");
  }
  jws.signing_input = std::string(token.substr(0, parts[0].size() + 1 + parts[1].size()));
  jws.signature = std::move(decoded[2]);
  return jws;
}

absl::Status VerifySignature(Alg alg, EVP_PKEY* key, absl::string_view signing_input,
                             absl::string_view signature, SignatureRules rules) {
  if (key == nullptr) return Fail(Reason::kBadSignature, "no key");
  INTERLOCK_RETURN_IF_ERROR(CheckKeyFits(alg, key));

  std::string der;  // ES256 only
  absl::string_view sig = signature;
  const EVP_MD* md = EVP_sha256();
  switch (alg) {
    case Alg::kRS256:
    case Alg::kPS256:
      if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(key))) {
        return Fail(Reason::kBadSignature,
                    absl::StrCat(AlgName(alg), " signature of ", signature.size(),
                                 " bytes, the key needs ", EVP_PKEY_get_size(key)));
      }
      break;
    case Alg::kES256: {
      if (signature.size() != 64) {
        return Fail(Reason::kBadSignature,
                    absl::StrCat("ES256 signature of ", signature.size(), " bytes, not 64 (r||s)"));
      }
      // Before verifying: a high s is refused whether or not it would verify, so the
      // answer does not depend on the key.
      if (rules.require_low_s && IsHighS(signature)) {
        return Fail(Reason::kBadSignature,
                    "high_s: ES256 signature has s > n/2 (the malleable, non-canonical half; "
                    "this issuer is configured to require low s)");
      }
      INTERLOCK_ASSIGN_OR_RETURN(der, RawEcdsaToDer(signature));
      sig = der;
      break;
    }
    case Alg::kEdDSA:
      if (signature.size() != 64) {
        return Fail(Reason::kBadSignature,
                    absl::StrCat("EdDSA signature of ", signature.size(), " bytes, not 64"));
      }
      md = nullptr;  // Ed25519 hashes internally (PureEdDSA)
      break;
  }

  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    return absl::InternalError(absl::StrCat("jwt: verify init: ", TakeOpensslError()));
  }
  if (alg == Alg::kPS256) {
    // RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash. A fixed salt
    // length (not "auto") makes OpenSSL reject signatures with any other salt length.
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1) {
      return absl::InternalError(absl::StrCat("jwt: pss parameters: ", TakeOpensslError()));
    }
  } else if (alg == Alg::kRS256) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
      return absl::InternalError(absl::StrCat("jwt: pkcs1 padding: ", TakeOpensslError()));
    }
  }
  int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
      reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
  ERR_clear_error();  // a failed verification leaves errors queued; they are not news
  if (rc != 1) {
    return Fail(Reason::kBadSignature, absl::StrCat(AlgName(alg), " signature does not verify"));
  }
  return absl::OkStatus();
}

}  // namespace interlock::auth::jwt
