// jwks: JWK Set parsing into OpenSSL keys; unusable keys are skipped with a note.
#include "userspace/auth/jwt/jwks.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_issuer.h"

namespace interlock::auth::jwt {
namespace {

using ::interlock::testing::Base64Url;
using ::interlock::testing::JsonObject;
using ::interlock::testing::TestIssuer;
using ::interlock::testing::TestKeyKind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class KeySetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    idp_ = TestIssuer::Create("https://idp.test").value().release();
    ASSERT_TRUE(idp_->AddKey("rsa", TestKeyKind::kRsa2048).ok());
    ASSERT_TRUE(idp_->AddKey("ec", TestKeyKind::kP256).ok());
    ASSERT_TRUE(idp_->AddKey("ed", TestKeyKind::kEd25519).ok());
    ASSERT_TRUE(idp_->AddKey("weak", TestKeyKind::kRsa1024).ok());
  }
  static void TearDownTestSuite() { delete idp_; }
  static TestIssuer* idp_;
};
TestIssuer* KeySetTest::idp_ = nullptr;

TEST_F(KeySetTest, ParsesEachKeyType) {
  std::vector<std::string> notes;
  absl::StatusOr<KeySet> keys = KeySet::Parse(idp_->Jwks({"rsa", "ec", "ed"}), &notes);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(notes, IsEmpty());
  ASSERT_THAT(keys->keys(), SizeIs(3));
  const Jwk& rsa = *keys->WithKid("rsa").at(0);
  EXPECT_EQ(rsa.type, KeyType::kRsa);
  EXPECT_EQ(rsa.bits, 2048);
  EXPECT_FALSE(rsa.alg.has_value());
  EXPECT_TRUE(rsa.Fits(Alg::kRS256));
  EXPECT_TRUE(rsa.Fits(Alg::kPS256));
  EXPECT_FALSE(rsa.Fits(Alg::kES256));
  const Jwk& ec = *keys->WithKid("ec").at(0);
  EXPECT_EQ(ec.type, KeyType::kEc);
  EXPECT_TRUE(ec.Fits(Alg::kES256));
  EXPECT_FALSE(ec.Fits(Alg::kEdDSA));
  const Jwk& ed = *keys->WithKid("ed").at(0);
  EXPECT_EQ(ed.type, KeyType::kOkp);
  EXPECT_TRUE(ed.Fits(Alg::kEdDSA));
  EXPECT_THAT(keys->Fitting(Alg::kES256), ElementsAre(&ec));
  EXPECT_THAT(keys->WithKid("nope"), IsEmpty());
}

TEST_F(KeySetTest, AlgMemberPinsTheKey) {
  absl::StatusOr<KeySet> keys = KeySet::Parse(TestIssuer::JwksOf(
      {idp_->PublicJwk("rsa").Str("alg", "PS256").Str("use", "sig").Strs("key_ops", {"verify"})}));
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_THAT(keys->keys(), SizeIs(1));
  EXPECT_TRUE(keys->keys()[0].Fits(Alg::kPS256));
  EXPECT_FALSE(keys->keys()[0].Fits(Alg::kRS256));
}

TEST_F(KeySetTest, UnusableKeysAreSkippedWithANote) {
  JsonObject p384 = idp_->PublicJwk("ec");
  p384.Str("kid", "p384").Str("crv", "P-384");
  JsonObject short_x = idp_->PublicJwk("ec");
  short_x.Str("kid", "short-x").Str("x", Base64Url(std::string(31, '\x01')));
  JsonObject off_curve = idp_->PublicJwk("ec");
  off_curve.Str("kid", "off-curve").Str("y", Base64Url(std::string(32, '\x01')));
  JsonObject x448 = idp_->PublicJwk("ed");
  x448.Str("kid", "x448").Str("crv", "X448");
  JsonObject ed_short = idp_->PublicJwk("ed");
  ed_short.Str("kid", "ed-short").Str("x", Base64Url(std::string(31, '\x01')));
  JsonObject padded_n = idp_->PublicJwk("rsa");
  padded_n.Str("kid", "padded").Raw("n", "\"AQAB==\"");
  JsonObject even = idp_->PublicJwk("rsa");
  even.Str("kid", "even-e").Str("e", Base64Url("\x01\x00\x00"));
  JsonObject private_rsa = idp_->PublicJwk("rsa");
  private_rsa.Str("kid", "private").Str("d", "AQAB");

  std::vector<JsonObject> jwks = {
      JsonObject().Str("kty", "oct").Str("kid", "hmac").Str("k", "c2VjcmV0"),
      idp_->PublicJwk("weak"),
      p384,
      short_x,
      off_curve,
      x448,
      ed_short,
      padded_n,
      even,
      private_rsa,
      idp_->PublicJwk("rsa").Str("kid", "enc").Str("use", "enc"),
      idp_->PublicJwk("rsa").Str("kid", "wrap").Strs("key_ops", {"wrapKey"}),
      idp_->PublicJwk("rsa").Str("kid", "oaep").Str("alg", "RSA-OAEP"),
      idp_->PublicJwk("rsa").Str("kid", "rs512").Str("alg", "RS512"),
      idp_->PublicJwk("rsa").Str("kid", "mismatch").Str("alg", "ES256"),
      idp_->PublicJwk("rsa").Str("kid", "hs").Str("alg", "HS256"),
      JsonObject().Str("kid", "no-kty"),
      JsonObject().Str("kty", "RSA").Str("kid", "no-n").Str("e", "AQAB"),
      idp_->PublicJwk("rsa").Int("kty", 1).Str("kid", "kty-number"),
      idp_->PublicJwk("rsa"),  // the one good key
  };
  std::string doc = TestIssuer::JwksOf(jwks);
  // A non-object entry too.
  doc.insert(doc.find('[') + 1, "\"junk\",");
  std::vector<std::string> notes;
  absl::StatusOr<KeySet> keys = KeySet::Parse(doc, &notes);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_THAT(keys->keys(), SizeIs(1));
  EXPECT_EQ(keys->keys()[0].kid, "rsa");
  ASSERT_THAT(notes, SizeIs(jwks.size()));  // every other entry, the junk one included
  std::string all = absl::StrJoin(notes, "\n");
  EXPECT_THAT(all, HasSubstr("not an object"));
  EXPECT_THAT(all, HasSubstr("(kid \"hmac\"): kty \"oct\" not supported"));
  EXPECT_THAT(all, HasSubstr("(kid \"weak\"): rsa key of 1024 bits < minimum 2048"));
  EXPECT_THAT(all, HasSubstr("EC curve \"P-384\" not supported"));
  EXPECT_THAT(all, HasSubstr("(kid \"short-x\"): P-256 coordinates of 31/32 bytes"));
  EXPECT_THAT(all, HasSubstr("(kid \"off-curve\"): openssl refused the EC key"));
  EXPECT_THAT(all, HasSubstr("OKP curve \"X448\" not supported"));
  EXPECT_THAT(all, HasSubstr("(kid \"ed-short\"): Ed25519 key of 31 bytes"));
  EXPECT_THAT(all, HasSubstr("(kid \"padded\"): \"n\": base64url: padding"));
  EXPECT_THAT(all, HasSubstr("(kid \"even-e\"): rsa exponent"));
  EXPECT_THAT(all, HasSubstr("(kid \"private\"): carries private or secret key member \"d\""));
  EXPECT_THAT(all, HasSubstr("(kid \"enc\"): \"use\" is \"enc\""));
  EXPECT_THAT(all, HasSubstr("(kid \"wrap\"): \"key_ops\" lacks \"verify\""));
  EXPECT_THAT(all, HasSubstr("(kid \"oaep\"): \"alg\" \"RSA-OAEP\" not supported"));
  EXPECT_THAT(all, HasSubstr("(kid \"rs512\"): \"alg\" \"RS512\" not supported"));
  EXPECT_THAT(all, HasSubstr("(kid \"mismatch\"): \"alg\" ES256 does not match kty RSA"));
  EXPECT_THAT(all, HasSubstr("(kid \"hs\"): \"alg\" \"HS256\" not supported"));
  EXPECT_THAT(all, HasSubstr("(kid \"no-kty\"): no \"kty\""));
  EXPECT_THAT(all, HasSubstr("(kid \"no-n\"): no \"n\""));
  EXPECT_THAT(all, HasSubstr("(kid \"kty-number\"): \"kty\" is not a string"));
}

TEST_F(KeySetTest, DocumentErrors) {
  EXPECT_FALSE(KeySet::Parse("").ok());
  EXPECT_FALSE(KeySet::Parse("not json").ok());
  EXPECT_FALSE(KeySet::Parse("[]").ok());
  EXPECT_FALSE(KeySet::Parse("{}").ok());
  EXPECT_FALSE(KeySet::Parse(R"({"keys":{}})").ok());
  std::string huge = absl::StrCat(R"({"keys":[],"pad":")", std::string(kMaxJwksBytes, 'a'), "\"}");
  absl::StatusOr<KeySet> big = KeySet::Parse(huge);
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("bytes > max"));
  // An empty set is a valid document (the verifier decides it is unusable).
  absl::StatusOr<KeySet> none = KeySet::Parse(R"({"keys":[]})");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(KeySetTest, KeyCountIsBounded) {
  std::vector<JsonObject> many(kMaxJwksKeys + 3, idp_->PublicJwk("ed"));
  std::vector<std::string> notes;
  absl::StatusOr<KeySet> keys = KeySet::Parse(TestIssuer::JwksOf(many), &notes);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), kMaxJwksKeys);
  EXPECT_THAT(notes, SizeIs(3));
}

TEST_F(KeySetTest, SameKidOnKeysOfDifferentTypes) {
  absl::StatusOr<KeySet> keys = KeySet::Parse(TestIssuer::JwksOf(
      {idp_->PublicJwk("rsa").Str("kid", "k"), idp_->PublicJwk("ec").Str("kid", "k")}));
  ASSERT_TRUE(keys.ok());
  EXPECT_THAT(keys->WithKid("k"), SizeIs(2));
}

}  // namespace
}  // namespace interlock::auth::jwt
