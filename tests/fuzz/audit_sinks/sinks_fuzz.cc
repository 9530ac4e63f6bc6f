// libFuzzer target for the audit sinks' parsers and encoders (STYLE.md convention 10):
//   - the input as a spool segment file: DecodeSpoolRecords must return records that
//     re-encode to exactly the first (size - bad_bytes) bytes of the input;
//   - the input split into event fields (on 0xff bytes): the RFC 5424 message must keep its
//     header and structured data intact whatever the fields hold — exactly one unescaped
//     ']' (the end of our element) before the BOM, no control characters before it, header
//     and SD within kMaxHeaderAndSdBytes — and a datagram cut must stay valid UTF-8 where
//     the message was; each escaped SD value must stay within its bound.
// A violation aborts, which libFuzzer reports as a crash.
//
// Built as audit_sinks_fuzz (clang) and audit_sinks_fuzz_replay (any compiler; ctest runs it
// over corpus/ and crashers/).
//   ./audit_sinks_fuzz -max_len=4096 -max_total_time=600 <scratch corpus dir> corpus/
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "userspace/audit/sinks/spool.h"
#include "userspace/audit/sinks/syslog_format.h"

namespace sinks = interlock::audit::sinks;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void FuzzSpool(const std::string& data) {
  uint64_t bad = 0;
  std::vector<std::string> records = sinks::DecodeSpoolRecords(data, &bad);
  Check(bad <= data.size());
  std::string again;
  for (const std::string& r : records) again += sinks::EncodeSpoolRecord(r);
  Check(again == data.substr(0, data.size() - bad));
}

void FuzzSyslog(const std::string& data) {
  std::vector<std::string> f = absl::StrSplit(data, '\xff');
  f.resize(8);
  interlock::v1::AuditEvent e;
  e.set_kind(static_cast<interlock::v1::AuditKind>(
      data.empty() ? 0 : static_cast<unsigned char>(data[0]) % 20));
  e.set_id(f[0]);
  e.set_time(f[1]);
  e.set_host(f[2]);
  e.set_session_id(f[3]);
  e.mutable_identity()->set_workload(f[4]);
  e.set_resource(f[5]);
  e.mutable_decision()->set_action(f[6]);
  e.set_outcome(f[7]);
  const std::string msg =
      sinks::FormatSyslogMessage(e, {.app_name = "interlockd", .facility = 13, .procid = 1});
  // Parse the element as a receiver would (RFC 5424 section 6.3): the six header fields
  // hold no SP, so the SP after them starts it; then SP PARAM-NAME "=" DQUOTE value DQUOTE,
  // where a value holds '"', backslash and ']' only escaped; then ']' SP BOM and the JSON.
  constexpr char kStart[] = " [interlock@32473";
  size_t sd = std::string::npos;
  for (int field = 0; field < 6; ++field) {
    sd = msg.find(' ', sd == std::string::npos ? 0 : sd + 1);
    Check(sd != std::string::npos);
  }
  Check(sd != std::string::npos && msg.compare(sd, sizeof kStart - 1, kStart) == 0);
  for (size_t i = 0; i < sd; ++i) {
    const unsigned char c = static_cast<unsigned char>(msg[i]);
    Check(c > 0x20 || c == ' ');
    Check(c < 0x7f);
  }
  size_t i = sd + sizeof kStart - 1;
  while (true) {
    Check(i < msg.size());
    if (msg[i] == ']') break;
    Check(msg[i] == ' ');
    ++i;
    while (i < msg.size() && msg[i] != '=') {
      Check(msg[i] > 0x20 && msg[i] < 0x7f && msg[i] != '"' && msg[i] != ']');
      ++i;
    }
    Check(i + 1 < msg.size() && msg[i + 1] == '"');
    i += 2;
    while (true) {
      Check(i < msg.size());
      const unsigned char c = static_cast<unsigned char>(msg[i]);
      Check(c >= 0x20 && c != 0x7f);
      if (c == '\\') {
        Check(i + 1 < msg.size() && (msg[i + 1] == '"' || msg[i + 1] == '\\' || msg[i + 1] == ']'));
        i += 2;
        continue;
      }
      Check(c != ']');
      if (c == '"') break;
      ++i;
    }
    ++i;
  }
  Check(msg.compare(i, 5, "] \xEF\xBB\xBF") == 0);
  Check(i + 5 <= sinks::kMaxHeaderAndSdBytes);
  for (const std::string& v : f) {
    std::string out;
    sinks::AppendSdParamValue(v, sinks::kMaxSdValueBytes, &out);
    Check(out.size() <= sinks::kMaxSdValueBytes);
  }
  const std::string cut = sinks::TruncateForDatagram(msg, 2048);
  Check(cut.size() <= 2048 && msg.compare(0, cut.size(), cut) == 0);
  Check(cut.size() == msg.size() || (static_cast<unsigned char>(msg[cut.size()]) & 0xC0) != 0x80);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  FuzzSpool(input);
  FuzzSyslog(input);
  return 0;
}
