// libFuzzer target for interlock_codec_json and mask::JsonMasker (STYLE.md convention 10).
// Each input is
//   - tokenized whole, one byte at a time (up to 512 bytes) and in random reads: the token
//     transcripts (tests/unit/codec/json/json_check.h) must be equal, and the tokens' raw
//     bytes must concatenate to the input;
//   - masked (SSN, card, email detectors and member-name rules) whole and in random reads:
//     the outputs must be equal, and when the input is valid JSON the output must tokenize
//     without error.
// A violation aborts, which libFuzzer reports as a crash.
//
// Built as json_fuzz (clang, CMake) and json_fuzz_replay (any compiler; ctest runs it over
// corpus/ and crashers/ with tests/fuzz/pg/replay_main.cc).
//   ./json_fuzz -max_len=4096 -max_total_time=600 <scratch corpus dir> corpus/
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "google/protobuf/text_format.h"
#include "tests/unit/codec/json/json_check.h"
#include "userspace/mask/json_masker.h"

namespace json = interlock::codec::json;
namespace check = interlock::codec::json::testing;
using interlock::mask::JsonMasker;
using interlock::mask::Masker;

namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "json_fuzz: invariant broken: %s\n", what);
    abort();
  }
}

const Masker& TheMasker() {
  static const Masker* m = [] {
    interlock::v1::MaskProfile p;
    const char* text = R"pb(
      columns {
        column: "*ssn*"
        mask { style: MASK_STYLE_REDACT }
      }
      columns {
        column: "s"
        mask { style: MASK_STYLE_NULL }
      }
      columns {
        column: "p"
        mask { style: MASK_STYLE_PARTIAL }
      }
      columns {
        column: "h"
        mask { style: MASK_STYLE_KEYED_HASH }
      }
      detectors { detector: DETECTOR_SSN }
      detectors { detector: DETECTOR_CARD }
      detectors { detector: DETECTOR_EMAIL }
    )pb";
    if (!google::protobuf::TextFormat::ParseFromString(text, &p)) abort();
    auto r = Masker::Create(p, "0123456789abcdef0123456789abcdef");
    if (!r.ok()) abort();
    return r.value().release();
  }();
  return *m;
}

std::string MaskAll(const std::vector<absl::string_view>& chunks, bool* ok) {
  JsonMasker jm(TheMasker());
  std::string out;
  for (absl::string_view c : chunks) {
    if (!jm.Feed(c, &out).ok()) {
      *ok = false;
      return out;
    }
  }
  *ok = jm.Finish(&out).ok();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  uint32_t seed = 2166136261u;  // FNV-1a: the random reads depend only on the input
  for (char c : in) seed = (seed ^ static_cast<uint8_t>(c)) * 16777619u;

  const std::string whole = check::Transcript({in});
  Require(check::Transcript(check::RandomSplit(in, seed)) == whole, "random split");
  if (in.size() <= 512) Require(check::Transcript(check::Bytes(in)) == whole, "bytes");

  std::string joined;
  json::JsonTokenizer tok;
  const auto sink = [&](const json::JsonToken& t) {
    joined.append(t.raw.data(), t.raw.size());
    return absl::OkStatus();
  };
  absl::Status st = tok.Feed(in, sink);
  if (st.ok()) st = tok.Finish(sink);
  const bool valid = st.ok();
  if (valid) Require(joined == in, "raw bytes concatenate to the input");

  bool ok1 = false, ok2 = false;
  const std::string masked = MaskAll({in}, &ok1);
  const std::string masked_split = MaskAll(check::RandomSplit(in, seed ^ 0x5bd1e995u), &ok2);
  Require(ok1 == valid && ok2 == valid, "masker accepts what the tokenizer accepts");
  if (valid) {
    Require(masked == masked_split, "masker split");
    Require(check::Validate(masked).ok(), "masked output is valid JSON");
  }
  return 0;
}
