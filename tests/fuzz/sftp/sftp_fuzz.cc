// libFuzzer target for interlock_codec_sftp (STYLE.md convention 10). Each input is a
// session: records of [byte direction: even = client][uint32 length][bytes]
// (tests/unit/codec/sftp/sftp_check.h). The session is tracked with each record whole, in
// random pieces, and (up to 4 KiB) one byte at a time: the transcripts (ops, Finish's ops,
// metadata count, status) must be equal. A violation aborts, which libFuzzer reports as a
// crash; a crash or sanitizer report inside the tracker is one too.
//
// Built as sftp_fuzz (clang, CMake) and sftp_fuzz_replay (any compiler; ctest runs it over
// corpus/ and crashers/ with tests/fuzz/pg/replay_main.cc).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "tests/unit/codec/sftp/sftp_check.h"

namespace check = interlock::codec::sftp::testing;

namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "sftp_fuzz: invariant broken: %s\n", what);
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  uint32_t seed = 2166136261u;  // FNV-1a: the random pieces depend only on the input
  for (char c : in) seed = (seed ^ static_cast<uint8_t>(c)) * 16777619u;
  const check::Session session = check::ParseRecords(in);
  const std::string whole = check::Run(session, check::Whole);
  uint32_t s = seed;
  Require(check::Run(session,
                     [&s](absl::string_view b) {
                       s = s * 2654435761u + 1;
                       return check::RandomSplit(b, s);
                     }) == whole,
          "random pieces");
  if (size <= 4096) Require(check::Run(session, check::Bytes) == whole, "one byte at a time");
  return 0;
}
