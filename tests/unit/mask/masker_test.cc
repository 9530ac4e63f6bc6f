#include "userspace/mask/masker.h"

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace interlock::mask {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kKey[] = "0123456789abcdef0123456789abcdef";

v1::MaskProfile Profile(const std::string& text) {
  v1::MaskProfile p;
  if (!google::protobuf::TextFormat::ParseFromString(text, &p)) abort();
  return p;
}

std::unique_ptr<Masker> Make(const std::string& text, std::string key = kKey) {
  auto m = Masker::Create(Profile(text), std::move(key));
  if (!m.ok()) {
    ADD_FAILURE() << m.status();
    return nullptr;
  }
  return std::move(m).value();
}

// MaskText, or the input unchanged when nothing matched.
std::string Text(const Masker& m, absl::string_view value, MaskCounts* counts = nullptr) {
  std::string out;
  return m.MaskText(value, &out, counts) ? out : std::string(value);
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

constexpr char kAllDetectors[] = R"pb(
  name: "pii"
  detectors { detector: DETECTOR_SSN }
  detectors { detector: DETECTOR_CARD }
  detectors { detector: DETECTOR_IBAN }
  detectors { detector: DETECTOR_ABA }
  detectors { detector: DETECTOR_EMAIL }
  detectors { detector: DETECTOR_PHONE }
)pb";

// ---- Styles ----

TEST(Masker, PartialKeepsLastCharactersAndSeparators) {
  std::string out;
  AppendPartial("4111-1111-1111-1234", 4, &out);
  EXPECT_EQ(out, "****-****-****-1234");
  out.clear();
  AppendPartial("078-05-1120", 4, &out);
  EXPECT_EQ(out, "***-**-1120");
  out.clear();
  AppendPartial("alice@example.com", 3, &out);
  EXPECT_EQ(out, "*****@*******.com");
}

TEST(Masker, PartialNeverShowsAWholeValue) {
  std::string out;
  AppendPartial("1234", 4, &out);
  EXPECT_EQ(out, "****");
  out.clear();
  AppendPartial("12", 4, &out);
  EXPECT_EQ(out, "**");
  out.clear();
  AppendPartial("", 4, &out);
  EXPECT_EQ(out, "");
}

TEST(Masker, PartialCountsUtf8Characters) {
  std::string out;
  AppendPartial("Zoë Müller", 4, &out);
  EXPECT_EQ(out, "*** **ller");
  EXPECT_TRUE(IsValidUtf8(out));
  out.clear();
  AppendPartial("日本語テキスト", 2, &out);
  EXPECT_EQ(out, "*****スト");
  EXPECT_TRUE(IsValidUtf8(out));
  // Every keep_last over a mixed string stays valid UTF-8.
  const std::string mixed = "a€𝄞é-Ω語1";
  for (uint32_t keep = 1; keep < 10; ++keep) {
    out.clear();
    AppendPartial(mixed, keep, &out);
    EXPECT_TRUE(IsValidUtf8(out)) << keep << ": " << out;
  }
  // Invalid input does not crash and does not run past the end.
  out.clear();
  AppendPartial("ab\xe2\x82", 1, &out);
  EXPECT_EQ(out.size(), 4u);
}

TEST(Masker, RedactDefaultAndCustomToken) {
  auto m = Make(R"pb(columns { column: "ssn" }
                     columns {
                       column: "card"
                       mask { style: MASK_STYLE_REDACT token: "XXXX" }
                     })pb");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->MaskWhole(*m->MatchColumn("", "", "", "ssn"), "078-05-1120"), "[REDACTED]");
  EXPECT_EQ(m->MaskWhole(*m->MatchColumn("", "", "", "card"), "4111"), "XXXX");
}

TEST(Masker, NullStyle) {
  auto m = Make(R"pb(columns {
                       column: "ssn"
                       mask { style: MASK_STYLE_NULL }
                     }
                     detectors {
                       detector: DETECTOR_SSN
                       mask { style: MASK_STYLE_NULL }
                     })pb");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->MaskWhole(*m->MatchColumn("", "", "", "ssn"), "078-05-1120"), std::nullopt);
  EXPECT_EQ(Text(*m, "ssn=078-05-1120;"), "ssn=;");
}

TEST(Masker, KeyedHashIsStableAndKeyDependent) {
  const char* profile = R"pb(columns {
                               column: "ssn"
                               mask { style: MASK_STYLE_KEYED_HASH }
                             }
                             detectors {
                               detector: DETECTOR_SSN
                               mask { style: MASK_STYLE_KEYED_HASH }
                             })pb";
  auto a = Make(profile);
  auto a2 = Make(profile);
  auto b = Make(profile, std::string(32, 'k'));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const ColumnRule& rule = *a->MatchColumn("", "", "", "ssn");
  std::string h = *a->MaskWhole(rule, "078-05-1120");
  EXPECT_THAT(h, MatchesRegex("pii_[0-9a-f]{16}"));
  // HMAC-SHA256(kKey, "078-05-1120"), first 8 bytes (python3 hmac).
  EXPECT_EQ(h, "pii_d899a24a4b7ea4da");
  EXPECT_EQ(*a->MaskWhole(rule, "078-05-1120"), h);
  EXPECT_EQ(*a2->MaskWhole(*a2->MatchColumn("", "", "", "ssn"), "078-05-1120"), h);
  EXPECT_NE(*b->MaskWhole(*b->MatchColumn("", "", "", "ssn"), "078-05-1120"), h);
  EXPECT_NE(*a->MaskWhole(rule, "219-09-9999"), h);
  // The same value inside text gets the same pseudonym, so joins still line up.
  EXPECT_EQ(Text(*a, R"({"ssn":"078-05-1120"})"), absl::StrCat(R"({"ssn":")", h, R"("})"));
}

TEST(Masker, KeyedHashMatchesHmacSha256Vectors) {
  // Expected values from python3: hmac.new(key, value, hashlib.sha256).hexdigest()[:16].
  const char* profile = R"pb(columns {
                               column: "x"
                               mask { style: MASK_STYLE_KEYED_HASH }
                             })pb";
  auto m = Make(profile);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->KeyedHash(""), "pii_796cd3078af14636");
  // A key longer than the SHA-256 block is hashed first (RFC 2104).
  auto long_key = Make(profile, std::string(100, 'K'));
  ASSERT_NE(long_key, nullptr);
  EXPECT_EQ(long_key->KeyedHash("alice@example.com"), "pii_0017b6d12c47f08f");
}

TEST(Masker, KeyedHashIsSafeToCallConcurrently) {
  auto m = Make(R"pb(columns {
                       column: "x"
                       mask { style: MASK_STYLE_KEYED_HASH }
                     })pb");
  ASSERT_NE(m, nullptr);
  const std::string want = m->KeyedHash("value");
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (m->KeyedHash("value") != want) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// ---- MaskText ----

TEST(Masker, MaskTextLeavesCleanValuesAlone) {
  auto m = Make(kAllDetectors);
  ASSERT_NE(m, nullptr);
  std::string out = "untouched";
  MaskCounts counts;
  EXPECT_FALSE(m->MaskText("plain text without anything", &out, &counts));
  EXPECT_FALSE(m->MaskText("order 12345 shipped 2024-01-15 10:30:00 total 99.95", &out, &counts));
  EXPECT_FALSE(m->MaskText("", &out, &counts));
  EXPECT_FALSE(m->MaskText("078-05-1121x 4111111111111112 011000016", &out, &counts));
  EXPECT_EQ(out, "untouched");
  EXPECT_TRUE(counts.empty());
}

TEST(Masker, MaskTextRewritesJson) {
  auto m = Make(kAllDetectors);
  ASSERT_NE(m, nullptr);
  MaskCounts counts;
  EXPECT_EQ(Text(*m, R"({"ssn":"078-05-1120","card":"4111111111111111"})", &counts),
            R"({"ssn":"[REDACTED]","card":"[REDACTED]"})");
  EXPECT_THAT(counts.detectors, UnorderedElementsAre(Pair("ssn", 1), Pair("card", 1)));
}

bool IsJson(absl::string_view text) {
  google::protobuf::Value v;
  return google::protobuf::util::JsonStringToMessage(std::string(text), &v).ok();
}

TEST(Masker, MaskTextKeepsJsonDocumentsJson) {
  auto m = Make(R"pb(
    detectors {
      detector: DETECTOR_CARD
      mask { style: MASK_STYLE_PARTIAL }
    }
    detectors { detector: DETECTOR_SSN }
    detectors {
      detector: DETECTOR_ABA
      mask { style: MASK_STYLE_NULL }
    }
    detectors {
      detector: DETECTOR_EMAIL
      mask { token: "<\"email\">" }
    })pb");
  ASSERT_NE(m, nullptr);
  // A card stored as bigint comes out of row_to_json unquoted: it becomes a string.
  const std::string row = R"({"id":7,"card":4111111111111111,"ssn":"078-05-1120","routing":121000358})";
  ASSERT_TRUE(IsJson(row));
  std::string out = Text(*m, row);
  EXPECT_EQ(out, R"({"id":7,"card":"************1111","ssn":"[REDACTED]","routing":null})");
  EXPECT_TRUE(IsJson(out)) << out;
  // json_agg of numbers, with blanks around.
  out = Text(*m, " [4111111111111111, 5500000000000004]\n");
  EXPECT_EQ(out, " [\"************1111\", \"************0004\"]\n");
  EXPECT_TRUE(IsJson(out)) << out;
  // Inside a string, with escaped quotes before the match: stays in the string, and a token
  // holding a quote is escaped.
  out = Text(*m, R"({"note":"say \"4111 1111 1111 1111\" to bob@example.com"})");
  EXPECT_EQ(out, R"({"note":"say \"**** **** **** 1111\" to <\"email\">"})");
  EXPECT_TRUE(IsJson(out)) << out;
  // Not a JSON document: replaced as it is.
  EXPECT_EQ(Text(*m, "card 4111111111111111 routing 011000015 end"), "card ************1111 routing  end");
}

TEST(Masker, MaskedJsonIsStillJson) {
  // Random JSON documents with numbers and strings that hold (or nearly hold) sensitive
  // values, in every style: whatever was valid JSON before masking is valid JSON after.
  auto m = Make(R"pb(
    detectors {
      detector: DETECTOR_SSN
      mask { style: MASK_STYLE_PARTIAL }
    }
    detectors {
      detector: DETECTOR_CARD
      mask { style: MASK_STYLE_KEYED_HASH }
    }
    detectors {
      detector: DETECTOR_ABA
      mask { style: MASK_STYLE_NULL }
    }
    detectors {
      detector: DETECTOR_EMAIL
      mask { token: "<\"e\\mail\">" }
    })pb");
  ASSERT_NE(m, nullptr);
  const std::vector<std::string> scalars = {
      "4111111111111111", "5500000000000004", "121000358", "12", "-3.5e2", "true", "null",
      R"("078-05-1120")", R"("x 4111 1111 1111 1111 y")", R"("a@example.com")", R"("q\"011000015\\")",
      R"("\u0041 078-05-1120\n")", R"("")"};
  uint32_t seed = 11;
  auto next = [&seed] {
    seed = seed * 1103515245 + 12345;
    return (seed >> 16) & 0x7fff;
  };
  std::function<std::string(int)> doc = [&](int depth) -> std::string {
    const int kind = depth > 2 ? 2 : next() % 3;
    std::string out;
    if (kind == 0) {  // object
      out = "{";
      for (int i = 0, n = next() % 4; i < n; ++i) {
        if (i > 0) out += ",";
        out += absl::StrCat("\"k", i, "\": ", doc(depth + 1));
      }
      return out + "}";
    }
    if (kind == 1) {  // array
      out = "[";
      for (int i = 0, n = next() % 4; i < n; ++i) out += (i > 0 ? ", " : "") + doc(depth + 1);
      return out + "]";
    }
    return scalars[next() % scalars.size()];
  };
  int masked = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string in = next() % 2 ? absl::StrCat("{\"v\":", doc(1), "}") : absl::StrCat("[", doc(1), "]");
    ASSERT_TRUE(IsJson(in)) << in;
    std::string out;
    if (!m->MaskText(in, &out, nullptr)) continue;
    ++masked;
    EXPECT_TRUE(IsJson(out)) << in << "\n -> " << out;
  }
  EXPECT_GT(masked, 1000);
}

TEST(Masker, MaskTextManyMatchesInOneValue) {
  auto m = Make(kAllDetectors);
  ASSERT_NE(m, nullptr);
  MaskCounts counts;
  std::string value =
      "078-05-1120,alice@example.com,(415) 555-2671,GB82 WEST 1234 5698 7654 32,011000015,"
      "4111 1111 1111 1111";
  EXPECT_EQ(Text(*m, value, &counts),
            "[REDACTED],[REDACTED],[REDACTED],[REDACTED],[REDACTED],[REDACTED]");
  EXPECT_EQ(counts.total(), 6u);
  // More matches than the inline buffer holds.
  std::string agg;
  for (int i = 0; i < 40; ++i) agg += "078-05-1120 ";
  std::string out;
  counts = {};
  ASSERT_TRUE(m->MaskText(agg, &out, &counts));
  EXPECT_EQ(counts.detectors["ssn"], 40u);
  EXPECT_EQ(out.find("078"), std::string::npos);
}

TEST(Masker, MaskTextLargeAggregateIsLinear) {
  // string_agg over 100k rows: every match found, claims merged in linear time.
  auto m = Make(kAllDetectors);
  ASSERT_NE(m, nullptr);
  std::string agg;
  for (int i = 0; i < 100000; ++i) agg += "078-05-1120,011000015,a@example.com;";
  std::string out;
  MaskCounts counts;
  ASSERT_TRUE(m->MaskText(agg, &out, &counts));
  EXPECT_THAT(counts.detectors, UnorderedElementsAre(Pair("ssn", 100000), Pair("aba", 100000),
                                                     Pair("email", 100000)));
  EXPECT_EQ(out.size(), 100000u * std::string("[REDACTED],[REDACTED],[REDACTED];").size());
}

TEST(Masker, MaskTextPartialAndStylesPerDetector) {
  auto m = Make(R"pb(
    detectors {
      detector: DETECTOR_CARD
      mask { style: MASK_STYLE_PARTIAL }
    }
    detectors {
      detector: DETECTOR_EMAIL
      mask { style: MASK_STYLE_REDACT token: "<email>" }
    })pb");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Text(*m, "card 4111-1111-1111-1111 of bob@example.com"),
            "card ****-****-****-1111 of <email>");
}

TEST(Masker, FirstDetectorInProfileOrderClaimsARange) {
  // 123456780 is both a valid SSN and a valid ABA routing number.
  auto ssn_first = Make(R"pb(detectors {
                               detector: DETECTOR_SSN
                               mask { token: "<ssn>" }
                             }
                             detectors {
                               detector: DETECTOR_ABA
                               mask { token: "<aba>" }
                             })pb");
  auto aba_first = Make(R"pb(detectors {
                               detector: DETECTOR_ABA
                               mask { token: "<aba>" }
                             }
                             detectors {
                               detector: DETECTOR_SSN
                               mask { token: "<ssn>" }
                             })pb");
  ASSERT_NE(ssn_first, nullptr);
  ASSERT_NE(aba_first, nullptr);
  MaskCounts a, b;
  EXPECT_EQ(Text(*ssn_first, "n=123456780", &a), "n=<ssn>");
  EXPECT_EQ(Text(*aba_first, "n=123456780", &b), "n=<aba>");
  EXPECT_THAT(a.detectors, UnorderedElementsAre(Pair("ssn", 1)));
  EXPECT_THAT(b.detectors, UnorderedElementsAre(Pair("aba", 1)));
  // Each detector still gets the ranges nobody claimed.
  EXPECT_EQ(Text(*aba_first, "011000015 078-05-1120"), "<aba> <ssn>");
}

TEST(Masker, CustomDetectorCountsByName) {
  auto m =
      Make(R"pb(detectors { detector: DETECTOR_CUSTOM pattern: "EMP-[0-9]{6}" name: "employee_id" }
                detectors { detector: DETECTOR_CUSTOM pattern: "(?i)secret-[a-z]+" })pb");
  ASSERT_NE(m, nullptr);
  MaskCounts counts;
  EXPECT_EQ(Text(*m, "EMP-123456 has SECRET-plan", &counts), "[REDACTED] has [REDACTED]");
  EXPECT_THAT(counts.detectors, UnorderedElementsAre(Pair("employee_id", 1), Pair("custom", 1)));
  // Custom detectors run even on values without digits or '@'.
  EXPECT_EQ(Text(*m, "a secret-word"), "a [REDACTED]");
}

TEST(Masker, NoDetectorsNeverMasksText) {
  auto m = Make(R"pb(columns { column: "ssn" })pb");
  ASSERT_NE(m, nullptr);
  std::string out;
  EXPECT_FALSE(m->MaskText("078-05-1120", &out, nullptr));
  EXPECT_FALSE(m->has_detectors());
  EXPECT_TRUE(m->has_column_rules());
}

TEST(Masker, RandomTextKeepsInvariants) {
  // Candidate-dense noise: every detector's alphabet, separators, and UTF-8.
  auto m = Make(R"pb(
    detectors {
      detector: DETECTOR_SSN
      mask { style: MASK_STYLE_PARTIAL }
    }
    detectors {
      detector: DETECTOR_CARD
      mask { style: MASK_STYLE_KEYED_HASH }
    }
    detectors { detector: DETECTOR_IBAN }
    detectors {
      detector: DETECTOR_ABA
      mask { style: MASK_STYLE_NULL }
    }
    detectors {
      detector: DETECTOR_EMAIL
      mask { style: MASK_STYLE_PARTIAL keep_last: 2 }
    }
    detectors { detector: DETECTOR_PHONE }
    detectors { detector: DETECTOR_CUSTOM pattern: "[A-Z]{2}[0-9]{2}" name: "code" })pb");
  ASSERT_NE(m, nullptr);
  const std::vector<std::string> pieces = {
      "0",  "1",     "4", "5",  "7", "9",  "078", "05",        "1120", "4111",
      "-",  " ",     ".", "@",  "+", "(",  ")",   "a",         "Z",    "GB",
      "82", "x.com", "é", "語", ",", "\"", "{",   "011000015", "\xff"};
  uint32_t seed = 7;
  auto next = [&seed] {
    seed = seed * 1103515245 + 12345;
    return (seed >> 16) & 0x7fff;
  };
  int masked = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string value;
    const size_t n = next() % 40;
    for (size_t k = 0; k < n; ++k) value += pieces[next() % pieces.size()];
    std::string out;
    MaskCounts counts;
    if (!m->MaskText(value, &out, &counts)) {
      EXPECT_TRUE(counts.empty());
      continue;
    }
    ++masked;
    EXPECT_FALSE(counts.empty()) << value;
    if (IsValidUtf8(value)) {
      EXPECT_TRUE(IsValidUtf8(out)) << value << " -> " << out;
    }
  }
  EXPECT_GT(masked, 100);
}

// ---- Column rules ----

TEST(Masker, ColumnMatching) {
  auto m = Make(R"pb(
    columns { column: "public.customers.ssn" }
    columns { column: "customers.card" }
    columns { column: "*_email" }
    columns { column: "phone" })pb");
  ASSERT_NE(m, nullptr);
  auto rule = [&](absl::string_view s, absl::string_view t, absl::string_view c,
                  absl::string_view out) -> std::string {
    const ColumnRule* r = m->MatchColumn(s, t, c, out);
    return r == nullptr ? "" : r->text;
  };
  // Aliases do not hide a resolved source column.
  EXPECT_EQ(rule("public", "customers", "ssn", "x"), "public.customers.ssn");
  EXPECT_EQ(rule("other", "customers", "ssn", "ssn"), "");
  EXPECT_EQ(rule("sales", "customers", "card", "c"), "customers.card");
  EXPECT_EQ(rule("sales", "orders", "card", "card"), "");
  EXPECT_EQ(rule("public", "users", "work_email", "e"), "*_email");
  EXPECT_EQ(rule("public", "users", "id", "work_email"), "*_email");  // alias matches a glob
  EXPECT_EQ(rule("public", "users", "phone", "p"), "phone");
  // Expression columns: only the output name, only bare globs.
  EXPECT_EQ(rule("", "", "", "home_email"), "*_email");
  EXPECT_EQ(rule("", "", "", "phone"), "phone");
  EXPECT_EQ(rule("", "", "", "ssn"), "");
  EXPECT_EQ(rule("", "", "", "card"), "");
  // Case-sensitive, as PostgreSQL stores names.
  EXPECT_EQ(rule("public", "customers", "SSN", "SSN"), "");
  EXPECT_EQ(rule("public", "Customers", "ssn", "ssn"), "");
  EXPECT_EQ(rule("", "", "", "PHONE"), "");
}

// Origins named by a statement or a view definition (no catalog): an empty schema may be any
// schema, "*" any table or every column; when in doubt a rule matches.
TEST(Masker, OriginMatchingFailsClosed) {
  auto m = Make(R"pb(
    columns { column: "public.customers.ssn" }
    columns {
      column: "customers.card"
      mask { style: MASK_STYLE_PARTIAL }
    }
    columns {
      column: "*_email"
      mask { style: MASK_STYLE_NULL }
    })pb");
  ASSERT_NE(m, nullptr);
  auto rule = [&](absl::string_view s, absl::string_view t, absl::string_view c) -> std::string {
    const ColumnRule* r = m->MatchOrigin(s, t, c);
    return r == nullptr ? "" : r->text;
  };
  EXPECT_EQ(rule("", "customers", "ssn"), "public.customers.ssn");
  EXPECT_EQ(rule("public", "customers", "ssn"), "public.customers.ssn");
  EXPECT_EQ(rule("other", "customers", "ssn"), "");
  EXPECT_EQ(rule("", "*", "ssn"), "public.customers.ssn");
  EXPECT_EQ(rule("", "customers", "*"), "public.customers.ssn");
  EXPECT_EQ(rule("", "accounts", "*"), "*_email");  // a whole row of any table may hold an e-mail column
  EXPECT_EQ(rule("", "accounts", "card"), "");
  EXPECT_EQ(rule("", "users", "home_email"), "*_email");
  // The redacted twin: the same rule, the token instead of PARTIAL; NULL stays NULL.
  const ColumnRule* card = m->MatchOrigin("", "customers", "card");
  ASSERT_NE(card, nullptr);
  EXPECT_EQ(card->mask.style, v1::MASK_STYLE_PARTIAL);
  EXPECT_EQ(m->Redacted(*card).mask.style, v1::MASK_STYLE_REDACT);
  EXPECT_EQ(m->Redacted(*card).text, "customers.card");
  EXPECT_EQ(m->Redacted(*m->MatchOrigin("", "u", "work_email")).mask.style, v1::MASK_STYLE_NULL);
}

TEST(Masker, FirstMatchingRuleWins) {
  auto m = Make(R"pb(
    columns {
      column: "ssn"
      mask { style: MASK_STYLE_REDACT }
    }
    columns {
      column: "public.t.ssn"
      mask { style: MASK_STYLE_PARTIAL }
    }
    columns {
      column: "card*"
      mask { style: MASK_STYLE_PARTIAL }
    }
    columns {
      column: "card_number"
      mask { style: MASK_STYLE_NULL }
    })pb");
  ASSERT_NE(m, nullptr);
  const ColumnRule* r = m->MatchColumn("public", "t", "ssn", "ssn");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->index, 0);
  r = m->MatchColumn("public", "t", "card_number", "card_number");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->text, "card*");
  MaskCounts counts;
  EXPECT_EQ(m->MaskWhole(*r, "4111111111111111", &counts), "************1111");
  EXPECT_THAT(counts.columns, UnorderedElementsAre(Pair("card*", 1)));
}

TEST(Masker, GlobsInDottedRules) {
  auto m = Make(R"pb(columns { column: "*.customers.tax_*" })pb");
  ASSERT_NE(m, nullptr);
  EXPECT_NE(m->MatchColumn("crm", "customers", "tax_id", "t"), nullptr);
  EXPECT_EQ(m->MatchColumn("crm", "customers", "id", "tax_id"), nullptr);
}

// ---- Invalid profiles ----

void ExpectInvalid(const std::string& profile, absl::string_view field, std::string key = kKey) {
  auto m = Masker::Create(Profile(profile), std::move(key));
  ASSERT_FALSE(m.ok()) << profile;
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr(field)) << m.status();
}

TEST(Masker, RejectsInvalidProfiles) {
  ExpectInvalid(R"pb(name: "p"
                     columns { column: "" })pb", "columns[0].column");
  ExpectInvalid(R"pb(columns { column: "ok" }
                     columns { column: "a..b" })pb", "columns[1].column");
  ExpectInvalid(R"pb(columns { column: "a.b.c.d" })pb", "columns[0].column");
  ExpectInvalid(R"pb(columns { column: ".ssn" })pb", "columns[0].column");
  {
    v1::MaskProfile p;
    v1::ColumnMask* c = p.add_columns();
    c->set_column("ssn");
    c->mutable_mask()->set_style(static_cast<v1::MaskStyle>(99));
    auto m = Masker::Create(p, kKey);
    ASSERT_FALSE(m.ok());
    EXPECT_THAT(m.status().message(), HasSubstr("columns[0].mask.style"));
  }
  ExpectInvalid(R"pb(detectors { detector: DETECTOR_UNSPECIFIED })pb", "detectors[0].detector");
  ExpectInvalid(R"pb(detectors { detector: DETECTOR_SSN }
                     detectors { detector: DETECTOR_CUSTOM })pb",
                "detectors[1].pattern");
  ExpectInvalid(R"pb(detectors { detector: DETECTOR_CUSTOM pattern: "(unclosed" })pb",
                "detectors[0].pattern");
  ExpectInvalid(R"pb(detectors { detector: DETECTOR_EMAIL pattern: "x" })pb",
                "detectors[0].pattern");
  ExpectInvalid(R"pb(detectors { detector: DETECTOR_CUSTOM pattern: "x*" })pb",
                "detectors[0].pattern");
  ExpectInvalid(R"pb(columns {
                       column: "ssn"
                       mask { style: MASK_STYLE_KEYED_HASH }
                     })pb",
                "hmac key", "");
  ExpectInvalid(R"pb(detectors {
                       detector: DETECTOR_SSN
                       mask { style: MASK_STYLE_KEYED_HASH }
                     })pb",
                "hmac key", "short");
  // The profile name is in the message.
  ExpectInvalid(R"pb(name: "bank"
                     columns { column: "" })pb", "mask profile \"bank\"");
}

TEST(Masker, KeyIsOptionalWithoutKeyedHash) {
  auto m = Masker::Create(Profile(kAllDetectors), "");
  EXPECT_TRUE(m.ok()) << m.status();
  auto empty = Masker::Create(v1::MaskProfile(), "");
  EXPECT_TRUE(empty.ok()) << empty.status();
}

// ---- Counts ----

TEST(MaskCounts, Merge) {
  MaskCounts a, b;
  a.AddDetector("ssn");
  a.AddColumn("customers.card", 2);
  b.AddDetector("ssn", 3);
  b.AddDetector("email");
  a.Merge(b);
  EXPECT_THAT(a.detectors, UnorderedElementsAre(Pair("ssn", 4), Pair("email", 1)));
  EXPECT_THAT(a.columns, UnorderedElementsAre(Pair("customers.card", 2)));
  EXPECT_EQ(a.total(), 7u);
  EXPECT_FALSE(a.empty());
  EXPECT_TRUE(MaskCounts().empty());
}

TEST(Masker, MergedProfilesKeepEveryRuleAndDetectorInOrder) {
  v1::MaskProfile a = Profile(R"(name: "pii" columns { column: "customers.ssn" }
                                 detectors { detector: DETECTOR_SSN })");
  v1::MaskProfile b = Profile(R"(name: "cards" columns { column: "customers.ssn" mask { style: MASK_STYLE_NULL } }
                                 columns { column: "*_card" } detectors { detector: DETECTOR_CARD })");
  v1::MaskProfile merged = MergeProfiles({&a, &b});
  EXPECT_EQ(merged.name(), "pii+cards");
  auto m = Masker::Create(merged, kKey);
  ASSERT_TRUE(m.ok()) << m.status();
  // The first profile's rule wins for a column both name.
  const ColumnRule* ssn = (*m)->MatchColumn("public", "customers", "ssn", "ssn");
  ASSERT_NE(ssn, nullptr);
  EXPECT_EQ(ssn->mask.style, v1::MASK_STYLE_REDACT);
  EXPECT_NE((*m)->MatchColumn("", "", "", "home_card"), nullptr);
  std::string out;
  ASSERT_TRUE((*m)->MaskText("ssn 078-05-1120 card 4111 1111 1111 1111", &out, nullptr));
  EXPECT_EQ(out.find("078-05-1120"), std::string::npos);
  EXPECT_EQ(out.find("4111 1111 1111 1111"), std::string::npos);
}

}  // namespace
}  // namespace interlock::mask
