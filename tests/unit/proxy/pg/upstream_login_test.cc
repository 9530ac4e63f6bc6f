// UpstreamLogin: backend authentication messages in, the bytes interlockd answers with out.
// Expected answers (MD5 response, SCRAM proof and server signature) are computed here with
// OpenSSL directly, not with userspace/auth.
#include "userspace/proxy/pg/upstream_login.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/auth/secret.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::proxy::pg {
namespace {

namespace cpg = ::interlock::codec::pg;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

// RFC 7677 section 3.
constexpr absl::string_view kPassword = "pencil";
constexpr absl::string_view kNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr absl::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr absl::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
// The server-final of the RFC exchange, whose client-first named user "user".
constexpr absl::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// ---- Independent SCRAM-SHA-256 and MD5 (RFC 5802 section 3) ----------------------------------

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string Sha256(absl::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

struct ScramExpected {
  std::string client_final;  // c=...,r=...,p=...
  std::string server_final;  // v=...
};

// What a correct client sends and a genuine server answers, for `client_first_bare`
// ("n=,r=<nonce>") after `gs2_header` + `cb_data` (the bytes base64'ed into c=).
ScramExpected ComputeScram(absl::string_view password, absl::string_view gs2_and_cb_data,
                           absl::string_view client_first_bare, absl::string_view server_first) {
  // server_first = r=<nonce>,s=<salt>,i=<iterations>
  std::vector<std::string> parts = absl::StrSplit(server_first, ',');
  EXPECT_EQ(parts.size(), 3u);
  std::string salt;
  EXPECT_TRUE(absl::Base64Unescape(parts[1].substr(2), &salt));
  int iterations = std::stoi(parts[2].substr(2));

  unsigned char salted[32];
  EXPECT_EQ(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                              reinterpret_cast<const unsigned char*>(salt.data()),
                              static_cast<int>(salt.size()), iterations, EVP_sha256(),
                              sizeof salted, salted),
            1);
  std::string salted_password(reinterpret_cast<char*>(salted), sizeof salted);
  std::string client_key = Hmac(salted_password, "Client Key");
  std::string stored_key = Sha256(client_key);
  std::string server_key = Hmac(salted_password, "Server Key");

  std::string without_proof =
      absl::StrCat("c=", absl::Base64Escape(gs2_and_cb_data), ",", parts[0]);
  std::string auth_message = absl::StrCat(client_first_bare, ",", server_first, ",", without_proof);
  std::string client_signature = Hmac(stored_key, auth_message);
  std::string proof = client_key;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] ^= client_signature[i];
  return {absl::StrCat(without_proof, ",p=", absl::Base64Escape(proof)),
          absl::StrCat("v=", absl::Base64Escape(Hmac(server_key, auth_message)))};
}

std::string Md5Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr), 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

// ---- Messages --------------------------------------------------------------------------------

struct Msg {
  char type;
  std::string body;
};

// A whole encoded message as (type, body).
Msg MsgOf(absl::string_view wire) {
  absl::StatusOr<std::optional<cpg::Frame>> f = cpg::PeekFrame(wire, cpg::kMaxMessageBytes);
  EXPECT_TRUE(f.ok() && f->has_value() && (*f)->total_bytes == wire.size());
  if (!f.ok() || !f->has_value()) return {0, ""};
  return {(*f)->type, std::string((*f)->body)};
}

// An Authentication message with a raw code and payload (codes the encoder does not know).
Msg RawAuth(int32_t code, absl::string_view rest = "") {
  std::string body;
  for (int shift = 24; shift >= 0; shift -= 8) body.push_back(static_cast<char>(code >> shift));
  return {'R', absl::StrCat(body, rest)};
}

Msg AuthOk() { return MsgOf(cpg::EncodeAuthenticationOk()); }
Msg AuthCleartext() { return MsgOf(cpg::EncodeAuthenticationCleartextPassword()); }
Msg AuthMd5(std::array<char, 4> salt) { return MsgOf(cpg::EncodeAuthenticationMd5Password(salt)); }
Msg AuthSasl(std::vector<std::string> mechanisms) {
  return MsgOf(cpg::EncodeAuthenticationSasl(mechanisms));
}
Msg AuthSaslContinue(absl::string_view data) {
  return MsgOf(cpg::EncodeAuthenticationSaslContinue(data));
}
Msg AuthSaslFinal(absl::string_view data) {
  return MsgOf(cpg::EncodeAuthenticationSaslFinal(data));
}
Msg AuthCode(cpg::AuthCode code) { return MsgOf(cpg::Encode(cpg::Authentication{.code = code})); }

UpstreamLogin NewLogin(std::optional<std::string> password, std::string tls_cb_hash = "",
                       UpstreamLoginOptions options = {.user = "app", .database = "appdb"}) {
  std::optional<auth::Secret> secret;
  if (password.has_value()) secret.emplace(*password);
  // These tests are about the methods: the server counts as verified (see
  // UnverifiedUpstream* below for the other case).
  options.upstream_verified = true;
  return UpstreamLogin(std::move(options), std::move(secret), std::move(tls_cb_hash),
                       std::string(kNonce));
}

absl::StatusOr<UpstreamLogin::Step> Send(UpstreamLogin& login, const Msg& m) {
  return login.OnMessage(m.type, m.body);
}

// ---- Startup ---------------------------------------------------------------------------------

TEST(UpstreamLogin, StartupMessageCarriesUserDatabaseAndParams) {
  UpstreamLogin login =
      NewLogin(std::nullopt, "",
               {.user = "app",
                .database = "appdb",
                .params = {{"application_name", "agent"}, {"client_encoding", "UTF8"}}});
  std::string wire = login.StartupMessage();
  absl::StatusOr<std::optional<cpg::Frame>> f = cpg::PeekStartupFrame(wire);
  ASSERT_TRUE(f.ok() && f->has_value()) << f.status();
  EXPECT_EQ((*f)->total_bytes, wire.size());
  absl::StatusOr<cpg::StartupPacket> p = cpg::ParseStartupPacket((*f)->body);
  ASSERT_TRUE(p.ok()) << p.status();
  const auto* s = std::get_if<cpg::StartupMessage>(&*p);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->major_version, 3);
  EXPECT_EQ(s->minor_version, 0);
  EXPECT_THAT(s->params,
              ElementsAre(Pair("user", "app"), Pair("database", "appdb"),
                          Pair("application_name", "agent"), Pair("client_encoding", "UTF8")));
}

// ---- Issue 12 item 8: credentials only to a verified server ----------------------------------

// A server that is not verified (plain TCP, or TLS without verify-ca/verify-full) and a
// resource that did not accept the risk: every way of asking for the password fails
// before a byte derived from it exists, SCRAM included (its first message carries no
// secret, but starting it would hand an impostor a salted-hash oracle to guess against).
TEST(UpstreamLogin, UnverifiedUpstreamGetsNoSecretBytes) {
  const std::string kSecret = "s3cr3t-pw";
  const Msg asks[] = {AuthCode(cpg::AuthCode::kCleartextPassword), AuthMd5({'a', 'b', 'c', 'd'}),
                      AuthSasl({"SCRAM-SHA-256"}), AuthSasl({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"})};
  for (const Msg& ask : asks) {
    for (std::string cb : {std::string(), std::string(32, 'h')}) {  // plain TCP, TLS without verify
      SCOPED_TRACE(static_cast<int>(ask.body.size()));
      std::optional<auth::Secret> secret;
      secret.emplace(kSecret);
      UpstreamLogin login({.user = "app", .database = "appdb"}, std::move(secret), cb, std::string(kNonce));
      EXPECT_THAT(login.StartupMessage(), Not(HasSubstr(kSecret)));
      absl::StatusOr<UpstreamLogin::Step> step = Send(login, ask);
      ASSERT_FALSE(step.ok());
      EXPECT_EQ(step.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_THAT(std::string(step.status().message()), StartsWith("upstream_unverified: "));
      EXPECT_THAT(std::string(step.status().message()), Not(HasSubstr(kSecret)));
    }
  }
}

TEST(UpstreamLogin, VerifiedOrExplicitlyAllowedUpstreamGetsThePassword) {
  for (UpstreamLoginOptions o : {UpstreamLoginOptions{.user = "app", .database = "appdb", .upstream_verified = true},
                                 UpstreamLoginOptions{.user = "app", .database = "appdb", .allow_unverified = true}}) {
    std::optional<auth::Secret> secret;
    secret.emplace("pw");
    UpstreamLogin login(o, std::move(secret), "", std::string(kNonce));
    absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthCode(cpg::AuthCode::kCleartextPassword));
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_EQ(step->send, cpg::EncodePasswordMessage("pw"));
  }
  // Trust needs no secret: an unverified server may still let us in without one.
  UpstreamLogin trust({.user = "app", .database = "appdb"}, std::nullopt, "", std::string(kNonce));
  EXPECT_TRUE(Send(trust, AuthOk())->authenticated);
}

// ---- Methods that succeed --------------------------------------------------------------------

TEST(UpstreamLogin, TrustNeedsNoPassword) {
  UpstreamLogin login = NewLogin(std::nullopt);
  absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthOk());
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_TRUE(step->authenticated);
  EXPECT_EQ(step->send, "");
  EXPECT_EQ(login.method(), "trust");
}

TEST(UpstreamLogin, NoticeAndNegotiateProtocolVersionAreSkipped) {
  UpstreamLogin login = NewLogin("pw");
  const Msg skipped[] = {
      MsgOf(cpg::Encode(cpg::NoticeResponse{{{{'S', "NOTICE"}, {'M', "hello"}}}})),
      MsgOf(cpg::EncodeNegotiateProtocolVersion(0, {"_pq_.x"})),
  };
  for (const Msg& m : skipped) {
    absl::StatusOr<UpstreamLogin::Step> step = Send(login, m);
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_FALSE(step->authenticated);
    EXPECT_EQ(step->send, "");
  }
  ASSERT_TRUE(Send(login, AuthOk()).ok());
}

TEST(UpstreamLogin, CleartextSendsThePassword) {
  UpstreamLogin login = NewLogin("s3cr3t pw");
  absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthCleartext());
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_FALSE(step->authenticated);
  Msg sent = MsgOf(step->send);
  EXPECT_EQ(sent.type, 'p');
  absl::StatusOr<cpg::PasswordMessage> pm = cpg::ParsePasswordMessage(sent.body);
  ASSERT_TRUE(pm.ok()) << pm.status();
  EXPECT_EQ(pm->password, "s3cr3t pw");
  EXPECT_EQ(login.method(), "password");
  step = Send(login, AuthOk());
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_TRUE(step->authenticated);
}

TEST(UpstreamLogin, Md5SendsSaltedHash) {
  struct Case {
    std::string user;
    std::string password;
    std::array<char, 4> salt;
  };
  const Case cases[] = {
      {"app", "secret", {'\x01', '\x02', '\x03', '\x04'}},
      {"postgres", "p\xc3\xa4ss", {'\x93', '\x00', '\xff', '\x7a'}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.user);
    UpstreamLogin login = NewLogin(c.password, "", {.user = c.user, .database = "db"});
    absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthMd5(c.salt));
    ASSERT_TRUE(step.ok()) << step.status();
    Msg sent = MsgOf(step->send);
    EXPECT_EQ(sent.type, 'p');
    absl::StatusOr<cpg::PasswordMessage> pm = cpg::ParsePasswordMessage(sent.body);
    ASSERT_TRUE(pm.ok()) << pm.status();
    std::string inner = Md5Hex(c.password + c.user);
    std::string want = "md5" + Md5Hex(inner + std::string(c.salt.data(), c.salt.size()));
    EXPECT_EQ(pm->password, want);
    EXPECT_EQ(login.method(), "md5");
    step = Send(login, AuthOk());
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_TRUE(step->authenticated);
  }
}

TEST(UpstreamLogin, ReferenceScramMatchesRfc7677) {
  // Checks the test's own SCRAM against the RFC exchange (user "user").
  ScramExpected rfc =
      ComputeScram(kPassword, "n,,", absl::StrCat("n=user,r=", kNonce), kServerFirst);
  EXPECT_EQ(rfc.client_final, kRfcClientFinal);
  EXPECT_EQ(rfc.server_final, kRfcServerFinal);
}

// Drives AuthenticationSASL and SASLContinue; returns the client-final message sent.
std::string StartScram(UpstreamLogin& login, std::vector<std::string> offered,
                       absl::string_view want_mechanism, absl::string_view want_gs2) {
  absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthSasl(std::move(offered)));
  EXPECT_TRUE(step.ok()) << step.status();
  if (!step.ok()) return "";
  EXPECT_FALSE(step->authenticated);
  Msg sent = MsgOf(step->send);
  EXPECT_EQ(sent.type, 'p');
  absl::StatusOr<cpg::SaslInitialResponse> init = cpg::ParseSaslInitialResponse(sent.body);
  EXPECT_TRUE(init.ok()) << init.status();
  if (!init.ok()) return "";
  EXPECT_EQ(init->mechanism, want_mechanism);
  EXPECT_EQ(login.method(), want_mechanism);
  EXPECT_EQ(init->data, absl::StrCat(want_gs2, "n=,r=", kNonce));

  step = Send(login, AuthSaslContinue(kServerFirst));
  EXPECT_TRUE(step.ok()) << step.status();
  if (!step.ok()) return "";
  EXPECT_FALSE(step->authenticated);
  sent = MsgOf(step->send);
  EXPECT_EQ(sent.type, 'p');
  absl::StatusOr<cpg::SaslResponse> resp = cpg::ParseSaslResponse(sent.body);
  EXPECT_TRUE(resp.ok()) << resp.status();
  return resp.ok() ? std::string(resp->data) : "";
}

TEST(UpstreamLogin, ScramSha256FullExchange) {
  ScramExpected want = ComputeScram(kPassword, "n,,", absl::StrCat("n=,r=", kNonce), kServerFirst);
  UpstreamLogin login = NewLogin(std::string(kPassword));
  EXPECT_EQ(StartScram(login, {"SCRAM-SHA-256"}, "SCRAM-SHA-256", "n,,"), want.client_final);

  absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthSaslFinal(want.server_final));
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_FALSE(step->authenticated);
  EXPECT_EQ(step->send, "");
  step = Send(login, AuthOk());
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_TRUE(step->authenticated);
  EXPECT_EQ(login.method(), "SCRAM-SHA-256");
}

TEST(UpstreamLogin, ScramRejectsWrongServerSignature) {
  ScramExpected want = ComputeScram(kPassword, "n,,", absl::StrCat("n=,r=", kNonce), kServerFirst);
  std::string flipped = want.server_final;
  flipped[2] = flipped[2] == 'A' ? 'B' : 'A';
  // The RFC's signature covers "n=user": not what a server that saw "n=" must prove.
  for (const std::string& wrong : {std::string(kRfcServerFinal), flipped}) {
    SCOPED_TRACE(wrong);
    UpstreamLogin login = NewLogin(std::string(kPassword));
    ASSERT_EQ(StartScram(login, {"SCRAM-SHA-256"}, "SCRAM-SHA-256", "n,,"), want.client_final);
    absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthSaslFinal(wrong));
    EXPECT_FALSE(step.ok());
    EXPECT_THAT(std::string(step.status().message()), HasSubstr("signature"));
    // And the server cannot skip the proof by claiming success anyway.
    step = Send(login, AuthOk());
    EXPECT_EQ(step.status().code(), absl::StatusCode::kPermissionDenied) << step.status();
  }
}

TEST(UpstreamLogin, ScramSha256PlusBindsToTheCertificateHash) {
  const std::string cert_hash(32, '\x5a');
  ScramExpected want = ComputeScram(kPassword, "p=tls-server-end-point,," + cert_hash,
                                    absl::StrCat("n=,r=", kNonce), kServerFirst);
  UpstreamLogin login = NewLogin(std::string(kPassword), cert_hash);
  EXPECT_EQ(StartScram(login, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, "SCRAM-SHA-256-PLUS",
                       "p=tls-server-end-point,,"),
            want.client_final);
  ASSERT_TRUE(Send(login, AuthSaslFinal(want.server_final)).ok());
  absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthOk());
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_TRUE(step->authenticated);
  EXPECT_EQ(login.method(), "SCRAM-SHA-256-PLUS");
}

TEST(UpstreamLogin, ScramOverTlsWithoutPlusOfferedSaysSo) {
  // gs2 "y,,": we could bind but the server did not offer it.
  ScramExpected want = ComputeScram(kPassword, "y,,", absl::StrCat("n=,r=", kNonce), kServerFirst);
  UpstreamLogin login = NewLogin(std::string(kPassword), std::string(32, '\x01'));
  EXPECT_EQ(StartScram(login, {"SCRAM-SHA-256"}, "SCRAM-SHA-256", "y,,"), want.client_final);
  ASSERT_TRUE(Send(login, AuthSaslFinal(want.server_final)).ok());
  absl::StatusOr<UpstreamLogin::Step> step = Send(login, AuthOk());
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_TRUE(step->authenticated);
}

// ---- Refusals --------------------------------------------------------------------------------

struct RefusalCase {
  std::string name;
  std::optional<std::string> password;
  std::string tls_cb_hash;
  std::vector<Msg> messages;  // all but the last must be accepted
  absl::StatusCode want_code;
  std::string want_substr;
};
void PrintTo(const RefusalCase& c, std::ostream* os) { *os << c.name; }

class UpstreamLoginRefusal : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(UpstreamLoginRefusal, FailsWithCode) {
  const RefusalCase& c = GetParam();
  UpstreamLogin login = NewLogin(c.password, c.tls_cb_hash);
  ASSERT_FALSE(c.messages.empty());
  for (size_t i = 0; i + 1 < c.messages.size(); ++i) {
    absl::StatusOr<UpstreamLogin::Step> step = Send(login, c.messages[i]);
    ASSERT_TRUE(step.ok()) << "message " << i << ": " << step.status();
    ASSERT_FALSE(step->authenticated);
  }
  absl::StatusOr<UpstreamLogin::Step> step = Send(login, c.messages.back());
  EXPECT_EQ(step.status().code(), c.want_code) << step.status();
  EXPECT_THAT(std::string(step.status().message()), HasSubstr(c.want_substr));
}

// clang-format off
const RefusalCase kRefusals[] = {
    {"CleartextWithoutPassword", std::nullopt, "", {AuthCleartext()},
     absl::StatusCode::kFailedPrecondition, "password"},
    {"Md5WithoutPassword", std::nullopt, "", {AuthMd5({'a', 'b', 'c', 'd'})},
     absl::StatusCode::kFailedPrecondition, "password"},
    {"SaslWithoutPassword", std::nullopt, "", {AuthSasl({"SCRAM-SHA-256"})},
     absl::StatusCode::kFailedPrecondition, "password"},
    {"KerberosV5", "pw", "", {AuthCode(cpg::AuthCode::kKerberosV5)},
     absl::StatusCode::kUnimplemented, "not supported"},
    {"Gss", "pw", "", {AuthCode(cpg::AuthCode::kGss)}, absl::StatusCode::kUnimplemented,
     "not supported"},
    {"GssContinue", "pw", "", {RawAuth(8, "token")}, absl::StatusCode::kUnimplemented,
     "not supported"},
    {"Sspi", "pw", "", {AuthCode(cpg::AuthCode::kSspi)}, absl::StatusCode::kUnimplemented,
     "not supported"},
    {"GssWithoutPassword", std::nullopt, "", {AuthCode(cpg::AuthCode::kGss)},
     absl::StatusCode::kUnimplemented, "not supported"},
    {"ServerErrorResponse", "pw", "",
     {MsgOf(cpg::EncodeError("FATAL", "28P01", "password authentication failed for user \"app\""))},
     absl::StatusCode::kPermissionDenied, "(28P01): password authentication failed"},
    {"ServerErrorAfterPassword", "pw", "",
     {AuthCleartext(), MsgOf(cpg::EncodeError("FATAL", "28000", "no pg_hba.conf entry"))},
     absl::StatusCode::kPermissionDenied, "28000"},
    {"OkAfterSaslInitialResponse", "pencil", "", {AuthSasl({"SCRAM-SHA-256"}), AuthOk()},
     absl::StatusCode::kPermissionDenied, "proof"},
    {"OkAfterSaslContinueWithoutFinal", "pencil", "",
     {AuthSasl({"SCRAM-SHA-256"}), AuthSaslContinue(kServerFirst), AuthOk()},
     absl::StatusCode::kPermissionDenied, "proof"},
    {"ScramServerError", "pencil", "",
     {AuthSasl({"SCRAM-SHA-256"}), AuthSaslContinue(kServerFirst),
      AuthSaslFinal("e=invalid-proof")},
     absl::StatusCode::kPermissionDenied, "invalid-proof"},
    {"NoSupportedSaslMechanism", "pw", "", {AuthSasl({"SCRAM-SHA-1"})},
     absl::StatusCode::kUnimplemented, "SCRAM-SHA-1"},
    {"PlusOfferedWithoutTls", "pw", "", {AuthSasl({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"})},
     absl::StatusCode::kFailedPrecondition, "non-TLS"},
    {"ServerNonceNotExtendingOurs", "pencil", "",
     {AuthSasl({"SCRAM-SHA-256"}),
      AuthSaslContinue("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")},
     absl::StatusCode::kInvalidArgument, "nonce"},
    {"SaslContinueBeforeSasl", "pw", "", {AuthSaslContinue(kServerFirst)},
     absl::StatusCode::kInvalidArgument, "before SASL"},
    {"SaslFinalBeforeSasl", "pw", "", {AuthSaslFinal(kRfcServerFinal)},
     absl::StatusCode::kInvalidArgument, "before SASL"},
    {"AuthenticationTooShort", "pw", "", {{'R', std::string("\0\0", 2)}},
     absl::StatusCode::kInvalidArgument, ""},
    {"AuthenticationEmpty", "pw", "", {{'R', ""}}, absl::StatusCode::kInvalidArgument, ""},
    {"AuthenticationOkWithTrailingBytes", "pw", "", {RawAuth(0, "x")},
     absl::StatusCode::kInvalidArgument, ""},
    {"Md5SaltTruncated", "pw", "", {RawAuth(5, "ab")}, absl::StatusCode::kInvalidArgument, ""},
    {"UnknownAuthenticationCode", "pw", "", {RawAuth(6)}, absl::StatusCode::kInvalidArgument, ""},
    {"SaslListWithoutTerminator", "pw", "", {RawAuth(10, "SCRAM-SHA-256")},
     absl::StatusCode::kInvalidArgument, ""},
    {"MalformedErrorResponse", "pw", "", {{'E', "SFATAL"}}, absl::StatusCode::kInvalidArgument,
     "upstream login"},
    {"UnexpectedMessageType", "pw", "",
     {MsgOf(cpg::EncodeReadyForQuery(cpg::TransactionStatus::kIdle))},
     absl::StatusCode::kInvalidArgument, "unexpected"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Messages, UpstreamLoginRefusal, ::testing::ValuesIn(kRefusals),
                         [](const ::testing::TestParamInfo<RefusalCase>& i) {
                           return i.param.name;
                         });

}  // namespace
}  // namespace interlock::proxy::pg
