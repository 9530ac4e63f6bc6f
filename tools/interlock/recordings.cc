// interlock sessions / replay / verify: read the recordings under <state_dir>/recordings.
// These work with interlockd stopped: an auditor needs only the files and the public key.
#include <dirent.h>

#include <algorithm>
#include <cstdio>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "interlock/v1/control.pb.h"
#include "tools/interlock/cli.h"
#include "userspace/audit/audit_log.h"
#include "userspace/common/printable.h"
#include "userspace/control/client.h"
#include "userspace/record/reader.h"
#include "userspace/record/replay.h"
#include "userspace/record/sealed_box.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/verifier.h"
#include "userspace/replay/timeline.h"

namespace interlock::cli {

namespace {

std::string RecordingsDir(const config::ServiceConfig& cfg) {
  return absl::StrCat(cfg.state_dir, "/recordings");
}

std::vector<std::string> ListIds(const std::string& dir) {
  std::vector<std::string> ids;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ids;
  while (dirent* e = ::readdir(d)) {
    absl::string_view n(e->d_name);
    if (absl::ConsumeSuffix(&n, ".rec")) ids.emplace_back(n);
  }
  ::closedir(d);
  return ids;
}

// Resolves a full id or a unique prefix to a recording path.
absl::StatusOr<std::string> FindRecording(const config::ServiceConfig& cfg, const std::string& id) {
  std::vector<std::string> matches;
  for (const std::string& have : ListIds(RecordingsDir(cfg))) {
    if (absl::StartsWith(have, id)) matches.push_back(have);
  }
  if (matches.empty()) return absl::NotFoundError(absl::StrCat("no session ", id));
  if (matches.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("session id prefix ", id, " is ambiguous"));
  }
  return absl::StrCat(RecordingsDir(cfg), "/", matches[0], ".rec");
}

v1::SessionSummary Summarize(const std::string& id, const record::Recording& rec) {
  v1::SessionSummary s;
  s.set_session_id(id);
  s.set_records(rec.records.size());
  s.set_state("incomplete");
  int64_t first_ns = 0, last_ns = 0;
  for (const v1::Record& r : rec.records) {
    if (first_ns == 0) first_ns = r.time_unix_nanos();
    last_ns = r.time_unix_nanos();
    if (r.has_open()) {
      const auto& o = r.open();
      s.set_workload(o.identity().workload());
      s.set_pid(o.identity().pid());
      s.set_uid(o.identity().uid());
      s.set_exe(o.identity().exe());
      s.set_resource(o.resource());
      *s.mutable_original_destination() = o.original_destination();
      *s.mutable_upstream() = o.upstream();
    } else if (r.has_data()) {
      if (r.data().direction() == v1::DIRECTION_TO_UPSTREAM) {
        s.set_bytes_to_upstream(s.bytes_to_upstream() + r.data().payload().size());
      } else {
        s.set_bytes_to_agent(s.bytes_to_agent() + r.data().payload().size());
      }
    } else if (r.has_close()) {
      s.set_outcome(r.close().outcome());
    } else if (r.has_seal()) {
      s.set_state("sealed");
    }
  }
  s.set_started(audit::FormatRfc3339(absl::FromUnixNanos(first_ns)));
  s.set_duration_ms(static_cast<uint64_t>(std::max<int64_t>(0, last_ns - first_ns) / 1000000));
  return s;
}

}  // namespace

int CmdSessions(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts("usage: interlock sessions [--json]\n\nLists recorded sessions, newest last, "
              "and marks the ones interlockd is relaying now as live. --json prints one\n"
              "JSON object per line.");
    return 0;
  }
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  absl::flat_hash_set<std::string> live;
  v1::ControlRequest req;
  req.mutable_list_sessions();
  if (auto resp = control::CallControl(cfg->control_socket, req); resp.ok()) {
    for (const auto& s : resp->list_sessions().sessions()) live.insert(s.session_id());
  }
  std::vector<v1::SessionSummary> rows;
  for (const std::string& id : ListIds(RecordingsDir(*cfg))) {
    auto rec = record::ReadRecordingFile(absl::StrCat(RecordingsDir(*cfg), "/", id, ".rec"));
    if (!rec.ok()) continue;
    v1::SessionSummary s = Summarize(id, *rec);
    if (live.contains(id)) s.set_state("live");
    rows.push_back(std::move(s));
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.started() < b.started() || (a.started() == b.started() && a.session_id() < b.session_id());
  });
  if (g.json) {
    for (const auto& s : rows) std::printf("%s\n", ToJson(s).c_str());
    return 0;
  }
  std::printf("%-12s  %-20s  %-16s  %-8s  %-21s  %10s  %10s  %-10s  %s\n", "SESSION", "STARTED",
              "WORKLOAD", "PID", "DESTINATION", "TO_UP", "TO_AGENT", "STATE", "OUTCOME");
  for (const auto& s : rows) {
    std::string dst = absl::StrCat(s.original_destination().address(), ":",
                                   s.original_destination().port());
    std::printf("%-12s  %-20s  %-16s  %-8u  %-21s  %10llu  %10llu  %-10s  %s\n",
                common::Visible(s.session_id().substr(0, 12)).c_str(),
                common::Visible(s.started().substr(0, 19)).c_str(), common::Visible(s.workload()).c_str(), s.pid(),
                common::Visible(dst).c_str(), static_cast<unsigned long long>(s.bytes_to_upstream()),
                static_cast<unsigned long long>(s.bytes_to_agent()), common::Visible(s.state()).c_str(),
                common::Visible(s.outcome()).c_str());
  }
  return 0;
}

int CmdReplay(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args) || args.empty()) {
    std::puts("usage: interlock replay ID [--hex] [--raw-view] [--raw DIR] [--unseal KEYFILE]\n\n"
              "Prints the session's timeline (ID may be a unique prefix). PostgreSQL sessions are\n"
              "decoded: statements, Bind parameters, result rows as tables, errors, start-up.\n"
              "--raw-view shows byte previews instead, as for other protocols. --hex adds a\n"
              "hexdump of every payload (of every decoded message). --raw DIR writes\n"
              "DIR/to_upstream.bin and DIR/to_agent.bin.\n"
              "The recording holds what the agent saw. When interlockd kept the originals that\n"
              "masking replaced (config auditor_public_key_file), they are shown as\n"
              "\"[sealed original: N bytes]\"; --unseal KEYFILE (the auditor's private key, mode\n"
              "0600, from interlock auditor-keygen) decrypts them and shows them next to the\n"
              "masked rows.");
    return args.empty() ? 2 : 0;
  }
  std::string id, raw_dir, unseal_key;
  record::TimelineOptions opts;
  bool raw_view = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--raw" && i + 1 < args.size()) {
      raw_dir = args[++i];
    } else if (args[i] == "--unseal" && i + 1 < args.size()) {
      unseal_key = args[++i];
    } else if (args[i] == "--raw-view") {
      raw_view = true;
    } else if (args[i] == "--hex") {
      opts.hexdump = true;
    } else if (args[i] == "--json") {
      // accepted for symmetry; the timeline is text
    } else if (id.empty()) {
      id = args[i];
    } else {
      return Fail(2, absl::StrCat("replay: unexpected argument ", args[i]));
    }
  }
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  auto path = FindRecording(*cfg, id);
  if (!path.ok()) return Fail(1, absl::StrCat("replay: ", path.status().message()));
  auto rec = record::ReadRecordingFile(*path);
  if (!rec.ok()) return Fail(1, absl::StrCat("replay: ", rec.status().message()));
  record::UnsealedOriginals originals;
  if (!unseal_key.empty()) {
    auto key = record::LoadAuditorPrivateKey(unseal_key);
    if (!key.ok()) return Fail(1, absl::StrCat("replay: --unseal: ", key.status().message()));
    auto opened = record::UnsealOriginals(rec->records, *key);
    if (absl::IsFailedPrecondition(opened.status())) {
      // Nothing to open: say so and show the timeline anyway.
      std::fprintf(stderr, "interlock: replay: %s\n",
                   std::string(opened.status().message()).c_str());
    } else if (!opened.ok()) {
      return Fail(1, absl::StrCat("replay: ", opened.status().message()));
    } else {
      originals = *std::move(opened);
      opts.originals = &originals;
    }
  }
  std::fputs(replay::FormatSessionTimeline(rec->records, opts, raw_view).c_str(), stdout);
  if (!rec->stop.ok()) std::printf("(recording ends early: %s)\n", common::Visible(rec->stop.message()).c_str());
  if (!raw_dir.empty()) {
    absl::Status st = record::WriteRawDirections(rec->records, raw_dir);
    if (!st.ok()) return Fail(1, absl::StrCat("replay: ", st.message()));
    std::printf("wrote %s/to_upstream.bin and %s/to_agent.bin\n", raw_dir.c_str(), raw_dir.c_str());
  }
  return 0;
}

int CmdVerify(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args) || args.empty()) {
    std::puts("usage: interlock verify ID [--key PUBKEY.pem]\n\nChecks the recording's hash "
              "chain and its Ed25519 seal against interlockd's public\nkey (default "
              "<state_dir>/keys/recording.pub). Exit 0: valid; 3: incomplete (no seal,\n"
              "e.g. cut by a crash; verified up to the last complete record); 4: tampered.");
    return args.empty() ? 2 : 0;
  }
  std::string id, key_path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--key" && i + 1 < args.size()) {
      key_path = args[++i];
    } else if (id.empty()) {
      id = args[i];
    } else {
      return Fail(2, absl::StrCat("verify: unexpected argument ", args[i]));
    }
  }
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  if (key_path.empty()) key_path = absl::StrCat(cfg->state_dir, "/keys/recording.pub");
  auto key = record::RecordingKey::LoadPublic(key_path);
  if (!key.ok()) return Fail(1, absl::StrCat("verify: ", key.status().message()));
  auto path = FindRecording(*cfg, id);
  if (!path.ok()) return Fail(1, absl::StrCat("verify: ", path.status().message()));
  auto report = record::VerifyFile(*path, *key);
  if (!report.ok()) return Fail(1, absl::StrCat("verify: ", report.status().message()));
  std::printf("session %s: %s: %llu records verified%s%s\n", common::Visible(report->session_id).c_str(),
              record::VerdictName(report->verdict),
              static_cast<unsigned long long>(report->records_ok),
              report->detail.empty() ? "" : "; ", report->detail.c_str());
  switch (report->verdict) {
    case record::VerifyReport::kValid: return 0;
    case record::VerifyReport::kIncomplete: return 3;
    default: return 4;
  }
}

}  // namespace interlock::cli
