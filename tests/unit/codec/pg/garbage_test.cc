// Garbage in never crashes, and whatever a parser accepts re-encodes to the same bytes
// (pg_check.h, the same checks the fuzz target runs). Fixed seeds: failures reproduce.
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/codec/pg/captured_bytes.h"
#include "tests/unit/codec/pg/pg_check.h"
#include "userspace/codec/pg/framing.h"

namespace interlock::codec::pg {
namespace {

using captured::Bytes;

constexpr int kIterations = 100000;

std::string RandomBytes(std::mt19937& rng, size_t max_len) {
  std::string s(std::uniform_int_distribution<size_t>(0, max_len)(rng), '\0');
  std::uniform_int_distribution<int> byte(0, 255);
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

TEST(PgGarbage, RandomBytesNeverCrash) {
  std::mt19937 rng(20240601);
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string buf = RandomBytes(rng, 48);
    accepted += testing::CheckEveryParser(buf);
    testing::CheckStartupStream(buf);
    testing::CheckStartupBody(buf);
    testing::CheckTypedStream(buf, kMaxMessageBytes);
    testing::CheckTypedStream(buf, 16);
    (void)CommandTagRowCount(buf);
  }
  // The body-is-the-rest parsers (CopyData, SASL/GSS responses) accept anything.
  EXPECT_GE(accepted, 3 * kIterations);
}

TEST(PgGarbage, RandomBodiesBehindValidHeadersNeverCrash) {
  // Mostly small, plausible bodies after a real type byte: reaches deeper than pure noise.
  static constexpr char kTypes[] = "BCdcfDEHFPpQSXRK23CGHWDIEVvnNAtS1sZTq";
  std::mt19937 rng(42);
  std::uniform_int_distribution<size_t> pick(0, sizeof(kTypes) - 2);
  std::uniform_int_distribution<int> small(0, 3);
  for (int i = 0; i < kIterations; ++i) {
    std::string body = RandomBytes(rng, 24);
    // Bias integers towards small values and strings towards terminators.
    for (char& c : body) {
      if (small(rng) != 0) c = static_cast<char>(small(rng));
    }
    const char type = kTypes[pick(rng)];
    testing::CheckTypedBody(type, body);
    std::string startup_body = std::string("\0\3\0\0", 4) + body;
    testing::CheckStartupBody(startup_body);
  }
}

TEST(PgGarbage, MutatedCapturedSessionsNeverCrash) {
  const std::vector<absl::string_view> typed = {
      Bytes(captured::kLoginCompletion),    Bytes(captured::kSelect1Result),
      Bytes(captured::kExtendedQuery),      Bytes(captured::kExtendedResult),
      Bytes(captured::kDivByZeroError),     Bytes(captured::kCopyOutResult),
      Bytes(captured::kSaslInitialResponse)};
  const std::vector<absl::string_view> startup = {Bytes(captured::kStartupMessage),
                                                  Bytes(captured::kSslRequest)};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < kIterations; ++i) {
    const bool is_startup = i % 4 == 0;
    const auto& pool = is_startup ? startup : typed;
    std::string buf(pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)]);
    const int mutations = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int m = 0; m < mutations && !buf.empty(); ++m) {
      size_t at = std::uniform_int_distribution<size_t>(0, buf.size() - 1)(rng);
      switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
        case 0:
          buf[at] = static_cast<char>(byte(rng));
          break;
        case 1:
          buf[at] ^= static_cast<char>(1 << std::uniform_int_distribution<int>(0, 7)(rng));
          break;
        case 2:
          buf.erase(at, 1);
          break;
        case 3:
          buf.resize(at);
          break;
      }
    }
    if (is_startup) {
      testing::CheckStartupStream(buf);
    } else {
      testing::CheckTypedStream(buf, kMaxMessageBytes);
    }
  }
}

}  // namespace
}  // namespace interlock::codec::pg
