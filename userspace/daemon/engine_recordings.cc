// The recordings' disk: the free-space floor that refuses new sessions before the disk is
// full, retention by total size and age, and the index that `interlock sessions` reads.
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "userspace/audit/audit_log.h"
#include "userspace/common/file_util.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/metrics_text.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/engine_internal.h"
#include "userspace/record/recorder.h"

namespace interlock::daemon {

using namespace engine_internal;  // NOLINT: the engine's private helpers

namespace {

std::string Mib(uint64_t bytes) { return absl::StrCat(bytes >> 20, " MiB"); }

}  // namespace

absl::Status Engine::InitRecordings() {
  recordings_free_ = std::make_unique<record::FreeSpaceGauge>(recordings_dir_, kFreeSpaceTtl);
  recording_spares_ = record::SpareFiles::Start(recordings_dir_, record::SpareFiles::kDefaultDepth);
  const std::string path = absl::StrCat(recordings_dir_, "/", record::kRecordingIndexName);
  auto index = record::RecordingIndex::Open(path);
  if (!index.ok()) {
    // Sessions still run and are recorded; the CLI lists them from their files.
    INTERLOCK_LOG(kError, "recordings: %s", index.status().message());
    return absl::OkStatus();
  }
  recordings_index_ = *std::move(index);
  ApplyRetention("retention", absl::ZeroDuration());
  return absl::OkStatus();
}

bool Engine::RecordingDiskFull(std::string* detail) {
  const uint64_t floor = config_.recordings.min_free_bytes;
  if (floor == 0) return false;
  absl::StatusOr<uint64_t> free = recordings_free_->Get(clock_.Monotonic());
  if (!free.ok()) {
    // Fail closed: a disk whose space cannot be read cannot be trusted to hold a recording.
    *detail = std::string(free.status().message());
    return true;
  }
  if (*free >= floor) return false;
  // Retention may be allowed to make room (rate-limited inside).
  ApplyRetention("disk_full", kRetentionMinInterval);
  free = recordings_free_->Get(clock_.Monotonic());
  if (free.ok() && *free >= floor) return false;
  *detail = absl::StrCat("recordings file system ", recordings_dir_, " has ",
                         free.ok() ? Mib(*free) : std::string(free.status().message()),
                         " free, below recordings.min_free_mib ", Mib(floor),
                         ": new sessions are refused so that live ones can finish their recordings");
  return true;
}

void Engine::ApplyRetention(const char* why, absl::Duration min_gap) {
  const absl::Duration now_mono = clock_.Monotonic();
  if (now_mono - last_retention_ < min_gap) return;
  const bool first = last_retention_ == -absl::InfiniteDuration();
  last_retention_ = now_mono;
  const config::RecordingsSettings& rs = config_.recordings;
  auto files = record::ListRecordingFiles(recordings_dir_);
  if (!files.ok()) {
    INTERLOCK_LOG(kError, "recordings: %s", files.status().message());
    return;
  }
  absl::flat_hash_set<std::string> live;
  for (const auto& [relay, session] : sessions_) live.insert(session->id);
  record::RetentionLimits limits;
  limits.max_bytes = rs.retain_bytes;
  limits.max_age = absl::Hours(24) * rs.retain_days;
  std::vector<record::RecordingFile> expired;
  if (limits.max_bytes > 0 || limits.max_age > absl::ZeroDuration()) {
    expired = record::PickExpired(*files, live, limits, clock_.Now());
  }
  absl::flat_hash_set<std::string> deleted;
  for (const record::RecordingFile& f : expired) {
    const std::string path = absl::StrCat(recordings_dir_, "/", f.name);
    v1::AuditEvent ev;
    ev.set_kind(v1::AUDIT_KIND_DAEMON);
    ev.set_session_id(f.session_id);
    ev.mutable_recording()->set_file(f.name);
    if (::unlink(path.c_str()) != 0) {
      ev.set_outcome("recording_delete_failed");
      ev.set_detail(absl::StrCat(path, ": ", ::strerror(errno)));
    } else {
      ++recordings_deleted_;
      deleted.insert(f.session_id);
      ev.set_outcome("recording_deleted");
      ev.set_reason(why);
      ev.set_detail(absl::StrCat(f.bytes, " bytes, last written ", audit::FormatRfc3339(f.modified),
                                 "; limits: retain_mib ", rs.retain_bytes >> 20, ", retain_days ",
                                 rs.retain_days));
    }
    Audit(std::move(ev));
  }
  if (!deleted.empty()) recordings_free_->Invalidate();
  if (recordings_index_ != nullptr && (first || !deleted.empty())) {
    absl::flat_hash_set<std::string> keep;
    for (const record::RecordingFile& f : *files) {
      if (!deleted.contains(f.session_id)) keep.insert(f.session_id);
    }
    if (absl::Status st = recordings_index_->Compact(keep); !st.ok()) {
      INTERLOCK_LOG(kError, "recordings: %s", st.message());
    }
  }
}

void Engine::IndexSession(const Session& session, const proxy::ProxySession& relay) {
  if (recordings_index_ == nullptr) return;
  const record::Recorder* rec = relay.recorder();
  if (rec == nullptr) return;
  v1::RecordingIndexEntry entry;
  v1::SessionSummary* s = entry.mutable_summary();
  s->set_session_id(session.id);
  const v1::WorkloadIdentity* learned = relay.learned_identity();
  const v1::WorkloadIdentity& who = learned != nullptr ? *learned : session.identity;
  s->set_workload(who.workload());
  s->set_pid(who.pid());
  s->set_uid(who.uid());
  s->set_exe(who.exe());
  s->set_resource(session.resource->name);
  *s->mutable_original_destination() = session.original_destination;
  *s->mutable_upstream() = session.upstream;
  s->set_started(audit::FormatRfc3339(session.started));
  s->set_duration_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(clock_.Monotonic() - session.started_mono)));
  s->set_bytes_to_upstream(rec->bytes_to_upstream());
  s->set_bytes_to_agent(rec->bytes_to_agent());
  s->set_outcome(relay.outcome());
  s->set_state(rec->closed() && rec->status().ok() ? "sealed" : "incomplete");
  s->set_records(rec->records());
  if (handed_over_) {
    // After a live upgrade the new process owns the index and may have rewritten it
    // (Compact: temp file + rename): append to the file now at the path, not to ours.
    if (auto fresh = record::RecordingIndex::Open(recordings_index_->path()); fresh.ok()) {
      recordings_index_ = *std::move(fresh);
    }
  }
  if (absl::Status st = recordings_index_->Append(entry); !st.ok()) {
    INTERLOCK_LOG(kError, "recordings: %s", st.message());
  }
}

void Engine::RecordingsStatus(v1::StatusResponse* out) {
  v1::RecordingsStatus* r = out->mutable_recordings();
  r->set_dir(recordings_dir_);
  // A scan stats every file: at most once a second however often status is asked (a
  // scraper, a script in a loop).
  const absl::Duration now = clock_.Monotonic();
  if (now - recordings_scanned_ >= absl::Seconds(1)) {
    if (auto files = record::ListRecordingFiles(recordings_dir_); files.ok()) {
      uint64_t bytes = 0;
      for (const record::RecordingFile& f : *files) bytes += f.bytes;
      recordings_files_ = files->size();
      recordings_bytes_ = bytes;
      recordings_scanned_ = now;
    }
  }
  r->set_files(recordings_files_);
  r->set_bytes(recordings_bytes_);
  if (auto free = record::FreeBytes(recordings_dir_); free.ok()) r->set_free_bytes(*free);
  r->set_min_free_bytes(config_.recordings.min_free_bytes);
  r->set_retain_bytes(config_.recordings.retain_bytes);
  r->set_retain_days(config_.recordings.retain_days);
  r->set_deleted(recordings_deleted_);
  r->set_refused_disk_full(refused_disk_full_);
  if (recording_spares_ != nullptr) {
    record::SpareFiles::Stats spares = recording_spares_->stats();
    r->set_spare_files_taken(spares.taken);
    r->set_spare_files_missed(spares.missed);
    r->set_spare_files_error(spares.last_error);
  }
}

absl::Status Engine::StartMetrics() {
  const config::MetricsSettings& m = config_.metrics;
  if (m.address.empty() && m.unix_path.empty()) return absl::OkStatus();
  UniqueFd fd;
  std::string where;
  if (!m.address.empty()) {
    INTERLOCK_ASSIGN_OR_RETURN(net::SockAddr addr, net::SockAddr::Parse(m.address, m.port));
    INTERLOCK_ASSIGN_OR_RETURN(fd, handover_->ListenTcp(addr, 16));
    where = addr.ToString();
  } else {
    INTERLOCK_ASSIGN_OR_RETURN(fd, handover_->ListenUnix(m.unix_path, 0660));
    where = m.unix_path;
  }
  auto server = control::MetricsServer::Create(*loop_, std::move(fd),
                                               [this] { return control::PrometheusText(Status()); });
  if (!server.ok()) return Annotate(server.status(), "metrics");
  metrics_ = *std::move(server);
  INTERLOCK_LOG(kInfo, "metrics: serving Prometheus text at %s/metrics", where);
  return absl::OkStatus();
}

}  // namespace interlock::daemon
