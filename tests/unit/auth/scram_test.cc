#include "userspace/auth/scram.h"

#include <openssl/objects.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace interlock::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// RFC 7677 section 3.
constexpr absl::string_view kNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr absl::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr absl::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr absl::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

ScramClient Rfc7677Client(absl::string_view password = "pencil") {
  absl::StatusOr<ScramClient> c =
      ScramClient::Create(password, ChannelBinding::None(), std::string(kNonce), "user");
  if (!c.ok()) abort();
  return *std::move(c);
}

TEST(ScramClient, Rfc7677TestVector) {
  ScramClient c = Rfc7677Client();
  EXPECT_EQ(c.mechanism(), "SCRAM-SHA-256");
  EXPECT_EQ(c.ClientFirstMessage(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  absl::StatusOr<std::string> final = c.HandleServerFirst(kServerFirst);
  ASSERT_TRUE(final.ok()) << final.status();
  EXPECT_EQ(*final, kClientFinal);
  EXPECT_TRUE(c.HandleServerFinal(kServerFinal).ok());
  EXPECT_EQ(c.saslprep_outcome(), SaslPrepOutcome::kAscii);
}

TEST(ScramClient, PasswordIsSaslPrepped) {
  // "pen<soft hyphen>cil" preps to "pencil": the RFC vector must come out unchanged.
  ScramClient c = Rfc7677Client("pen\u00ADcil");
  EXPECT_EQ(c.saslprep_outcome(), SaslPrepOutcome::kPrepared);
  absl::StatusOr<std::string> final = c.HandleServerFirst(kServerFirst);
  ASSERT_TRUE(final.ok()) << final.status();
  EXPECT_EQ(*final, kClientFinal);
}

TEST(ScramClient, PostgresStyleEmptyUserName) {
  absl::StatusOr<ScramClient> c =
      ScramClient::Create("pencil", ChannelBinding::None(), std::string(kNonce));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ClientFirstMessage(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
}

TEST(ScramClient, UserNameIsEscaped) {
  absl::StatusOr<ScramClient> c =
      ScramClient::Create("pencil", ChannelBinding::None(), "abc", "a,b=c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ClientFirstMessage(), "n,,n=a=2Cb=3Dc,r=abc");
}

TEST(ScramClient, WrongServerSignatureIsRejected) {
  ScramClient c = Rfc7677Client();
  ASSERT_TRUE(c.HandleServerFirst(kServerFirst).ok());
  // Well-formed, first character changed.
  absl::Status st = c.HandleServerFinal("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("signature mismatch"));
}

TEST(ScramClient, WrongPasswordGivesDifferentProofAndSignature) {
  ScramClient c = Rfc7677Client("pencil2");
  absl::StatusOr<std::string> final = c.HandleServerFirst(kServerFirst);
  ASSERT_TRUE(final.ok());
  EXPECT_NE(*final, kClientFinal);
  EXPECT_EQ(c.HandleServerFinal(kServerFinal).code(), absl::StatusCode::kUnauthenticated);
}

TEST(ScramClient, NonceMustExtendOurs) {
  const char* bad[] = {
      "r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2R,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  // changed
      "r=rOprNGfwEbeRWgbNEkq,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",              // prefix of ours
      "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",             // no server part
      "r=%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",   // server part only
  };
  for (const char* msg : bad) {
    ScramClient c = Rfc7677Client();
    absl::StatusOr<std::string> r = c.HandleServerFirst(msg);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << msg;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("nonce")) << msg;
  }
}

struct MalformedCase {
  const char* name;
  std::string message;
};

TEST(ScramClient, MalformedServerFirstTable) {
  const std::string r = "r=rOprNGfwEbeRWgbNEkqO%hvY";
  const std::string s = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
  const MalformedCase cases[] = {
      {"empty", ""},
      {"only_nonce", r},
      {"missing_iterations", r + "," + s},
      {"wrong_order", s + "," + r + ",i=4096"},
      {"unknown_attribute", r + "," + s + ",x=4096"},
      {"mandatory_extension", "m=ext," + r + "," + s + ",i=4096"},
      {"extension_after_i", r + "," + s + ",i=4096,x=1"},
      {"trailing_comma", r + "," + s + ",i=4096,"},
      {"attribute_without_value_sign", r + "," + s + ",i4096"},
      {"uppercase_attribute", "R=rOprNGfwEbeRWgbNEkqO%hvY," + s + ",i=4096"},
      {"empty_salt", r + ",s=,i=4096"},
      {"salt_bad_char", r + ",s=W22ZaJ0SNY7soEsUEjb6g!==,i=4096"},
      {"salt_bad_length", r + ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096"},
      {"salt_noncanonical", r + ",s=W22ZaJ0SNY7soEsUEjb6gR==,i=4096"},
      {"salt_data_after_padding", r + ",s=W2==W22Z,i=4096"},
      {"iterations_empty", r + "," + s + ",i="},
      {"iterations_text", r + "," + s + ",i=abc"},
      {"iterations_suffix", r + "," + s + ",i=4096x"},
      {"iterations_negative", r + "," + s + ",i=-1"},
      {"iterations_plus", r + "," + s + ",i=+4096"},
      {"iterations_space", r + "," + s + ",i= 4096"},
      {"iterations_zero", r + "," + s + ",i=0"},
      {"iterations_above_max", r + "," + s + ",i=10000001"},
      {"iterations_overflow", r + "," + s + ",i=99999999999999999999999999"},
      {"nul_byte", r + std::string("\0", 1) + "," + s + ",i=4096"},
      {"high_byte", r + "\xC3\xA9," + s + ",i=4096"},
      {"server_error_in_first", "e=other-error"},
      {"oversized", r + std::string(kMaxScramMessageBytes, 'a') + "," + s + ",i=4096"},
  };
  for (const MalformedCase& c : cases) {
    ScramClient client = Rfc7677Client();
    absl::StatusOr<std::string> got = client.HandleServerFirst(c.message);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name << ": " << got.status();
    // The client is spent after an error.
    EXPECT_EQ(client.HandleServerFinal(kServerFinal).code(), absl::StatusCode::kFailedPrecondition)
        << c.name;
  }
}

TEST(ScramClient, IterationBounds) {
  const std::string prefix =
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=";
  EXPECT_TRUE(Rfc7677Client().HandleServerFirst(prefix + "1").ok());
  EXPECT_TRUE(Rfc7677Client().HandleServerFirst(prefix + "0004096").ok());
  EXPECT_EQ(Rfc7677Client().HandleServerFirst(prefix + "0").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Rfc7677Client()
                .HandleServerFirst(absl::StrCat(prefix, kMaxScramIterations + 1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScramClient, MalformedServerFinalTable) {
  const MalformedCase cases[] = {
      {"empty", ""},
      {"no_value", "v="},
      {"short_signature", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4"},
      {"truncated_signature", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9"},
      {"not_base64", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G!="},
      {"extension_after_v", std::string(kServerFinal) + ",x=1"},
      {"unknown_attribute", "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
      {"nul_byte", std::string(kServerFinal) + std::string("\0", 1)},
      {"oversized", "v=" + std::string(kMaxScramMessageBytes, 'A')},
  };
  for (const MalformedCase& c : cases) {
    ScramClient client = Rfc7677Client();
    ASSERT_TRUE(client.HandleServerFirst(kServerFirst).ok());
    absl::Status st = client.HandleServerFinal(c.message);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << st;
  }
}

TEST(ScramClient, ServerErrorAttribute) {
  ScramClient c = Rfc7677Client();
  ASSERT_TRUE(c.HandleServerFirst(kServerFirst).ok());
  absl::Status st = c.HandleServerFinal("e=invalid-proof");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(st.message()), HasSubstr("invalid-proof"));
}

TEST(ScramClient, ServerErrorIsSanitizedAndBounded) {
  ScramClient c = Rfc7677Client();
  ASSERT_TRUE(c.HandleServerFirst(kServerFirst).ok());
  absl::Status st = c.HandleServerFinal("e=bad\n\x1b[31m" + std::string(10000, 'x'));
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(st.message()), Not(HasSubstr("\n")));
  EXPECT_THAT(std::string(st.message()), Not(HasSubstr("\x1b")));
  EXPECT_LT(st.message().size(), 300u);
}

TEST(ScramClient, CallsOutOfOrderFail) {
  ScramClient c = Rfc7677Client();
  EXPECT_EQ(c.HandleServerFinal(kServerFinal).code(), absl::StatusCode::kFailedPrecondition);
  ScramClient d = Rfc7677Client();
  ASSERT_TRUE(d.HandleServerFirst(kServerFirst).ok());
  EXPECT_EQ(d.HandleServerFirst(kServerFirst).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ScramClient e = Rfc7677Client();
  ASSERT_TRUE(e.HandleServerFirst(kServerFirst).ok());
  ASSERT_TRUE(e.HandleServerFinal(kServerFinal).ok());
  EXPECT_EQ(e.HandleServerFinal(kServerFinal).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ScramClient, BadClientNonceIsRefused) {
  for (std::string nonce : {std::string(""), std::string("a,b"), std::string("a b"),
                            std::string("a\x01"), std::string(kMaxClientNonceBytes + 1, 'a')}) {
    EXPECT_EQ(ScramClient::Create("pencil", ChannelBinding::None(), nonce).status().code(),
              absl::StatusCode::kInvalidArgument)
        << nonce;
  }
}

// The binding values below were built by hand, outside this code:
//   { printf 'p=tls-server-end-point,,'; <32 bytes 00..1f>; } | base64 -w0
// and the proofs/signatures with Python's hashlib/hmac (pbkdf2_hmac) from RFC 5802.
std::string HashBytes() {
  std::string h;
  for (int i = 0; i < 32; ++i) h.push_back(static_cast<char>(i));
  return h;
}

TEST(ScramClient, TlsServerEndPointBinding) {
  ChannelBinding cb = ChannelBinding::TlsServerEndPoint(HashBytes());
  EXPECT_EQ(cb.mechanism(), "SCRAM-SHA-256-PLUS");
  EXPECT_EQ(cb.gs2_header(), "p=tls-server-end-point,,");
  absl::StatusOr<ScramClient> c = ScramClient::Create("pencil", cb, std::string(kNonce));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->mechanism(), "SCRAM-SHA-256-PLUS");
  EXPECT_EQ(c->ClientFirstMessage(), "p=tls-server-end-point,,n=,r=rOprNGfwEbeRWgbNEkqO");
  absl::StatusOr<std::string> final = c->HandleServerFirst(kServerFirst);
  ASSERT_TRUE(final.ok()) << final.status();
  EXPECT_EQ(*final,
            "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,"
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=Q8h71kjaoMzNI7dPksDrhRE/5mTUObF0fUHVIgBOWQg=");
  EXPECT_TRUE(c->HandleServerFinal("v=ykwoqH8mLqO5AQCeuwwf6lsj9f8zyJZT/CcvAbN4Ssc=").ok());
}

TEST(ScramClient, ClientSupportsBindingServerDidNotOffer) {
  ChannelBinding cb = ChannelBinding::NotOfferedByServer();
  EXPECT_EQ(cb.mechanism(), "SCRAM-SHA-256");
  absl::StatusOr<ScramClient> c = ScramClient::Create("pencil", cb, std::string(kNonce));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ClientFirstMessage(), "y,,n=,r=rOprNGfwEbeRWgbNEkqO");
  absl::StatusOr<std::string> final = c->HandleServerFirst(kServerFirst);
  ASSERT_TRUE(final.ok()) << final.status();
  EXPECT_EQ(*final,
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=VpuC5DGQa5ro9tXE9MnKs69NH1nxnuregZZcclqIGfM=");
  EXPECT_TRUE(c->HandleServerFinal("v=FOmOj9BpTGwvnzwBtWQjBaPmVxT9I8IeHBOhcIPu3us=").ok());
}

enum class Want { kNone, kNotOffered, kPlus, kError };

struct SelectCase {
  const char* name;
  std::vector<std::string> offered;
  bool tls;
  ChannelBindingPolicy policy;
  Want want;
  absl::StatusCode code = absl::StatusCode::kOk;
};

TEST(SelectMechanism, MirrorsLibpq) {
  const std::string kPlain(kScramSha256), kPlus(kScramSha256Plus);
  using P = ChannelBindingPolicy;
  const SelectCase cases[] = {
      {"plain_tcp", {kPlain}, false, P::kPrefer, Want::kNone},
      {"tls_plus_offered", {kPlus, kPlain}, true, P::kPrefer, Want::kPlus},
      {"tls_plus_offered_second", {kPlain, kPlus}, true, P::kPrefer, Want::kPlus},
      {"tls_plus_not_offered", {kPlain}, true, P::kPrefer, Want::kNotOffered},
      {"tls_disabled", {kPlus, kPlain}, true, P::kDisable, Want::kNone},
      {"tls_required_and_offered", {kPlus, kPlain}, true, P::kRequire, Want::kPlus},
      {"tls_required_not_offered",
       {kPlain},
       true,
       P::kRequire,
       Want::kError,
       absl::StatusCode::kFailedPrecondition},
      {"tcp_required",
       {kPlain},
       false,
       P::kRequire,
       Want::kError,
       absl::StatusCode::kFailedPrecondition},
      {"plus_over_plain_tcp",
       {kPlus, kPlain},
       false,
       P::kPrefer,
       Want::kError,
       absl::StatusCode::kFailedPrecondition},
      {"nothing_offered", {}, false, P::kPrefer, Want::kError, absl::StatusCode::kUnimplemented},
      {"unknown_only",
       {"SCRAM-SHA-1", "OAUTHBEARER"},
       true,
       P::kPrefer,
       Want::kError,
       absl::StatusCode::kUnimplemented},
  };
  EXPECT_EQ(SelectMechanism({kPlus, kPlain}, std::string(), P::kPrefer).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const SelectCase& c : cases) {
    std::optional<std::string> hash;
    if (c.tls) hash = HashBytes();
    absl::StatusOr<ChannelBinding> got = SelectMechanism(c.offered, hash, c.policy);
    if (c.want == Want::kError) {
      EXPECT_EQ(got.status().code(), c.code) << c.name << ": " << got.status();
      continue;
    }
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
    switch (c.want) {
      case Want::kNone:
        EXPECT_EQ(got->gs2_header(), "n,,") << c.name;
        EXPECT_EQ(got->mechanism(), kScramSha256) << c.name;
        break;
      case Want::kNotOffered:
        EXPECT_EQ(got->gs2_header(), "y,,") << c.name;
        EXPECT_EQ(got->mechanism(), kScramSha256) << c.name;
        break;
      case Want::kPlus:
        EXPECT_EQ(got->gs2_header(), "p=tls-server-end-point,,") << c.name;
        EXPECT_EQ(got->mechanism(), kScramSha256Plus) << c.name;
        EXPECT_EQ(got->data(), HashBytes()) << c.name;
        break;
      case Want::kError:
        break;
    }
  }
}

TEST(RandomNonce, PrintableBase64AndFresh) {
  std::set<std::string> seen;
  for (int i = 0; i < 16; ++i) {
    absl::StatusOr<std::string> n = RandomNonce();
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n->size(), 32u);
    EXPECT_EQ(n->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789+/"),
              std::string::npos);
    EXPECT_TRUE(ScramClient::Create("p", ChannelBinding::None(), *n).ok());
    seen.insert(*n);
  }
  EXPECT_EQ(seen.size(), 16u);
}

TEST(TlsServerEndPointHash, UsesSignatureHashUpgradingMd5AndSha1) {
  // printf hello | openssl dgst -sha256 / -sha384 / -sha512
  const std::string sha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
  const std::string sha384 =
      "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bd"
      "f5f6a13de828684f";
  const std::string sha512 =
      "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d"
      "7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043";
  auto hex = [](const std::string& s) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
    return out;
  };
  struct {
    int nid;
    const std::string& want;
  } cases[] = {
      {NID_sha256WithRSAEncryption, sha256}, {NID_md5WithRSAEncryption, sha256},
      {NID_sha1WithRSAEncryption, sha256},   {NID_ecdsa_with_SHA1, sha256},
      {NID_ecdsa_with_SHA256, sha256},       {NID_sha384WithRSAEncryption, sha384},
      {NID_ecdsa_with_SHA384, sha384},       {NID_sha512WithRSAEncryption, sha512},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::string> h = TlsServerEndPointHash("hello", c.nid);
    ASSERT_TRUE(h.ok()) << OBJ_nid2sn(c.nid) << ": " << h.status();
    EXPECT_EQ(hex(*h), c.want) << OBJ_nid2sn(c.nid);
  }
}

TEST(TlsServerEndPointHash, UndefinedWithoutASingleHash) {
  for (int nid : {NID_ED25519, NID_ED448, NID_rsassaPss, NID_undef, 999999}) {
    EXPECT_EQ(TlsServerEndPointHash("hello", nid).status().code(),
              absl::StatusCode::kInvalidArgument)
        << nid;
  }
}

}  // namespace
}  // namespace interlock::auth
