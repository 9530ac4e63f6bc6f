// Agent identity for HTTP resources through the real redirect: an unprivileged
// enrolled agent runs real curl against a real HTTP/1.1 upstream (Python,
// echoing the request headers it received as JSON) on 127.0.0.71; tokens come
// from a test issuer (keys made here, JWKS in a file). Attacks first: spoofed
// Interlock-* headers, a forged, expired or foreign agent token, the agent's
// token leaking upstream. Then what it is for: a policy rule on the token's
// subject, and a signed assertion the upstream verifies with the key `interlock
// assertion-key show` prints.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/interlockd_harness.h"
#include "tests/testing/privileged.h"
#include "tests/testing/test_issuer.h"
#include "tests/testing/wait.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUpstream[] = R"PY(
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        out = json.dumps({"method": self.command, "path": self.path,
                          "headers": [[k.lower(), v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = handle_any
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
)PY";

constexpr char kPolicy[] = R"YAML(
resources:
  - {resource: crm, default_action: ACTION_DENY}
rules:
  - id: read-customers
    match: {resources: [crm], http: {methods: [GET], paths: ["/v1/customers/**"]}}
    action: ACTION_ALLOW
  - id: review-posts
    match: {resources: [crm], http: {methods: [POST], paths: ["/v1/notes"]}}
    action: ACTION_REVIEW
    review_timeout_s: 60
  - id: reports-for-agent-7
    subject: {subs: [agent-7]}
    match: {resources: [crm], http: {methods: [GET], paths: ["/v1/reports/**"]}}
    action: ACTION_ALLOW
)YAML";

constexpr char kAddress[] = "127.0.0.71";

class HttpIdentityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto idp = TestIssuer::Create("https://idp.test");
    ASSERT_TRUE(idp.ok());
    idp_ = idp->release();
    ASSERT_TRUE(idp_->AddKey("ec-1", TestKeyKind::kP256).ok());
    auto evil = TestIssuer::Create("https://evil.test");
    ASSERT_TRUE(evil.ok());
    evil_ = evil->release();
    ASSERT_TRUE(evil_->AddKey("ec-1", TestKeyKind::kP256).ok());  // same kid, another key
  }
  static void TearDownTestSuite() {
    delete idp_;
    delete evil_;
  }

  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    dir_ = MakeTempDir("interlock-httpid-");
    ::chmod(dir_.c_str(), 0755);
    port_ = FreePort(kAddress);
    const std::string script = absl::StrCat(dir_, "/upstream.py");
    ASSERT_TRUE(WriteFileAtomic(script, kUpstream, 0644).ok());
    upstream_ = Spawn({"/usr/bin/python3", script, kAddress, absl::StrCat(port_)}, absl::StrCat(dir_, "/up.log"));
    ASSERT_GT(upstream_, 0);
    ASSERT_TRUE(WaitFor(
        [&] {
          return RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", Url("/")}, 5).exit_code == 0;
        },
        15));
    secret_file_ = absl::StrCat(dir_, "/api.token");
    ASSERT_TRUE(WriteFileAtomic(secret_file_, "s3cr3t-upstream-token\n", 0600).ok());
    policy_file_ = absl::StrCat(dir_, "/policy.yaml");
    ASSERT_TRUE(WriteFileAtomic(policy_file_, kPolicy, 0644).ok());
    jwks_file_ = absl::StrCat(dir_, "/jwks.json");
    ASSERT_TRUE(WriteFileAtomic(jwks_file_, idp_->Jwks(), 0644).ok());
  }
  void TearDown() override {
    if (upstream_ > 0) KillProcess(upstream_);
    RemoveTree(dir_);
  }

  // `http_yaml`: more lines of the resource's http block, each indented by 6
  // spaces.
  std::unique_ptr<InterlockdHarness> Daemon(const std::string& http_yaml) {
    ResourceSpec r{"crm", kAddress, port_,
                   absl::StrCat("    protocol: PROTOCOL_HTTP\n    http:\n      "
                                "credential: {bearer_ref: \"file:",
                                secret_file_, "\"}\n", http_yaml)};
    std::string yaml = absl::StrCat("policy_file: ", policy_file_,
                                    "\noidc_issuers:\n  - name: corp-idp\n    issuer: "
                                    "\"https://idp.test\"\n"
                                    "    audiences: [interlock]\n    algorithms: [ES256]\n    jwks_file: ",
                                    jwks_file_, "\n    clock_skew_s: 1\n");
    return std::make_unique<InterlockdHarness>(HarnessOptions{.resources = {r}, .extra_yaml = yaml});
  }

  std::string Url(const std::string& path) const { return absl::StrCat("http://", kAddress, ":", port_, path); }

  std::string Token(TestIssuer& issuer, const std::string& sub = "agent-7", int64_t exp_in_s = 3600) {
    JsonObject c = issuer.StandardClaims(absl::Now(), sub);
    c.Int("exp", absl::ToUnixSeconds(absl::Now()) + exp_in_s);
    if (exp_in_s < 0)
      c.Int("iat", absl::ToUnixSeconds(absl::Now()) - 7200).Int("nbf", absl::ToUnixSeconds(absl::Now()) - 7200);
    auto t = issuer.Mint("ec-1", "ES256", c);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : "";
  }

  // curl as the enrolled agent "agent"; -sS, the status code on the last line.
  CommandResult Curl(InterlockdHarness& h, std::vector<std::string> args, const std::string& token_file = "") {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    AgentOptions o;
    if (!token_file.empty()) o.run_args = {"--token-file", token_file};
    return h.RunAgent("agent", argv, o);
  }
  static std::string StatusOf(const CommandResult& r) {
    std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
    return lines.empty() ? "" : lines.back();
  }
  // The value of header `name` (lowercase) the upstream received, from its JSON
  // echo
  // (["name", "value"] pairs); "" when absent. Values here hold no JSON
  // escapes.
  static std::string Received(const std::string& out, const std::string& name) {
    const std::string key = absl::StrCat("[\"", name, "\", \"");
    size_t at = out.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    return out.substr(at, out.find('"', at) - at);
  }
  static int CountReceived(const std::string& out, const std::string& prefix) {
    int n = 0;
    for (size_t at = out.find(absl::StrCat("[\"", prefix)); at != std::string::npos;
         at = out.find(absl::StrCat("[\"", prefix), at + 1)) {
      ++n;
    }
    return n;
  }
  std::string WriteTokenFile(const std::string& token) {
    std::string f = absl::StrCat(dir_, "/agent.token");
    EXPECT_TRUE(WriteFileAtomic(f, token + "\n", 0600).ok());
    return f;
  }

  static std::vector<v1::AuditEvent> Events(InterlockdHarness& h, v1::AuditKind kind) {
    return OfKind(h.AuditEvents(), kind);
  }

  static TestIssuer* idp_;
  static TestIssuer* evil_;
  std::string dir_, secret_file_, policy_file_, jwks_file_;
  uint16_t port_ = 0;
  pid_t upstream_ = -1;
};

TestIssuer* HttpIdentityTest::idp_ = nullptr;
TestIssuer* HttpIdentityTest::evil_ = nullptr;

// ES256 as OpenSSL checks it: the JOSE R || S signature back into DER.
bool VerifiesEs256(EVP_PKEY* key, absl::string_view input, const std::string& raw) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG_set0(sig, BN_bin2bn(p, 32, nullptr), BN_bin2bn(p + 32, 32, nullptr));
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
                  EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                                   reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

TEST_F(HttpIdentityTest, SpoofedIdentityHeadersAreStrippedEvenWithoutIdentityHeaders) {
  auto h = Daemon("");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult r = Curl(*h, {"-H", "Interlock-Workload: admin", "-H", "Interlock-Assertion: forged", "-H",
                              "interlock-subject: root", "-H", "INTERLOCK-X: 1", Url("/v1/customers/1")});
  ASSERT_EQ(StatusOf(r), "200") << r.out << r.err << h->DaemonLog();
  EXPECT_EQ(CountReceived(r.out, "interlock-"), 0) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("admin")));
  EXPECT_THAT(r.out, Not(HasSubstr("forged")));
  auto events = Events(*h, v1::AUDIT_KIND_HTTP_REQUEST);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(
      events[0].http().agent_credentials_removed(),
      ::testing::IsSupersetOf({"interlock-workload", "interlock-assertion", "interlock-subject", "interlock-x"}));
}

TEST_F(HttpIdentityTest, RequiredTokenRefusesForeignExpiredAndMissingTokensWith401) {
  auto h = Daemon("      token_issuers: [corp-idp]\n      require_agent_token: true\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string foreign = Token(*evil_);
  const std::string expired = Token(*idp_, "agent-7", -600);
  struct Case {
    std::string name;
    std::vector<std::string> headers;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"foreign issuer", {"-H", absl::StrCat("Authorization: Bearer ", foreign)}, "token_invalid"},
      {"expired", {"-H", absl::StrCat("Authorization: Bearer ", expired)}, "token_invalid"},
      {"garbage", {"-H", "Authorization: Bearer not.a.jwt"}, "token_invalid"},
      {"basic", {"-H", "Authorization: Basic YWRtaW46YWRtaW4="}, "token_invalid"},
      {"none", {}, "token_required"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.headers;
    args.insert(args.end(), {"-D", "-", Url("/v1/customers/1")});
    CommandResult r = Curl(*h, args);
    EXPECT_EQ(StatusOf(r), "401") << c.name << ": " << r.out;
    EXPECT_THAT(r.out, HasSubstr("application/problem+json")) << c.name;
    EXPECT_THAT(r.out, HasSubstr("WWW-Authenticate: Bearer")) << c.name;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("\"interlock_reason\":\"", c.reason, "\""))) << c.name;
    EXPECT_THAT(r.out, Not(HasSubstr("s3cr3t"))) << c.name;
    // The detail says why, never the token.
    if (!foreign.empty()) {
      EXPECT_THAT(r.out, Not(HasSubstr(foreign.substr(foreign.rfind('.') + 1)))) << c.name;
    }
  }
  auto auth = Events(*h, v1::AUDIT_KIND_AUTH);
  int invalid = 0;
  for (const auto& e : auth) {
    if (e.reason() == "agent_token_invalid") ++invalid;
    EXPECT_THAT(e.detail(), Not(HasSubstr(expired.substr(expired.rfind('.') + 1))));
  }
  EXPECT_EQ(invalid, 4);
  auto http = Events(*h, v1::AUDIT_KIND_HTTP_REQUEST);
  ASSERT_EQ(http.size(), cases.size());
  for (const auto& e : http) {
    EXPECT_EQ(e.http().status(), 401u);
    EXPECT_EQ(e.http().answered_by(), "interlockd");
  }
  // A valid token passes, and the upstream never sees it: only the injected
  // credential.
  const std::string good = Token(*idp_);
  CommandResult ok = Curl(*h, {"-H", absl::StrCat("Authorization: Bearer ", good), Url("/v1/customers/1")});
  ASSERT_EQ(StatusOf(ok), "200") << ok.out << h->DaemonLog();
  EXPECT_EQ(Received(ok.out, "authorization"), "Bearer s3cr3t-upstream-token");
  EXPECT_THAT(ok.out, Not(HasSubstr(good)));
  EXPECT_THAT(ok.out, Not(HasSubstr(good.substr(good.rfind('.') + 1))));
}

TEST_F(HttpIdentityTest, WithoutRequireAnInvalidAgentTokenIsRemovedAndReported) {
  auto h = Daemon("      token_issuers: [corp-idp]\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string expired = Token(*idp_, "agent-7", -600);
  CommandResult r = Curl(*h, {"-H", absl::StrCat("Authorization: Bearer ", expired), Url("/v1/customers/1")});
  ASSERT_EQ(StatusOf(r), "200") << r.out << h->DaemonLog();
  EXPECT_EQ(Received(r.out, "authorization"), "Bearer s3cr3t-upstream-token");
  EXPECT_THAT(r.out, Not(HasSubstr(expired.substr(expired.rfind('.') + 1))));
  bool reported = false;
  for (const auto& e : Events(*h, v1::AUDIT_KIND_AUTH)) {
    if (e.reason() == "agent_token_invalid") {
      reported = true;
      EXPECT_THAT(e.detail(), HasSubstr("expired"));
    }
  }
  EXPECT_TRUE(reported);
  auto http = Events(*h, v1::AUDIT_KIND_HTTP_REQUEST);
  ASSERT_EQ(http.size(), 1u);
  EXPECT_EQ(http[0].identity().token_subject(),
            "");  // no identity from an expired token
  // An expired token does not unlock what the subject may do.
  CommandResult reports = Curl(*h, {"-H", absl::StrCat("Authorization: Bearer ", expired), Url("/v1/reports/q3")});
  EXPECT_EQ(StatusOf(reports), "403") << reports.out;
}

TEST_F(HttpIdentityTest, APolicyRuleOnTheTokenSubjectAllowsWhatTheWorkloadAloneMayNot) {
  auto h = Daemon("      token_issuers: [corp-idp]\n");
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  CommandResult alone = Curl(*h, {Url("/v1/reports/q3")});
  EXPECT_EQ(StatusOf(alone), "403") << alone.out;
  CommandResult other =
      Curl(*h, {"-H", absl::StrCat("Authorization: Bearer ", Token(*idp_, "agent-8")), Url("/v1/reports/q3")});
  EXPECT_EQ(StatusOf(other), "403") << other.out;
  // The agent's own bearer...
  CommandResult bearer = Curl(*h, {"-H", absl::StrCat("Authorization: Bearer ", Token(*idp_)), Url("/v1/reports/q3")});
  EXPECT_EQ(StatusOf(bearer), "200") << bearer.out << h->DaemonLog();
  // ... or the token bound to its enrollment: the agent never holds it.
  CommandResult bound = Curl(*h, {Url("/v1/reports/q3")}, WriteTokenFile(Token(*idp_)));
  EXPECT_EQ(StatusOf(bound), "200") << bound.out << h->DaemonLog();
  auto http = Events(*h, v1::AUDIT_KIND_HTTP_REQUEST);
  ASSERT_EQ(http.size(), 4u);
  EXPECT_EQ(http[0].decision().action(), "DENY");
  EXPECT_EQ(http[1].identity().token_subject(), "agent-8");
  EXPECT_EQ(http[2].decision().rule_id(), "reports-for-agent-7");
  EXPECT_EQ(http[2].identity().token_subject(), "agent-7");
  EXPECT_EQ(http[2].identity().token_issuer(), "https://idp.test");
  EXPECT_EQ(http[3].decision().rule_id(), "reports-for-agent-7");
  EXPECT_EQ(http[3].identity().token_subject(), "agent-7");
  bool bound_accepted = false;
  for (const auto& e : Events(*h, v1::AUDIT_KIND_AUTH)) bound_accepted |= e.reason() == "bound_token";
  EXPECT_TRUE(bound_accepted);
}

TEST_F(HttpIdentityTest, TheUpstreamGetsASignedAssertionVerifiableWithTheShownKey) {
  {
    // No key: interlockd refuses to start and names the command (it never makes
    // one).
    auto keyless = Daemon("      identity_headers: true\n");
    absl::Status started = keyless->Start();
    ASSERT_FALSE(started.ok());
    EXPECT_THAT(started.message(), HasSubstr("interlock assertion-key init"));
  }
  auto h = Daemon("      token_issuers: [corp-idp]\n      identity_headers: true\n");
  CommandResult init = h->Cli({"assertion-key", "init"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  struct stat st;
  ASSERT_EQ(::stat(absl::StrCat(h->state_dir(), "/assertion-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();

  CommandResult show = h->Cli({"assertion-key", "show"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const size_t pem_at = show.out.find("-----BEGIN PUBLIC KEY-----");
  ASSERT_NE(pem_at, std::string::npos) << show.out;
  const std::string pem = show.out.substr(pem_at);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(key, nullptr);
  std::string kid;
  for (absl::string_view line : absl::StrSplit(show.out, '\n')) {
    if (absl::ConsumePrefix(&line, "kid  ")) kid = std::string(line);
  }
  ASSERT_EQ(kid.size(), 43u) << show.out;
  EXPECT_THAT(show.out, HasSubstr(absl::StrCat("\"kid\":\"", kid, "\"")));  // the JWK

  // The agent's token is bound at enrollment; the agent also tries to speak for
  // "admin".
  const std::string token = Token(*idp_);
  CommandResult r =
      Curl(*h, {"-H", "Interlock-Workload: admin", "-H", "Interlock-Assertion: forged", Url("/v1/customers/1")},
           WriteTokenFile(token));
  ASSERT_EQ(StatusOf(r), "200") << r.out << h->DaemonLog();
  EXPECT_EQ(CountReceived(r.out, "interlock-workload"), 1) << r.out;
  EXPECT_EQ(CountReceived(r.out, "interlock-assertion"), 1) << r.out;
  EXPECT_EQ(Received(r.out, "interlock-workload"), "agent");
  EXPECT_EQ(Received(r.out, "interlock-subject"), "agent-7");
  EXPECT_EQ(Received(r.out, "authorization"), "Bearer s3cr3t-upstream-token");
  EXPECT_THAT(r.out, Not(HasSubstr(token.substr(token.rfind('.') + 1))));
  const std::string jws = Received(r.out, "interlock-assertion");
  std::vector<std::string> parts = absl::StrSplit(jws, '.');
  ASSERT_EQ(parts.size(), 3u) << jws;
  const std::string header = Base64UrlDecodeLenient(parts[0]);
  const std::string claims = Base64UrlDecodeLenient(parts[1]);
  EXPECT_EQ(header, absl::StrCat("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"", kid, "\"}"));
  EXPECT_TRUE(VerifiesEs256(key, absl::StrCat(parts[0], ".", parts[1]), Base64UrlDecodeLenient(parts[2])));
  EXPECT_THAT(claims, HasSubstr("\"iss\":\"interlockd\",\"aud\":\"crm\""));
  EXPECT_THAT(claims, HasSubstr("\"workload\":\"agent\""));
  EXPECT_THAT(claims, HasSubstr("\"sub\":\"agent-7\",\"token_iss\":\"https://idp.test\""));
  EXPECT_THAT(claims, HasSubstr("\"exe\":\"/usr/bin/curl\""));
  int64_t iat = 0, exp = 0;
  for (absl::string_view member : absl::StrSplit(claims, ',')) {
    if (absl::ConsumePrefix(&member, "\"iat\":")) {
      EXPECT_TRUE(absl::SimpleAtoi(member, &iat));
    } else if (absl::ConsumePrefix(&member, "\"exp\":")) {
      EXPECT_TRUE(absl::SimpleAtoi(member, &exp));
    }
  }
  EXPECT_EQ(exp - iat, 60);
  EXPECT_LE(std::abs(iat - absl::ToUnixSeconds(absl::Now())), 30);
  // A forged claim does not verify under the key.
  std::string forged_claims = claims;
  forged_claims.replace(forged_claims.find("\"workload\":\"agent\""), 18, "\"workload\":\"admin\"");
  EXPECT_FALSE(
      VerifiesEs256(key, absl::StrCat(parts[0], ".", Base64Url(forged_claims)), Base64UrlDecodeLenient(parts[2])));
  EVP_PKEY_free(key);

  // Without a token: the workload, no subject; every assertion has its own jti.
  CommandResult plain = Curl(*h, {Url("/v1/customers/2")});
  ASSERT_EQ(StatusOf(plain), "200") << plain.out;
  EXPECT_EQ(Received(plain.out, "interlock-workload"), "agent");
  EXPECT_EQ(Received(plain.out, "interlock-subject"), "");
  const std::string jws2 = Received(plain.out, "interlock-assertion");
  ASSERT_FALSE(jws2.empty());
  EXPECT_THAT(Base64UrlDecodeLenient(std::vector<std::string>(absl::StrSplit(jws2, '.'))[1]),
              Not(HasSubstr("\"sub\"")));
  EXPECT_NE(jws2, jws);
}

// A held request is forwarded when an approver releases it, maybe long after the agent
// sent it: its assertion is signed then, not when it arrived (or the upstream would get
// one that expired during the hold).
TEST_F(HttpIdentityTest, AHeldRequestGetsItsAssertionSignedWhenReleased) {
  auto h = Daemon("      identity_headers: true\n");
  ASSERT_EQ(h->Cli({"assertion-key", "init"}).exit_code, 0);
  ASSERT_TRUE(h->Start().ok()) << h->DaemonLog();
  const std::string out = absl::StrCat(dir_, "/held.out");
  pid_t agent = Spawn(
      [&] {
        std::vector<std::string> argv = h->RunArgv("agent");
        for (const char* a :
             {"/usr/bin/curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}", "-X", "POST", "-d", "note=1"}) {
          argv.push_back(a);
        }
        argv.push_back(Url("/v1/notes"));
        return argv;
      }(),
      out);
  ASSERT_GT(agent, 0);
  std::string id = h->WaitForPendingApproval(30);
  ASSERT_FALSE(id.empty()) << h->DaemonLog();
  const int64_t held_at = absl::ToUnixSeconds(absl::Now());
  absl::SleepFor(absl::Seconds(3));
  CommandResult approve = h->Cli({"approve", id, "--reason", "ticket 7"});
  ASSERT_EQ(approve.exit_code, 0) << approve.out << approve.err;
  EXPECT_EQ(WaitProcess(agent, 30), 0);
  auto got = ReadFile(out);
  ASSERT_TRUE(got.ok());
  ASSERT_THAT(*got, HasSubstr("\"method\": \"POST\"")) << *got;
  EXPECT_EQ(CountReceived(*got, "interlock-assertion"), 1) << *got;
  const std::string jws = Received(*got, "interlock-assertion");
  std::vector<std::string> parts = absl::StrSplit(jws, '.');
  ASSERT_EQ(parts.size(), 3u) << jws;
  const std::string claims = Base64UrlDecodeLenient(parts[1]);
  int64_t iat = 0;
  for (absl::string_view member : absl::StrSplit(claims, ',')) {
    if (absl::ConsumePrefix(&member, "\"iat\":")) {
      EXPECT_TRUE(absl::SimpleAtoi(member, &iat));
    }
  }
  EXPECT_GE(iat, held_at + 2) << claims;
  auto key = h->Cli({"assertion-key", "show"});
  ASSERT_EQ(key.exit_code, 0);
  const std::string pem = key.out.substr(key.out.find("-----BEGIN PUBLIC KEY-----"));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pub = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(VerifiesEs256(pub, absl::StrCat(parts[0], ".", parts[1]), Base64UrlDecodeLenient(parts[2])));
  EVP_PKEY_free(pub);
}

TEST_F(HttpIdentityTest, AssertionKeyCliNamesInitAndNeverReplacesByAccident) {
  auto h = Daemon("");
  CommandResult none = h->Cli({"assertion-key", "show"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("interlock assertion-key init"));
  CommandResult first = h->Cli({"assertion-key", "init"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("-----BEGIN PUBLIC KEY-----"));
  EXPECT_THAT(first.out, Not(HasSubstr("PRIVATE")));
  CommandResult again = h->Cli({"assertion-key", "init"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("--replace"));
  CommandResult shown = h->Cli({"assertion-key", "show"});
  ASSERT_EQ(shown.exit_code, 0);
  EXPECT_EQ(shown.out, first.out.substr(first.out.find('\n') + 1));  // the same key
  CommandResult replaced = h->Cli({"assertion-key", "init", "--replace"});
  ASSERT_EQ(replaced.exit_code, 0);
  EXPECT_NE(h->Cli({"assertion-key", "show"}).out, shown.out);
  // A key others can read is refused, not used.
  ASSERT_EQ(::chmod(absl::StrCat(h->state_dir(), "/assertion-key.pem").c_str(), 0644), 0);
  CommandResult loose = h->Cli({"assertion-key", "show"});
  EXPECT_EQ(loose.exit_code, 1);
  EXPECT_THAT(loose.err, HasSubstr("assertion-key.pem"));
  EXPECT_EQ(h->Cli({"assertion-key", "bogus"}).exit_code, 2);
}

}  // namespace
}  // namespace interlock::testing
