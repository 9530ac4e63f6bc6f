// Streams a 100 MB JSON array of records (card numbers as numbers and strings, emails, SSNs
// under a member-name rule) through mask::JsonMasker in 16 KiB reads, and reports the
// throughput and the peak capacity of the masker's own buffers (not RSS): the memory bound
// JsonMasker promises is "the current token", whatever the document size.
//   build/tools/bench/json_mask_bench [megabytes]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "google/protobuf/text_format.h"
#include "userspace/mask/json_masker.h"

int main(int argc, char** argv) {
  const size_t megabytes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  interlock::v1::MaskProfile p;
  if (!google::protobuf::TextFormat::ParseFromString(R"pb(
                                                       columns {
                                                         column: "*ssn"
                                                         mask { style: MASK_STYLE_REDACT }
                                                       }
                                                       detectors { detector: DETECTOR_CARD }
                                                       detectors { detector: DETECTOR_EMAIL }
                                                     )pb",
                                                     &p)) {
    return 1;
  }
  auto masker = interlock::mask::Masker::Create(p, "");
  if (!masker.ok()) return 1;
  interlock::mask::JsonMasker jm(**masker);
  const std::string record =
      R"({"id": 12345, "email": "someone@example.com", "card": 4111111111111111, )"
      R"("user_ssn": "123-45-6789", "note": "paid with 4111-1111-1111-1111", "x": 1.5},)"
      "\n";
  std::string doc;
  while (doc.size() < 4 * 1024 * 1024) doc += record;
  std::string out;
  size_t fed = 0, peak = 0, out_bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  if (!jm.Feed("[", &out).ok()) return 1;
  while (fed < megabytes * 1000 * 1000) {
    for (size_t i = 0; i < doc.size(); i += 16384) {
      absl::Status st = jm.Feed(absl::string_view(doc).substr(i, 16384), &out);
      if (!st.ok()) {
        fprintf(stderr, "%s\n", std::string(st.message()).c_str());
        return 1;
      }
      peak = std::max(peak, jm.buffer_capacity());
      out_bytes += out.size();
      out.clear();
    }
    fed += doc.size();
  }
  if (!jm.Feed("0]", &out).ok() || !jm.Finish(&out).ok()) return 1;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf(
      "json_mask_bench: %zu bytes in, %zu out, %.2f s, %.1f MB/s, peak masker buffers %zu "
      "bytes, %llu values masked\n",
      fed, out_bytes, secs, fed / secs / 1e6, peak,
      static_cast<unsigned long long>(jm.counts().total()));
  return 0;
}
