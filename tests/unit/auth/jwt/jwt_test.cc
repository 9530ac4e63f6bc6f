// jwt: strict base64url, compact JWS decoding, signature verification per algorithm and
// the reason-code vocabulary.
#include "userspace/auth/jwt/jwt.h"

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_issuer.h"
#include "userspace/auth/jwt/jwks.h"

namespace interlock::auth::jwt {
namespace {

using ::interlock::testing::Base64Url;
using ::interlock::testing::JsonObject;
using ::interlock::testing::TestIssuer;
using ::interlock::testing::TestKeyKind;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    absl::StatusOr<std::string> back = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(back.ok()) << i << ": " << back.status();
    EXPECT_EQ(*back, bytes);
    EXPECT_EQ(Base64UrlEncode(bytes), Base64Url(bytes));  // the test helper agrees
    bytes.push_back(static_cast<char>(i * 37 + 250));
  }
}

TEST(Base64Url, KnownVectors) {
  // RFC 4648 §10, in the URL-safe alphabet and without padding.
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(*Base64UrlDecode("-_8"), "\xfb\xff");
}

// What the strict decoder refuses, the lenient one reads as the same bytes: both
// alphabets, padding; anything else is not base64.
TEST(Base64DecodeAnySpelling, ReadsEverySpellingOfTheSameBytes) {
  const std::string bytes("\xfb\xff\xbf", 3);  // "-_-_" url, "+/+/" standard
  EXPECT_EQ(Base64DecodeAnySpelling("-_-_"), bytes);
  EXPECT_EQ(Base64DecodeAnySpelling("+/+/"), bytes);
  EXPECT_EQ(Base64DecodeAnySpelling("-/+_"), bytes);
  EXPECT_EQ(Base64DecodeAnySpelling("aGk"), "hi");
  EXPECT_EQ(Base64DecodeAnySpelling("aGk="), "hi");
  EXPECT_EQ(Base64DecodeAnySpelling("aGl="), "hi");  // non-zero trailing bits dropped
  EXPECT_EQ(Base64DecodeAnySpelling(""), "");
  EXPECT_FALSE(Base64DecodeAnySpelling("aG k").has_value());
  EXPECT_FALSE(Base64DecodeAnySpelling("a=Gk").has_value());
}

TEST(Base64Url, RefusesEverythingNonCanonical) {
  const char* bad[] = {
      "Zm9vYg==",      // padding
      "Zm9vYg=",       // padding
      "Zm9v+g",        // standard alphabet '+'
      "Zm9v/g",        // standard alphabet '/'
      "Zm9 vYg",       // whitespace
      "Zm9vY\n",       // newline
      "Z",             // length 1 mod 4
      "Zm9vYmFyZ",     // length 1 mod 4
      "Zh",            // non-zero trailing bits ("Zg" is canonical for "f")
      "Zm9vYh",        // idem
      "Zm9vYmG",       // non-zero trailing bits ("Zm9vYmE" is canonical)
      "Zm9v\xc3\xa9",  // non-ASCII
  };
  for (const char* in : bad) {
    EXPECT_FALSE(Base64UrlDecode(in).ok()) << in;
  }
  EXPECT_TRUE(Base64UrlDecode("").ok());
  EXPECT_EQ(*Base64UrlDecode("Zg"), "f");
}

TEST(ReasonOf, EveryCodeRoundTrips) {
  for (Reason r : {Reason::kMalformed, Reason::kAlgNone, Reason::kAlgNotAllowed,
                   Reason::kUnknownKid, Reason::kBadSignature, Reason::kWrongIssuer,
                   Reason::kWrongAudience, Reason::kExpired, Reason::kNotYetValid,
                   Reason::kIssuedInFuture, Reason::kMissingClaim, Reason::kKeyFetchFailed}) {
    absl::Status s = Fail(r, "detail");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(ReasonOf(s), ReasonCode(r));
    EXPECT_EQ(s.message(), absl::StrCat(ReasonCode(r), ": detail"));
  }
  EXPECT_EQ(ReasonOf(absl::OkStatus()), "");
  EXPECT_EQ(ReasonOf(absl::InvalidArgumentError("expired: no")), "");
  EXPECT_EQ(ReasonOf(absl::UnauthenticatedError("something else: x")), "");
  EXPECT_EQ(ReasonOf(absl::UnauthenticatedError("expired")), "expired");
  EXPECT_EQ(ReasonOf(absl::UnauthenticatedError("expiredx: y")), "");
}

TEST(ParseAlg, ExactNamesOnly) {
  EXPECT_EQ(ParseAlg("RS256"), Alg::kRS256);
  EXPECT_EQ(ParseAlg("PS256"), Alg::kPS256);
  EXPECT_EQ(ParseAlg("ES256"), Alg::kES256);
  EXPECT_EQ(ParseAlg("EdDSA"), Alg::kEdDSA);
  for (const char* name : {"none", "None", "HS256", "HS384", "HS512", "rs256", "RS384", "RS512",
                           "ES384", "ES256K", "EDDSA", "Ed25519", ""}) {
    EXPECT_FALSE(ParseAlg(name).has_value()) << name;
  }
}

std::string Enc(absl::string_view s) { return Base64Url(s); }

TEST(DecodeJws, DecodesHeaderPayloadAndSignature) {
  std::string token = absl::StrCat(Enc(R"({"alg":"RS256","kid":"k1","typ":"JWT"})"), ".",
                                   Enc(R"({"sub":"a","n":1})"), ".", Enc("sig"));
  absl::StatusOr<Jws> jws = DecodeJws(token);
  ASSERT_TRUE(jws.ok()) << jws.status();
  EXPECT_EQ(jws->alg, "RS256");
  EXPECT_EQ(jws->kid, "k1");
  EXPECT_EQ(jws->typ, "JWT");
  EXPECT_EQ(jws->payload.fields().at("sub").string_value(), "a");
  EXPECT_EQ(jws->signature, "sig");
  EXPECT_EQ(jws->signing_input, token.substr(0, token.rfind('.')));
}

TEST(DecodeJws, MalformedInputs) {
  const std::string h = Enc(R"({"alg":"RS256"})");
  const std::string p = Enc(R"({"sub":"a"})");
  const std::string s = Enc("signature");
  struct Case {
    std::string name;
    std::string token;
    std::string want;  // in the message
  };
  const Case cases[] = {
      {"empty", "", "empty token"},
      {"one part", h, "1 parts"},
      {"two parts", absl::StrCat(h, ".", p), "2 parts"},
      {"four parts", absl::StrCat(h, ".", p, ".", s, ".", s), "4 parts"},
      {"five parts (JWE)", absl::StrCat(h, ".", p, ".", s, ".", s, ".", s), "5 parts"},
      {"empty header", absl::StrCat(".", p, ".", s), "empty header"},
      {"empty payload", absl::StrCat(h, "..", s), "empty header or payload"},
      {"padded header", absl::StrCat(Enc(R"({"alg":"RS256"} )"), "=.", p, ".", s), "padding"},
      {"padded signature", absl::StrCat(h, ".", p, ".", s, "=="), "signature"},
      {"std alphabet", absl::StrCat(h, ".", p, ".", "ab+/"), "invalid character"},
      {"space", absl::StrCat(h, " .", p, ".", s), "invalid character"},
      {"header not json", absl::StrCat(Enc("not json"), ".", p, ".", s), "header: json"},
      {"header array", absl::StrCat(Enc("[1]"), ".", p, ".", s), "header: json"},
      {"payload not json", absl::StrCat(h, ".", Enc("{\"sub\":"), ".", s), "payload: json"},
      {"payload string", absl::StrCat(h, ".", Enc("\"x\""), ".", s), "payload: json"},
      {"duplicate claim", absl::StrCat(h, ".", Enc(R"({"sub":"a","sub":"b"})"), ".", s),
       "payload: json"},
      {"invalid utf-8", absl::StrCat(h, ".", Enc("{\"sub\":\"\xff\"}"), ".", s), "payload: json"},
      {"no alg", absl::StrCat(Enc(R"({"kid":"a"})"), ".", p, ".", s), "no \"alg\""},
      {"alg number", absl::StrCat(Enc(R"({"alg":256})"), ".", p, ".", s), "\"alg\" is not"},
      {"kid number", absl::StrCat(Enc(R"({"alg":"RS256","kid":1})"), ".", p, ".", s),
       "\"kid\" is not"},
      {"crit", absl::StrCat(Enc(R"({"alg":"RS256","crit":["b64"],"b64":false})"), ".", p, ".", s),
       "crit"},
      {"oversized", std::string(kMaxTokenBytes + 1, 'a'), "bytes > max"},
      {"garbage", "\x01\x02\x03.\x04.\xff", "invalid character"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Jws> jws = DecodeJws(c.token);
    ASSERT_FALSE(jws.ok()) << c.name;
    EXPECT_EQ(ReasonOf(jws.status()), "malformed") << c.name << ": " << jws.status();
    EXPECT_THAT(std::string(jws.status().message()), HasSubstr(c.want)) << c.name;
  }
}

TEST(DecodeJws, NeverEchoesTheToken) {
  // Parser errors carry a snippet of the input after their first line; it must be dropped.
  std::string secretish = "SECRETSECRETSECRET";
  std::string token =
      absl::StrCat(Enc(R"({"alg":"RS256"})"), ".",
                   Enc(absl::StrCat("{\"sub\":\"", secretish, "\" x}")), ".", "c2ln");
  absl::StatusOr<Jws> jws = DecodeJws(token);
  ASSERT_FALSE(jws.ok());
  EXPECT_THAT(std::string(jws.status().message()), ::testing::Not(HasSubstr(secretish)));
  EXPECT_THAT(std::string(jws.status().message()), ::testing::Not(HasSubstr("\n")));
}

class VerifySignatureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    idp_ = TestIssuer::Create("https://idp.test").value().release();
    ASSERT_TRUE(idp_->AddKey("rsa", TestKeyKind::kRsa2048).ok());
    ASSERT_TRUE(idp_->AddKey("ec", TestKeyKind::kP256).ok());
    ASSERT_TRUE(idp_->AddKey("ed", TestKeyKind::kEd25519).ok());
    ASSERT_TRUE(idp_->AddKey("weak", TestKeyKind::kRsa1024).ok());
    keys_ = new KeySet(KeySet::Parse(idp_->Jwks({"rsa", "ec", "ed"})).value());
  }
  static void TearDownTestSuite() {
    delete keys_;
    delete idp_;
  }

  static EVP_PKEY* Key(absl::string_view kid) { return keys_->WithKid(kid).at(0)->key.get(); }

  // Signs `alg` with `kid` and returns the decoded JWS.
  static Jws Signed(const std::string& kid, absl::string_view alg) {
    absl::StatusOr<std::string> token =
        idp_->Mint(kid, alg, idp_->StandardClaims(absl::FromUnixSeconds(1767225600)));
    EXPECT_TRUE(token.ok()) << token.status();
    return DecodeJws(*token).value();
  }

  static TestIssuer* idp_;
  static KeySet* keys_;
};
TestIssuer* VerifySignatureTest::idp_ = nullptr;
KeySet* VerifySignatureTest::keys_ = nullptr;

TEST_F(VerifySignatureTest, EachAlgorithmVerifiesAndDetectsTampering) {
  struct Case {
    const char* kid;
    Alg alg;
  };
  for (Case c : {Case{"rsa", Alg::kRS256}, Case{"rsa", Alg::kPS256}, Case{"ec", Alg::kES256},
                 Case{"ed", Alg::kEdDSA}}) {
    SCOPED_TRACE(AlgName(c.alg));
    Jws jws = Signed(c.kid, AlgName(c.alg));
    EXPECT_TRUE(VerifySignature(c.alg, Key(c.kid), jws.signing_input, jws.signature).ok());

    std::string input = jws.signing_input;
    input[input.size() - 2] ^= 1;
    EXPECT_EQ(ReasonOf(VerifySignature(c.alg, Key(c.kid), input, jws.signature)), "bad_signature");

    std::string sig = jws.signature;
    sig[sig.size() / 2] ^= 0x40;
    EXPECT_EQ(ReasonOf(VerifySignature(c.alg, Key(c.kid), jws.signing_input, sig)),
              "bad_signature");
    EXPECT_EQ(
        ReasonOf(VerifySignature(c.alg, Key(c.kid), jws.signing_input, jws.signature.substr(1))),
        "bad_signature");
    EXPECT_EQ(ReasonOf(VerifySignature(c.alg, Key(c.kid), jws.signing_input, jws.signature + "x")),
              "bad_signature");
    EXPECT_EQ(ReasonOf(VerifySignature(c.alg, Key(c.kid), jws.signing_input, "")), "bad_signature");
  }
}

TEST_F(VerifySignatureTest, Rs256AndPs256AreNotInterchangeable) {
  Jws rs = Signed("rsa", "RS256");
  Jws ps = Signed("rsa", "PS256");
  EXPECT_EQ(ReasonOf(VerifySignature(Alg::kPS256, Key("rsa"), rs.signing_input, rs.signature)),
            "bad_signature");
  EXPECT_EQ(ReasonOf(VerifySignature(Alg::kRS256, Key("rsa"), ps.signing_input, ps.signature)),
            "bad_signature");
}

TEST_F(VerifySignatureTest, KeyOfAnotherTypeNeverVerifies) {
  Jws es = Signed("ec", "ES256");
  EXPECT_EQ(ReasonOf(VerifySignature(Alg::kES256, Key("rsa"), es.signing_input, es.signature)),
            "alg_not_allowed");
  EXPECT_EQ(ReasonOf(VerifySignature(Alg::kEdDSA, Key("ec"), es.signing_input, es.signature)),
            "alg_not_allowed");
  Jws rs = Signed("rsa", "RS256");
  EXPECT_EQ(ReasonOf(VerifySignature(Alg::kRS256, Key("ed"), rs.signing_input, rs.signature)),
            "alg_not_allowed");
  EXPECT_EQ(ReasonOf(VerifySignature(Alg::kRS256, nullptr, rs.signing_input, rs.signature)),
            "bad_signature");
}

TEST_F(VerifySignatureTest, Es256ZeroAndOutOfRangeScalarsFail) {
  Jws es = Signed("ec", "ES256");
  EXPECT_EQ(
      ReasonOf(VerifySignature(Alg::kES256, Key("ec"), es.signing_input, std::string(64, '\0'))),
      "bad_signature");
  EXPECT_EQ(
      ReasonOf(VerifySignature(Alg::kES256, Key("ec"), es.signing_input, std::string(64, '\xff'))),
      "bad_signature");
}

// ES256 malleability: (r, n-s) verifies whenever (r, s) does. With require_low_s the
// high half is refused before verification, with its own message; the low half passes.
TEST_F(VerifySignatureTest, Es256HighSRefusedWhenLowSIsRequired) {
  const SignatureRules strict{.require_low_s = true};
  bool saw_high = false;
  bool saw_low = false;
  // OpenSSL does not normalise s: sign until both halves have been seen (p = 2^-40 of
  // missing one in 40 tries).
  for (int i = 0; i < 40 && !(saw_high && saw_low); ++i) {
    Jws jws = Signed("ec", "ES256");
    std::string low = IsHighS(jws.signature) ? testing::FlipEs256S(jws.signature) : jws.signature;
    std::string high = testing::FlipEs256S(low);
    (IsHighS(jws.signature) ? saw_high : saw_low) = true;
    ASSERT_FALSE(IsHighS(low));
    ASSERT_TRUE(IsHighS(high));
    // Both verify without the rule: that is the malleability.
    EXPECT_TRUE(VerifySignature(Alg::kES256, Key("ec"), jws.signing_input, high).ok());
    EXPECT_TRUE(VerifySignature(Alg::kES256, Key("ec"), jws.signing_input, low).ok());
    EXPECT_TRUE(VerifySignature(Alg::kES256, Key("ec"), jws.signing_input, low, strict).ok());
    absl::Status s = VerifySignature(Alg::kES256, Key("ec"), jws.signing_input, high, strict);
    EXPECT_EQ(ReasonOf(s), "bad_signature");
    EXPECT_THAT(std::string(s.message()), StartsWith("bad_signature: high_s: "));
  }
  EXPECT_TRUE(saw_high && saw_low);
}

TEST(IsHighS, BoundaryIsHalfTheOrder) {
  // n/2 itself is low; n/2 + 1 is high.
  std::string half = std::string(32, '\x01') +
                     std::string("\x7f\xff\xff\xff\x80\x00\x00\x00\x7f\xff\xff\xff\xff\xff\xff\xff"
                                 "\xde\x73\x7d\x56\xd3\x8b\xcf\x42\x79\xdc\xe5\x61\x7e\x31\x92\xa8",
                                 32);
  EXPECT_FALSE(IsHighS(half));
  std::string above = half;
  above[63] = static_cast<char>(0xa9);
  EXPECT_TRUE(IsHighS(above));
  EXPECT_FALSE(IsHighS(std::string(64, '\0')));
  EXPECT_TRUE(IsHighS(std::string(64, '\xff')));
  EXPECT_FALSE(IsHighS(std::string(63, '\xff')));  // wrong length: not ES256 at all
}

TEST_F(VerifySignatureTest, Rsa1024KeyRefusedEvenWithAValidSignature) {
  // The JWKS parser skips such keys; VerifySignature refuses them too (defense in depth).
  std::string pem = idp_->PublicKeyPem("weak");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  EvpPkeyPtr weak(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(weak, nullptr);
  Jws jws = Signed("weak", "RS256");
  absl::Status s = VerifySignature(Alg::kRS256, weak.get(), jws.signing_input, jws.signature);
  EXPECT_EQ(ReasonOf(s), "bad_signature");
  EXPECT_THAT(std::string(s.message()), HasSubstr("1024 bits"));
}

}  // namespace
}  // namespace interlock::auth::jwt
