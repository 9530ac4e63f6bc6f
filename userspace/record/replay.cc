#include "userspace/record/replay.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::record {
namespace {

std::string FormatEndpoint(const v1::Endpoint& ep) {
  if (ep.address().empty() && ep.port() == 0) return "-";
  if (absl::StrContains(ep.address(), ':'))
    return absl::StrFormat("[%s]:%d", ep.address(), ep.port());
  return absl::StrFormat("%s:%d", ep.address(), ep.port());
}

std::string FormatMs(int64_t nanos) { return absl::StrFormat("%.3fms", nanos / 1e6); }

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

void AppendHeader(std::string& out, const v1::SessionOpen& open, int64_t start_nanos) {
  const v1::WorkloadIdentity& id = open.identity();
  auto line = [&out](absl::string_view label, absl::string_view value) {
    absl::StrAppendFormat(&out, "%-12s %s\n", label, value);
  };
  line("session", OrDash(open.session_id()));
  line("workload", id.workload().empty() ? "(not enrolled)" : id.workload());
  std::string user = id.user().empty() ? "" : absl::StrCat(" (", id.user(), ")");
  line("process", absl::StrFormat("pid %d  uid %d%s  exe %s  comm %s", id.pid(), id.uid(), user,
                                  OrDash(id.exe()), OrDash(id.comm())));
  if (!id.cgroup_path().empty() || id.cgroup_id() != 0) {
    line("cgroup", absl::StrFormat("%s (id %d)", OrDash(id.cgroup_path()), id.cgroup_id()));
  }
  line("resource", OrDash(open.resource()));
  line("destination", FormatEndpoint(open.original_destination()));
  line("upstream", FormatEndpoint(open.upstream()));
  line("protocol", OrDash(open.protocol()));
  line("started", absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", absl::FromUnixNanos(start_nanos),
                                   absl::UTCTimeZone()));
  line("key", OrDash(open.key_fingerprint()));
  if (!open.sealed_originals_key().empty()) {
    line("originals",
         absl::StrCat("sealed to auditor key ", OrDash(open.auditor_key_fingerprint())));
  }
}

const char* DirectionName(v1::Direction d) {
  return d == v1::DIRECTION_TO_UPSTREAM ? "agent -> upstream"
         : d == v1::DIRECTION_TO_AGENT  ? "upstream -> agent"
                                        : "unknown direction";
}

void AppendHexdump(std::string& out, absl::string_view bytes, size_t max_bytes) {
  const size_t n = max_bytes == 0 ? bytes.size() : std::min(bytes.size(), max_bytes);
  for (size_t row = 0; row < n; row += 16) {
    std::string hex, ascii;
    for (size_t i = row; i < row + 16; ++i) {
      if (i < n) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        absl::StrAppendFormat(&hex, "%02x ", c);
        ascii.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.');
      } else {
        hex.append("   ");
      }
      if (i == row + 7) hex.push_back(' ');
    }
    absl::StrAppendFormat(&out, "%18s%06x  %s |%s|\n", "", row, hex, ascii);
  }
  if (n < bytes.size())
    absl::StrAppendFormat(&out, "%18s... %d more bytes\n", "", bytes.size() - n);
}

}  // namespace

std::string EscapedPreview(absl::string_view bytes, size_t max_chars) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    std::string piece;
    switch (c) {
      case '\r':
        piece = "\\r";
        break;
      case '\n':
        piece = "\\n";
        break;
      case '\t':
        piece = "\\t";
        break;
      case '\\':
        piece = "\\\\";
        break;
      case '"':
        piece = "\\\"";
        break;
      default:
        piece = (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c))
                                        : absl::StrFormat("\\x%02x", c);
    }
    if (out.size() + piece.size() > max_chars) {
      out.append("...");
      break;
    }
    out.append(piece);
  }
  return out;
}

std::string FormatRelativeTime(int64_t nanos_since_start) {
  return absl::StrCat("+", FormatMs(nanos_since_start));
}

std::string Hexdump(absl::string_view bytes, size_t max_bytes) {
  std::string out;
  AppendHexdump(out, bytes, max_bytes);
  return out;
}

std::string FormatTimelineHeader(const std::vector<v1::Record>& records) {
  if (records.empty()) return "(no records)\n";
  std::string out;
  if (records.front().has_open()) {
    AppendHeader(out, records.front().open(), records.front().time_unix_nanos());
  } else {
    out.append("(first record is not a session open)\n");
  }
  out.push_back('\n');
  return out;
}

std::string FormatTimelineRecord(const v1::Record& r, int64_t start,
                                 const TimelineOptions& options) {
  std::string out;
  const std::string at = FormatRelativeTime(r.time_unix_nanos() - start);
  switch (r.body_case()) {
    case v1::Record::kData: {
      const v1::Data& d = r.data();
      const char* dir = DirectionName(d.direction());
      absl::StrAppendFormat(&out, "%14s  %s  %8d bytes  \"%s\"\n", at, dir, d.payload().size(),
                            EscapedPreview(d.payload(), options.preview_chars));
      if (options.hexdump) AppendHexdump(out, d.payload(), options.hexdump_max_bytes);
      break;
    }
    case v1::Record::kSealed: {
      const v1::SealedData& d = r.sealed();
      const char* dir = DirectionName(d.direction());
      const std::string* plain = nullptr;
      if (options.originals != nullptr) {
        const auto it = options.originals->find(r.seq());
        if (it != options.originals->end()) plain = &it->second;
      }
      if (plain == nullptr) {
        const size_t n = d.ciphertext().size() > kSealTagBytes
                             ? d.ciphertext().size() - kSealTagBytes
                             : 0;
        absl::StrAppendFormat(&out, "%14s  %s  [sealed original: %d bytes]\n", at, dir, n);
        break;
      }
      absl::StrAppendFormat(&out, "%14s  %s  %8d bytes  original  \"%s\"\n", at, dir,
                            plain->size(), EscapedPreview(*plain, options.preview_chars));
      if (options.hexdump) AppendHexdump(out, *plain, options.hexdump_max_bytes);
      break;
    }
    case v1::Record::kEvent:
      absl::StrAppendFormat(&out, "%14s  event  %s  %s\n", at, r.event().kind(),
                            EscapedPreview(r.event().detail(), 256));
      break;
    case v1::Record::kClose: {
      const v1::SessionClose& c = r.close();
      absl::StrAppendFormat(&out,
                            "%14s  close  %s  %d bytes to upstream, %d bytes to agent, "
                            "duration %s%s\n",
                            at, OrDash(c.outcome()), c.bytes_to_upstream(), c.bytes_to_agent(),
                            FormatMs(r.time_unix_nanos() - start),
                            c.detail().empty() ? "" : absl::StrCat("  (", c.detail(), ")"));
      break;
    }
    case v1::Record::kSeal:
      absl::StrAppendFormat(&out,
                            "%14s  seal   key %s  signature %d bytes (run verify to check it)\n",
                            at, OrDash(r.seal().key_fingerprint()), r.seal().signature().size());
      break;
    case v1::Record::kSsh: {
      const v1::SshEvent& e = r.ssh();
      if (e.has_data()) {
        absl::StrAppendFormat(&out, "%14s  ssh    ch %d  %s  %8d bytes  \"%s\"\n", at, e.channel(),
                              v1::SshStream_Name(e.data().stream()), e.data().payload().size(),
                              EscapedPreview(e.data().payload(), options.preview_chars));
        if (options.hexdump) AppendHexdump(out, e.data().payload(), options.hexdump_max_bytes);
      } else {
        absl::StrAppendFormat(&out, "%14s  ssh    ch %d  %s\n", at, e.channel(),
                              EscapedPreview(e.ShortDebugString(), 256));
      }
      break;
    }
    case v1::Record::kOpen:
      absl::StrAppendFormat(&out, "%14s  open   (unexpected second open: %s)\n", at,
                            r.open().session_id());
      break;
    case v1::Record::BODY_NOT_SET:
      absl::StrAppendFormat(&out, "%14s  (record %d has no body)\n", at, r.seq());
      break;
  }
  return out;
}

std::string FormatTimelineTrailer(const std::vector<v1::Record>& records) {
  if (records.empty() || records.back().has_seal()) return "";
  return "(no seal: recording incomplete)\n";
}

std::string FormatTimeline(const std::vector<v1::Record>& records, const TimelineOptions& options) {
  std::string out = FormatTimelineHeader(records);
  if (records.empty()) return out;
  const int64_t start = records.front().time_unix_nanos();
  for (size_t i = records.front().has_open() ? 1 : 0; i < records.size(); ++i) {
    out.append(FormatTimelineRecord(records[i], start, options));
  }
  out.append(FormatTimelineTrailer(records));
  return out;
}

absl::StatusOr<UnsealedOriginals> UnsealOriginals(const std::vector<v1::Record>& records,
                                                  const AuditorPrivateKey& key) {
  if (records.empty() || !records.front().has_open()) {
    return absl::FailedPreconditionError("unseal: the recording has no session open record");
  }
  const v1::SessionOpen& open = records.front().open();
  if (open.sealed_originals_key().empty()) {
    return absl::FailedPreconditionError("unseal: this session kept no sealed originals");
  }
  const std::string fp = key.Fingerprint();
  if (!open.auditor_key_fingerprint().empty() && open.auditor_key_fingerprint() != fp) {
    return absl::InvalidArgumentError(
        absl::StrCat("unseal: this session's originals are sealed to auditor key ",
                     open.auditor_key_fingerprint(), "; the key given is ", fp));
  }
  INTERLOCK_ASSIGN_OR_RETURN(std::unique_ptr<UnsealingStream> u,
                             UnsealingStream::Create(key, open.sealed_originals_key()));
  UnsealedOriginals out;
  for (const v1::Record& r : records) {
    if (!r.has_sealed()) continue;
    auto plain = u->Open(r.sealed().counter(), r.sealed().ciphertext(),
                         SealedDataAad(open.session_id(), r.seq()));
    if (!plain.ok()) return Annotate(plain.status(), absl::StrCat("record ", r.seq()));
    out.emplace(r.seq(), *std::move(plain));
  }
  return out;
}

absl::Status WriteRawDirections(const std::vector<v1::Record>& records, const std::string& dir) {
  std::string to_upstream, to_agent;
  for (const v1::Record& r : records) {
    if (!r.has_data()) continue;
    if (r.data().direction() == v1::DIRECTION_TO_UPSTREAM) to_upstream.append(r.data().payload());
    if (r.data().direction() == v1::DIRECTION_TO_AGENT) to_agent.append(r.data().payload());
  }
  INTERLOCK_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  INTERLOCK_RETURN_IF_ERROR(
      WriteFileAtomic(absl::StrCat(dir, "/to_upstream.bin"), to_upstream, 0600));
  return WriteFileAtomic(absl::StrCat(dir, "/to_agent.bin"), to_agent, 0600);
}

}  // namespace interlock::record
