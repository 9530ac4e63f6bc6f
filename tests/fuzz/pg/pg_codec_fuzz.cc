// libFuzzer target for interlock_codec_pg (STYLE.md convention 10). Each input is tried as
//   - the first bytes of a connection: PeekStartupFrame + ParseStartupPacket, and a bare
//     startup-packet body,
//   - a stream of typed messages: PeekHeader/PeekFrame, then every parse function that its type
//     byte may mean in either direction (with the default and with a small max_len),
//   - a bare message body for every parse function, and as a CommandComplete tag.
// Every accepted message must re-encode to the same bytes and parse back equal
// (tests/unit/codec/pg/pg_check.h); a violation aborts, which libFuzzer reports as a crash.
//
// Build by hand (clang 14; CMake does the same when CMAKE_CXX_COMPILER is clang++), one line:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I.
//   tests/fuzz/pg/pg_codec_fuzz.cc
//     userspace/codec/pg/*.cc userspace/common/status_macros.cc
//     $(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format) -o pg_codec_fuzz
//   mkdir -p /tmp/pgcorpus && ./pg_codec_fuzz -max_len=4096 /tmp/pgcorpus tests/fuzz/pg/corpus
// With g++ the same file links into pg_codec_fuzz_replay (replay_main.cc), which ctest runs over
// corpus/ and crashers/.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "tests/unit/codec/pg/pg_check.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"

namespace pg = interlock::codec::pg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  pg::testing::CheckStartupStream(in);
  pg::testing::CheckStartupBody(in);
  pg::testing::CheckTypedStream(in, pg::kMaxMessageBytes);
  pg::testing::CheckTypedStream(in, 64);
  pg::testing::CheckEveryParser(in);
  (void)pg::CommandTagRowCount(in);
  if (!in.empty()) {
    (void)pg::MessageName(in[0], true);
    (void)pg::MessageName(in[0], false);
  }
  return 0;
}
