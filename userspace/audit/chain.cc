#include "userspace/audit/chain.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "google/protobuf/util/json_util.h"
#include "userspace/common/file_util.h"
#include "userspace/common/sha256.h"

namespace interlock::audit {

namespace {
constexpr char kRotatedTimeFormat[] = "%Y%m%dT%H%M%SZ";

absl::string_view BaseName(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// "<anything>.<time>.<seq>" -> the suffix, whatever the live name.
std::optional<RotatedSuffix> ParseAnyRotatedName(absl::string_view file_name) {
  size_t last = file_name.rfind('.');
  if (last == absl::string_view::npos || last == 0) return std::nullopt;
  size_t mid = file_name.rfind('.', last - 1);
  if (mid == absl::string_view::npos) return std::nullopt;
  return ParseRotatedName(file_name.substr(0, mid), file_name);
}
}  // namespace

const std::string& GenesisHash() {
  static const std::string kGenesis(64, '0');
  return kGenesis;
}

std::string CheckpointMessage(uint64_t seq, absl::string_view prev_sha256, absl::string_view time,
                              absl::string_view reason) {
  return absl::StrCat("interlock.v1.audit_checkpoint\n", seq, "\n", prev_sha256, "\n", time, "\n",
                      reason);
}

std::string RotatedName(absl::string_view live_name, absl::Time rotated_at, uint64_t last_seq) {
  return absl::StrCat(live_name, ".", absl::FormatTime(kRotatedTimeFormat, rotated_at, absl::UTCTimeZone()),
                      ".", last_seq);
}

std::optional<RotatedSuffix> ParseRotatedName(absl::string_view live_name,
                                              absl::string_view file_name) {
  if (file_name.size() <= live_name.size() + 1 || file_name.substr(0, live_name.size()) != live_name ||
      file_name[live_name.size()] != '.') {
    return std::nullopt;
  }
  absl::string_view rest = file_name.substr(live_name.size() + 1);
  size_t dot = rest.find('.');
  if (dot == absl::string_view::npos) return std::nullopt;
  RotatedSuffix out;
  // YYYYmmddTHHMMSSZ by hand: absl::ParseTime's %Y takes every digit it sees.
  absl::string_view t = rest.substr(0, dot);
  auto digits = [&](size_t at, size_t n, int* v) {
    if (at + n > t.size()) return false;
    absl::string_view d = t.substr(at, n);
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; }) && absl::SimpleAtoi(d, v);
  };
  int year, month, day, hour, minute, second;
  if (t.size() != 16 || t[8] != 'T' || t[15] != 'Z' || !digits(0, 4, &year) || !digits(4, 2, &month) ||
      !digits(6, 2, &day) || !digits(9, 2, &hour) || !digits(11, 2, &minute) || !digits(13, 2, &second)) {
    return std::nullopt;
  }
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.month() != month || civil.day() != day || civil.hour() != hour || civil.minute() != minute ||
      civil.second() != second) {
    return std::nullopt;  // 20261399T... normalised to something else
  }
  out.rotated_at = absl::FromCivil(civil, absl::UTCTimeZone());
  absl::string_view seq = rest.substr(dot + 1);
  if (seq.empty() || !std::all_of(seq.begin(), seq.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(seq, &out.last_seq)) {
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> SortAuditFiles(std::vector<std::string> paths) {
  std::stable_sort(paths.begin(), paths.end(), [](const std::string& a, const std::string& b) {
    auto ra = ParseAnyRotatedName(BaseName(a));
    auto rb = ParseAnyRotatedName(BaseName(b));
    if (ra.has_value() != rb.has_value()) return ra.has_value();  // rotated before live
    if (!ra.has_value()) return false;                             // live files: as given
    return ra->last_seq < rb->last_seq;
  });
  return paths;
}

const char* ChainVerdictName(ChainReport::Verdict v) {
  switch (v) {
    case ChainReport::kValid: return "valid";
    case ChainReport::kIncomplete: return "incomplete";
    case ChainReport::kTampered: return "tampered";
  }
  return "?";
}

namespace {

class ChainVerification {
 public:
  ChainVerification(const std::vector<AuditFileBytes>& files, const record::RecordingPublicKey& key)
      : files_(files), key_(key), key_fp_(key.Fingerprint()) {}

  ChainReport Run() {
    for (size_t fi = 0; fi < files_.size(); ++fi) {
      const AuditFileBytes& file = files_[fi];
      const bool last_file = fi + 1 == files_.size();
      absl::string_view bytes = file.bytes;
      size_t off = 0;
      uint64_t line_no = 0;
      while (off < bytes.size()) {
        ++line_no;
        const std::string where = absl::StrCat(file.name, ":", line_no);
        const size_t nl = bytes.find('\n', off);
        if (nl == absl::string_view::npos) {
          const size_t partial = bytes.size() - off;
          if (last_file) {
            return Stop(ChainReport::kIncomplete, where,
                        absl::StrFormat("partial last line (%d bytes, no newline): a write cut short "
                                        "by a crash, or the file cut inside a line; the chain holds "
                                        "up to the line before",
                                        partial));
          }
          // interlockd, restarting after such a crash, sets the file aside and continues the
          // chain in a new file from the last whole line: the next file must chain to it.
          report_.notes.push_back(absl::StrFormat(
              "%s: partial line (%d bytes, no newline) left by a crash; the next file must "
              "continue the chain from the line before",
              where, partial));
          break;
        }
        absl::string_view line = bytes.substr(off, nl + 1 - off);
        off = nl + 1;
        if (std::optional<ChainReport> stop = Line(where, line)) return *std::move(stop);
      }
    }
    if (report_.lines == 0) {
      report_.notes.push_back("no lines");
    } else if (report_.checkpoints == 0) {
      report_.notes.push_back("no checkpoint: nothing is signed");
    } else if (report_.last_checkpoint_seq != report_.last_seq) {
      report_.notes.push_back(absl::StrFormat(
          "%d line(s) after the last checkpoint (seq %d) are chained but not yet signed",
          report_.last_seq - report_.last_checkpoint_seq, report_.last_checkpoint_seq));
    }
    return std::move(report_);
  }

 private:
  std::optional<ChainReport> Line(const std::string& where, absl::string_view line) {
    v1::AuditEvent ev;
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;  // a newer interlockd's fields are still hashed
    absl::string_view json = line.substr(0, line.size() - 1);
    if (!google::protobuf::util::JsonStringToMessage(std::string(json), &ev, opts).ok()) {
      return Stop(ChainReport::kTampered, where, "not a JSON audit event");
    }
    if (ev.seq() == 0) return Stop(ChainReport::kTampered, where, "no seq: not a chained audit line");
    if (!have_prev_) {
      report_.first_seq = ev.seq();
      if (ev.seq() == 1) {
        if (ev.prev_sha256() != GenesisHash()) {
          return Stop(ChainReport::kTampered, where, "seq 1 but prev_sha256 is not the genesis value");
        }
      } else {
        report_.notes.push_back(absl::StrFormat(
            "%s: the chain starts at seq %d (earlier lines are in files not given or removed by "
            "retention); its first link is not checked",
            where, ev.seq()));
      }
    } else {
      const uint64_t expected = prev_seq_ + 1;
      if (ev.seq() <= prev_seq_) {
        return Stop(ChainReport::kTampered, where,
                    absl::StrFormat("seq %d after seq %d (%s): lines reordered or repeated", ev.seq(),
                                    prev_seq_, prev_where_));
      }
      if (ev.seq() != expected) {
        return Stop(ChainReport::kTampered, where,
                    absl::StrFormat("seq %d where %d was expected: line(s) %d..%d missing (removed "
                                    "lines, or a removed file, after %s)",
                                    ev.seq(), expected, expected, ev.seq() - 1, prev_where_));
      }
      if (ev.prev_sha256() != prev_hash_) {
        // The seq run holds, so no line is missing: the line before was altered (its hash
        // changed), or this line's prev_sha256 was.
        return Stop(ChainReport::kTampered, prev_where_,
                    absl::StrFormat("hash mismatch: the SHA-256 of this line does not match "
                                    "prev_sha256 of the next line (%s): this line (or that "
                                    "field) was altered",
                                    where));
      }
    }
    if (ev.kind() == v1::AUDIT_KIND_AUDIT_CHECKPOINT) {
      const v1::AuditCheckpoint& c = ev.checkpoint();
      if (c.key_fingerprint() != key_fp_) {
        return Stop(ChainReport::kTampered, where,
                    absl::StrFormat("checkpoint signed by key %s, verifying with key %s",
                                    c.key_fingerprint(), key_fp_));
      }
      if (!key_.Verify(CheckpointMessage(ev.seq(), ev.prev_sha256(), ev.time(), c.reason()),
                       c.signature())) {
        return Stop(ChainReport::kTampered, where,
                    "bad signature: the checkpoint signature does not verify (forged, or its seq, "
                    "prev_sha256, time or reason altered)");
      }
      ++report_.checkpoints;
      report_.last_checkpoint_seq = ev.seq();
    }
    if (ev.kind() == v1::AUDIT_KIND_SESSION_END && ev.has_recording()) {
      report_.recordings.push_back({ev.session_id(), ev.recording(), where});
    }
    // Retention deleted a recording (engine_recordings.cc): its session-end event no
    // longer vouches for a file that must exist.
    if (ev.kind() == v1::AUDIT_KIND_DAEMON && ev.outcome() == "recording_deleted" && !ev.session_id().empty()) {
      std::erase_if(report_.recordings,
                    [&](const ChainReport::SessionRecording& r) { return r.session_id == ev.session_id(); });
      ++report_.recordings_deleted;
    }
    have_prev_ = true;
    prev_seq_ = ev.seq();
    prev_hash_ = Sha256Hex(line);
    prev_where_ = where;
    ++report_.lines;
    report_.last_seq = ev.seq();
    return std::nullopt;
  }

  ChainReport Stop(ChainReport::Verdict v, std::string where, std::string detail) {
    report_.verdict = v;
    report_.where = std::move(where);
    report_.detail = std::move(detail);
    return std::move(report_);
  }

  const std::vector<AuditFileBytes>& files_;
  const record::RecordingPublicKey& key_;
  const std::string key_fp_;
  ChainReport report_;
  bool have_prev_ = false;
  uint64_t prev_seq_ = 0;
  std::string prev_hash_;
  std::string prev_where_;
};

}  // namespace

ChainReport VerifyAuditChain(const std::vector<AuditFileBytes>& files,
                             const record::RecordingPublicKey& key) {
  return ChainVerification(files, key).Run();
}

std::optional<std::string> CrossCheckRecording(const v1::RecordingSummary& summary,
                                               const record::VerifyReport* report) {
  const std::string said =
      absl::StrFormat("its session ended with %s recording of %d records (head %s)",
                      summary.sealed() ? "a sealed" : "an unsealed", summary.records(),
                      summary.head_sha256().substr(0, 16));
  if (report == nullptr) {
    return absl::StrCat("recording ", summary.file(), " is missing, but ", said);
  }
  // A recording that interlockd could not finish (its recorder failed: the session ended
  // with it) may hold fewer records than were buffered: only its presence is checked.
  if (!summary.sealed()) return std::nullopt;
  const std::string have = HexEncode(report->head_hash);
  if (report->verdict != record::VerifyReport::kValid) {
    return absl::StrFormat("the file is %s with %d records, but %s: cut short or altered after "
                           "the clean close",
                           record::VerdictName(report->verdict), report->records_ok, said);
  }
  if (report->records_ok != summary.records()) {
    return absl::StrFormat("the file holds %d records, but %s: replaced after the session ended",
                           report->records_ok, said);
  }
  if (have != summary.head_sha256()) {
    return absl::StrFormat("the file's chain head is %s, but %s: replaced after the session ended",
                           have.substr(0, 16), said);
  }
  return std::nullopt;
}

}  // namespace interlock::audit
