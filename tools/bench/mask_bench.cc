// Masking micro-benchmarks: each detector on realistic values with and without a hit,
// and Masker::MaskText on a typical ~200-byte row value (row_to_json) with no PII, the
// common case that decides masked-vs-unmasked proxy throughput.
//
//   ninja -C build mask_bench && build/tools/bench/mask_bench
//   build/tools/bench/mask_bench --benchmark_filter=MaskText
//
// bytes_per_second is the scanned value size per iteration.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "userspace/mask/detectors.h"
#include "userspace/mask/masker.h"

namespace interlock::mask {
namespace {

// A typical row_to_json value: ids, timestamps, amounts, free text. No PII.
constexpr char kRowNoPii[] =
    R"({"id":4711,"customer_id":90210,"status":"shipped","created_at":"2024-01-15T10:30:00Z",)"
    R"("total":"1299.95","currency":"EUR","items":3,"note":"leave at the back door, ring twice",)"
    R"("sku":"AB-1002-XL","warehouse":"DE-FRA-02"})";
// The same shape without any digit or '@' (names, free text): the pre-scan exit.
constexpr char kRowNoDigits[] =
    R"({"name":"Jane Example","city":"Springfield","status":"shipped","tier":"gold",)"
    R"("note":"leave at the back door, ring twice; fragile items inside, handle with care",)"
    R"("tags":"priority,gift,express","country":"Germany","lang":"de"})";
constexpr char kRowWithPii[] =
    R"({"id":4711,"name":"Jane Example","ssn":"078-05-1120","card":"4111 1111 1111 1111",)"
    R"("iban":"DE89 3704 0044 0532 0130 00","routing":"011000015","email":"jane@example.com",)"
    R"("phone":"(415) 555-2671","created_at":"2024-01-15T10:30:00Z"})";

std::unique_ptr<ContentDetector> MakeDetector(v1::Detector kind, absl::string_view pattern = {}) {
  auto d = ContentDetector::Create(kind, pattern);
  if (!d.ok()) std::abort();
  return std::move(d).value();
}

void RunDetector(benchmark::State& state, const ContentDetector& d, absl::string_view value,
                 size_t want) {
  SpanList spans;
  for (auto _ : state) {
    spans.clear();
    d.FindAll(value, &spans);
    benchmark::DoNotOptimize(spans.data());
  }
  if (spans.size() != want) state.SkipWithError("unexpected match count");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}

#define DETECTOR_BENCH(Name, kind, hit_value, miss_value) \
  void BM_##Name##_Hit(benchmark::State& state) {         \
    auto d = MakeDetector(kind);                          \
    RunDetector(state, *d, hit_value, 1);                 \
  }                                                       \
  BENCHMARK(BM_##Name##_Hit);                             \
  void BM_##Name##_Miss(benchmark::State& state) {        \
    auto d = MakeDetector(kind);                          \
    RunDetector(state, *d, miss_value, 0);                \
  }                                                       \
  BENCHMARK(BM_##Name##_Miss)

DETECTOR_BENCH(Ssn, v1::DETECTOR_SSN, R"({"id":4711,"ssn":"078-05-1120","dob":"1980-04-12"})",
               R"({"id":4711,"ssn":"000-05-1120","dob":"1980-04-12"})");
DETECTOR_BENCH(Card, v1::DETECTOR_CARD,
               R"({"order":1002,"card":"4111 1111 1111 1111","exp":"12/27"})",
               R"({"order":1002,"card":"4111 1111 1111 1112","exp":"12/27"})");
DETECTOR_BENCH(Iban, v1::DETECTOR_IBAN,
               R"({"payee":"ACME GmbH","iban":"DE89 3704 0044 0532 0130 00","amount":"120.00"})",
               R"({"payee":"ACME GmbH","iban":"DE89 3704 0044 0532 0130 01","amount":"120.00"})");
DETECTOR_BENCH(Aba, v1::DETECTOR_ABA,
               R"({"bank":"Fed Boston","routing":"011000015","acct":"12345"})",
               R"({"bank":"Fed Boston","routing":"011000016","acct":"12345"})");
DETECTOR_BENCH(Email, v1::DETECTOR_EMAIL,
               R"({"id":4711,"name":"Jane Example","email":"jane.example@mail.example.com"})",
               R"({"id":4711,"name":"Jane Example","handle":"@jane_example on social"})");
DETECTOR_BENCH(Phone, v1::DETECTOR_PHONE,
               R"({"id":4711,"name":"Jane","phone":"+1 (415) 555-2671"})",
               R"({"id":4711,"name":"Jane","phone":"+1 (415) 155-2671"})");

// RE2 for comparison: the custom detector, and an email regex, to show why email is
// hand-written.
void BM_Custom_Hit(benchmark::State& state) {
  auto d = MakeDetector(v1::DETECTOR_CUSTOM, "EMP-[0-9]{6}");
  RunDetector(state, *d, R"({"id":4711,"employee":"EMP-123456","dept":"sales"})", 1);
}
BENCHMARK(BM_Custom_Hit);
void BM_Custom_Miss(benchmark::State& state) {
  auto d = MakeDetector(v1::DETECTOR_CUSTOM, "EMP-[0-9]{6}");
  RunDetector(state, *d, kRowNoPii, 0);
}
BENCHMARK(BM_Custom_Miss);
constexpr char kEmailRe2[] =
    R"([A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,})";
void BM_EmailRe2_Hit(benchmark::State& state) {
  auto d = MakeDetector(v1::DETECTOR_CUSTOM, kEmailRe2);
  RunDetector(state, *d,
              R"({"id":4711,"name":"Jane Example","email":"jane.example@mail.example.com"})", 1);
}
BENCHMARK(BM_EmailRe2_Hit);
void BM_EmailRe2_Miss(benchmark::State& state) {
  auto d = MakeDetector(v1::DETECTOR_CUSTOM, kEmailRe2);
  RunDetector(state, *d, kRowNoPii, 0);
}
BENCHMARK(BM_EmailRe2_Miss);
void BM_EmailHand_Miss(benchmark::State& state) {
  auto d = MakeDetector(v1::DETECTOR_EMAIL);
  RunDetector(state, *d, kRowNoPii, 0);
}
BENCHMARK(BM_EmailHand_Miss);

// The shared digit-run pass every digit-based detector builds on.
void BM_FindDigitRuns_Row(benchmark::State& state) {
  const absl::string_view value = kRowNoPii;
  for (auto _ : state) {
    DigitRuns runs;
    FindDigitRuns(value, &runs);
    benchmark::DoNotOptimize(runs.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}
BENCHMARK(BM_FindDigitRuns_Row);

// ---- Masker ----

std::unique_ptr<Masker> MakeMasker(v1::MaskStyle style) {
  v1::MaskProfile p;
  p.set_name("bench");
  for (v1::Detector kind : {v1::DETECTOR_SSN, v1::DETECTOR_CARD, v1::DETECTOR_IBAN,
                            v1::DETECTOR_ABA, v1::DETECTOR_EMAIL, v1::DETECTOR_PHONE}) {
    v1::DetectorMask* d = p.add_detectors();
    d->set_detector(kind);
    d->mutable_mask()->set_style(style);
  }
  v1::ColumnMask* c = p.add_columns();
  c->set_column("*_ssn");
  c->mutable_mask()->set_style(style);
  auto m = Masker::Create(p, std::string(32, 'k'));
  if (!m.ok()) std::abort();
  return std::move(m).value();
}

void RunMaskText(benchmark::State& state, absl::string_view value, bool want_hit,
                 v1::MaskStyle style = v1::MASK_STYLE_REDACT) {
  auto m = MakeMasker(style);
  std::string out;
  bool hit = false;
  for (auto _ : state) {
    hit = m->MaskText(value, &out, nullptr);
    benchmark::DoNotOptimize(hit);
    benchmark::DoNotOptimize(out.data());
  }
  if (hit != want_hit) state.SkipWithError("unexpected MaskText result");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}

void BM_MaskText_RowNoPii(benchmark::State& state) { RunMaskText(state, kRowNoPii, false); }
BENCHMARK(BM_MaskText_RowNoPii);
void BM_MaskText_RowNoDigits(benchmark::State& state) { RunMaskText(state, kRowNoDigits, false); }
BENCHMARK(BM_MaskText_RowNoDigits);
void BM_MaskText_ShortValueNoPii(benchmark::State& state) { RunMaskText(state, "shipped", false); }
BENCHMARK(BM_MaskText_ShortValueNoPii);
void BM_MaskText_RowWithPii_Redact(benchmark::State& state) {
  RunMaskText(state, kRowWithPii, true);
}
BENCHMARK(BM_MaskText_RowWithPii_Redact);
void BM_MaskText_RowWithPii_KeyedHash(benchmark::State& state) {
  RunMaskText(state, kRowWithPii, true, v1::MASK_STYLE_KEYED_HASH);
}
BENCHMARK(BM_MaskText_RowWithPii_KeyedHash);

void BM_MaskWhole(benchmark::State& state, v1::MaskStyle style) {
  auto m = MakeMasker(style);
  const ColumnRule* rule = m->MatchColumn("public", "customers", "customer_ssn", "ssn");
  if (rule == nullptr) std::abort();
  const std::string value = "078-05-1120";
  for (auto _ : state) {
    auto out = m->MaskWhole(*rule, value);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}
BENCHMARK_CAPTURE(BM_MaskWhole, Redact, v1::MASK_STYLE_REDACT);
BENCHMARK_CAPTURE(BM_MaskWhole, Partial, v1::MASK_STYLE_PARTIAL);
BENCHMARK_CAPTURE(BM_MaskWhole, KeyedHash, v1::MASK_STYLE_KEYED_HASH);

void BM_MatchColumn(benchmark::State& state) {
  auto m = MakeMasker(v1::MASK_STYLE_REDACT);
  for (auto _ : state) {
    benchmark::DoNotOptimize(m->MatchColumn("public", "orders", "created_at", "created_at"));
  }
}
BENCHMARK(BM_MatchColumn);

}  // namespace
}  // namespace interlock::mask

BENCHMARK_MAIN();
