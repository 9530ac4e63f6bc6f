// libFuzzer target for interlock_codec_http (STYLE.md convention 10). Each input is tried as
//   - a stream of pipelined requests (heads and bodies), read whole, one byte at a time (up to
//     512 bytes) and in random reads: the transcripts must be equal;
//   - a stream of responses to a request whose method the input's length picks, the same way;
//   - a chunked body, decoded whole and in random reads, then re-encoded and decoded again;
//   - a request-target and path (ParseTarget, NormalizePath, ParseQuery, ElideQueryParams).
// Every head parsed must serialise to bytes that parse back to the same head, and every
// error must be one of the codec's codes with its "http: ..." context
// (tests/unit/codec/http/http_check.h); a violation aborts, which libFuzzer reports as a crash.
//
// Build by hand (clang 14; CMake does the same when CMAKE_CXX_COMPILER is clang++), one line:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I.
//   tests/fuzz/http/http_codec_fuzz.cc
//     userspace/codec/http/*.cc userspace/common/status_macros.cc
//     $(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format)
//     -o http_codec_fuzz
//   mkdir -p /tmp/httpcorpus
//   ./http_codec_fuzz -max_len=8192 /tmp/httpcorpus tests/fuzz/http/corpus
// With g++ the same file links into http_codec_fuzz_replay (tests/fuzz/pg/replay_main.cc),
// which ctest runs over corpus/ and crashers/.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "tests/unit/codec/http/http_check.h"

namespace check = interlock::codec::http::testing;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  uint32_t seed = 2166136261u;  // FNV-1a: the random reads depend only on the input
  for (char c : in) seed = (seed ^ static_cast<uint8_t>(c)) * 16777619u;
  check::CheckSplitsAgree(in, /*requests=*/true, "", seed, /*byte_reads_max=*/512);
  static constexpr absl::string_view kMethods[] = {"GET", "HEAD", "CONNECT", "POST"};
  const absl::string_view method = kMethods[in.size() % 4];
  check::CheckSplitsAgree(in, /*requests=*/false, method, seed, /*byte_reads_max=*/512);
  check::CheckChunked(in, seed);
  check::CheckTargetFunctions(in.substr(0, 1024));
  return 0;
}
