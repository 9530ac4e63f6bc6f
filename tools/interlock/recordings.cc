// interlock sessions / replay / verify: read the recordings under <state_dir>/recordings.
// These work with interlockd stopped: an auditor needs only the files and the public key.
#include <dirent.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>

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
#include "userspace/audit/chain.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/printable.h"
#include "userspace/control/client.h"
#include "userspace/record/reader.h"
#include "userspace/record/replay.h"
#include "userspace/record/sealed_box.h"
#include "userspace/record/session_index.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/verifier.h"
#include "userspace/replay/asciicast.h"
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
    } else if (r.has_ssh() && r.ssh().has_data()) {
      if (r.ssh().data().stream() == v1::SSH_STREAM_STDIN) {
        s.set_bytes_to_upstream(s.bytes_to_upstream() + r.ssh().data().payload().size());
      } else {
        s.set_bytes_to_agent(s.bytes_to_agent() + r.ssh().data().payload().size());
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

int Sessions(const Globals& g) {
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  absl::flat_hash_set<std::string> live;
  v1::ControlRequest req;
  req.mutable_list_sessions();
  if (auto resp = control::CallControl(cfg->control_socket, req); resp.ok()) {
    for (const auto& s : resp->list_sessions().sessions()) live.insert(s.session_id());
  }
  // The index (written by interlockd as sessions end) has a summary of most recordings;
  // only those without an entry (live, cut by a crash, older than the index) are read.
  // The directory decides what exists: an entry whose file is gone is not listed.
  const std::string dir = RecordingsDir(*cfg);
  record::IndexContents index;
  if (auto read = record::ReadRecordingIndex(absl::StrCat(dir, "/", record::kRecordingIndexName)); read.ok()) {
    index = *std::move(read);
  }
  std::vector<v1::SessionSummary> rows;
  for (const std::string& id : ListIds(dir)) {
    if (auto it = index.entries.find(id); it != index.entries.end() && !live.contains(id)) {
      rows.push_back(std::move(*it->second.mutable_summary()));
      continue;
    }
    auto rec = record::ReadRecordingFile(absl::StrCat(dir, "/", id, ".rec"));
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

struct ReplayOptions {
  std::string id;
  std::string raw_dir;
  std::string unseal_key;
  bool raw_view = false;
  bool hex = false;
  bool asciicast = false;
  int64_t channel = -1;  // --channel; -1: not given
  bool input = false;
};

// interlock replay ID --asciicast: the cast of one SSH channel on stdout.
int ReplayAsciicast(const std::vector<v1::Record>& records, const ReplayOptions& o) {
  replay::AsciicastOptions options{.input = o.input};
  if (o.channel >= 0) options.channel = static_cast<uint32_t>(o.channel);
  auto cast = replay::ExportAsciicast(records, options);
  if (!cast.ok()) return Fail(1, absl::StrCat("replay: ", cast.status().message()));
  std::fputs(cast->c_str(), stdout);
  return 0;
}

int Replay(const Globals& g, const ReplayOptions& o) {
  const std::string& id = o.id;
  const std::string& raw_dir = o.raw_dir;
  const std::string& unseal_key = o.unseal_key;
  const bool raw_view = o.raw_view;
  record::TimelineOptions opts;
  opts.hexdump = o.hex;
  if (!o.asciicast && (o.channel >= 0 || o.input)) {
    return Fail(2, "replay: --channel and --input go with --asciicast (interlock replay --help)");
  }
  if (o.asciicast && (o.hex || raw_view || !raw_dir.empty() || !unseal_key.empty())) {
    return Fail(2, "replay: --asciicast goes without --hex, --raw-view, --raw and --unseal (interlock replay --help)");
  }
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  auto path = FindRecording(*cfg, id);
  if (!path.ok()) return Fail(1, absl::StrCat("replay: ", path.status().message()));
  auto rec = record::ReadRecordingFile(*path);
  if (!rec.ok()) return Fail(1, absl::StrCat("replay: ", rec.status().message()));
  if (o.asciicast) return ReplayAsciicast(rec->records, o);
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

// The live audit file and its rotated siblings, in chain order.
std::vector<std::string> AuditFilesOf(const std::string& live_path) {
  const size_t slash = live_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : live_path.substr(0, slash);
  const std::string live = slash == std::string::npos ? live_path : live_path.substr(slash + 1);
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name == live || audit::ParseRotatedName(live, e->d_name).has_value()) {
        out.push_back(absl::StrCat(dir, "/", e->d_name));
      }
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return audit::SortAuditFiles(std::move(out));
}

absl::StatusOr<audit::ChainReport> VerifyAuditFiles(const std::vector<std::string>& paths,
                                                    const record::RecordingPublicKey& key) {
  std::vector<audit::AuditFileBytes> files;
  for (const std::string& p : paths) {
    INTERLOCK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(p));
    files.push_back({p, std::move(bytes)});
  }
  return audit::VerifyAuditChain(files, key);
}

int VerdictExit(audit::ChainReport::Verdict v) {
  switch (v) {
    case audit::ChainReport::kValid: return 0;
    case audit::ChainReport::kIncomplete: return 3;
    default: return 4;
  }
}

// interlock verify --audit [FILE...]: the chain across the files, then each recording that
// a session-end event vouches for (when the recordings directory is known).
int VerifyAudit(const Globals& g, std::vector<std::string> paths, std::string key_path,
                std::string recordings_dir) {
  if (paths.empty() || key_path.empty() || recordings_dir.empty()) {
    auto cfg = LoadCliConfig(g);
    if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
    if (key_path.empty()) key_path = absl::StrCat(cfg->state_dir, "/keys/recording.pub");
    if (paths.empty()) {
      paths = AuditFilesOf(cfg->audit_file.path);
      if (recordings_dir.empty()) recordings_dir = RecordingsDir(*cfg);
    }
  }
  if (paths.empty()) return Fail(1, "verify: no audit files");
  paths = audit::SortAuditFiles(std::move(paths));
  auto key = record::RecordingKey::LoadPublic(key_path);
  if (!key.ok()) return Fail(1, absl::StrCat("verify: ", key.status().message()));
  auto report = VerifyAuditFiles(paths, *key);
  if (!report.ok()) return Fail(1, absl::StrCat("verify: ", report.status().message()));
  for (const std::string& n : report->notes) std::printf("note: %s\n", common::Visible(n).c_str());
  if (report->verdict != audit::ChainReport::kValid) {
    std::printf("audit: %s: %s: %s (%llu lines verified before it)\n", audit::ChainVerdictName(report->verdict),
                report->where.c_str(), common::Visible(report->detail).c_str(),
                static_cast<unsigned long long>(report->lines));
    if (report->verdict == audit::ChainReport::kTampered) return 4;
  } else {
    std::printf("audit: valid: %llu lines (seq %llu..%llu) in %zu file(s), %llu checkpoint(s) "
                "verified, last at seq %llu\n",
                static_cast<unsigned long long>(report->lines),
                static_cast<unsigned long long>(report->first_seq),
                static_cast<unsigned long long>(report->last_seq), paths.size(),
                static_cast<unsigned long long>(report->checkpoints),
                static_cast<unsigned long long>(report->last_checkpoint_seq));
  }
  if (!recordings_dir.empty()) {
    size_t checked = 0;
    for (const auto& s : report->recordings) {
      const std::string rec_path = absl::StrCat(recordings_dir, "/", s.summary.file());
      if (s.summary.file().empty() || s.summary.file().find('/') != std::string::npos) continue;
      absl::StatusOr<record::VerifyReport> rr = record::VerifyFile(rec_path, *key);
      if (!rr.ok() && !absl::IsNotFound(rr.status())) {
        return Fail(1, absl::StrCat("verify: ", rr.status().message()));
      }
      if (auto why = audit::CrossCheckRecording(s.summary, rr.ok() ? &*rr : nullptr)) {
        std::printf("session %s: tampered: %s (session end at %s)\n", common::Visible(s.session_id).c_str(),
                    common::Visible(*why).c_str(), s.where.c_str());
        return 4;
      }
      ++checked;
    }
    std::printf("recordings: %zu checked against their session-end events", checked);
    if (report->recordings_deleted > 0) {
      std::printf(", %llu deleted by retention (audited)", static_cast<unsigned long long>(report->recordings_deleted));
    }
    std::printf("\n");
  }
  return VerdictExit(report->verdict);
}

struct VerifyOptions {
  std::vector<std::string> args;  // ID, or with --audit the audit files
  std::string key_path;
  std::vector<std::string> audit_files;  // --audit-file
  std::string recordings_dir;
  bool audit_mode = false;
};

int Verify(const Globals& g, VerifyOptions o) {
  std::string& key_path = o.key_path;
  std::string& recordings_dir = o.recordings_dir;
  const bool audit_mode = o.audit_mode;
  std::vector<std::string> files = o.audit_files;
  std::string id;
  if (audit_mode) {
    files.insert(files.begin(), o.args.begin(), o.args.end());
  } else if (o.args.size() != 1) {
    return Fail(2, o.args.empty() ? "verify: a session ID is required (interlock verify --help)"
                                  : absl::StrCat("verify: unexpected argument \"", o.args[1], "\""));
  } else {
    id = o.args[0];
  }
  if (audit_mode) {
    return VerifyAudit(g, std::move(files), std::move(key_path), std::move(recordings_dir));
  }
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  if (key_path.empty()) key_path = absl::StrCat(cfg->state_dir, "/keys/recording.pub");
  auto key = record::RecordingKey::LoadPublic(key_path);
  if (!key.ok()) return Fail(1, absl::StrCat("verify: ", key.status().message()));

  // What the audit log says the recording held when its session ended (the chain verified
  // up to wherever it breaks: only summaries before a break are used).
  if (files.empty()) files = AuditFilesOf(cfg->audit_file.path);
  std::optional<audit::ChainReport::SessionRecording> said;
  bool audit_ok = false;
  if (!files.empty()) {
    auto chain = VerifyAuditFiles(audit::SortAuditFiles(files), *key);
    if (chain.ok()) {
      audit_ok = chain->verdict != audit::ChainReport::kTampered;
      if (!audit_ok) {
        std::printf("note: the audit log is tampered at %s; only events before it are used\n",
                    chain->where.c_str());
      }
      for (const auto& s : chain->recordings) {
        if (absl::StartsWith(s.session_id, id)) said = s;
      }
    }
  }

  auto path = FindRecording(*cfg, id);
  if (!path.ok()) {
    if (absl::IsNotFound(path.status()) && said.has_value()) {
      std::printf("session %s: tampered: %s (session end at %s)\n", common::Visible(said->session_id).c_str(),
                  common::Visible(*audit::CrossCheckRecording(said->summary, nullptr)).c_str(),
                  said->where.c_str());
      return 4;
    }
    return Fail(1, absl::StrCat("verify: ", path.status().message()));
  }
  auto report = record::VerifyFile(*path, *key);
  if (!report.ok()) return Fail(1, absl::StrCat("verify: ", report.status().message()));
  if (said.has_value() && said->session_id == report->session_id) {
    if (auto why = audit::CrossCheckRecording(said->summary, &*report)) {
      std::printf("session %s: tampered: %s (session end at %s)\n", common::Visible(report->session_id).c_str(),
                  common::Visible(*why).c_str(), said->where.c_str());
      return 4;
    }
  }
  std::printf("session %s: %s: %llu records verified%s%s\n", common::Visible(report->session_id).c_str(),
              record::VerdictName(report->verdict),
              static_cast<unsigned long long>(report->records_ok),
              report->detail.empty() ? "" : "; ", report->detail.c_str());
  if (said.has_value()) {
    std::printf("audit: matches the session-end event at %s\n", said->where.c_str());
  } else if (!files.empty() && audit_ok) {
    std::printf("audit: no session-end event for this session in the audit log\n");
  }
  switch (report->verdict) {
    case record::VerifyReport::kValid: return 0;
    case record::VerifyReport::kIncomplete: return 3;
    default: return 4;
  }
}

}  // namespace

void AddRecordingCommands(CLI::App& root, Globals& g, Commands* commands) {
  CLI::App* sessions = root.add_subcommand("sessions", "recorded and live sessions");
  AddJsonFlag(sessions, g);
  sessions->footer(
      "Lists recorded sessions, newest last, and marks the ones interlockd is relaying now\n"
      "as live. --json prints one JSON object per line.");
  commands->push_back({sessions, [&g] { return Sessions(g); }});

  auto replay = std::make_shared<ReplayOptions>();
  CLI::App* replay_cmd = root.add_subcommand("replay", "a session's timeline");
  replay_cmd->add_option("ID", replay->id, "the session (a unique prefix is enough)")->required();
  replay_cmd->add_flag("--hex", replay->hex, "add a hexdump of every payload");
  replay_cmd->add_flag("--raw-view", replay->raw_view, "byte previews instead of decoded messages");
  replay_cmd->add_option("--raw", replay->raw_dir, "write DIR/to_upstream.bin and DIR/to_agent.bin")
      ->option_text("DIR");
  replay_cmd->add_option("--unseal", replay->unseal_key, "the auditor's private key: show the originals")
      ->option_text("KEYFILE");
  replay_cmd->add_flag("--asciicast", replay->asciicast, "SSH: print a channel's terminal as asciicast v2");
  replay_cmd->add_option("--channel", replay->channel, "with --asciicast: the channel (default: the first shell)")
      ->option_text("N")
      ->check(CLI::Range(int64_t{0}, int64_t{UINT32_MAX}));
  replay_cmd->add_flag("--input", replay->input, "with --asciicast: include what the agent typed");
  AddJsonFlag(replay_cmd, g);  // accepted for symmetry; the timeline is text
  replay_cmd->footer(
      "Prints the session's timeline (ID may be a unique prefix). PostgreSQL sessions are\n"
      "decoded: statements, Bind parameters, result rows as tables, errors, start-up.\n"
      "HTTP sessions: requests and responses with body previews. SSH sessions: per\n"
      "channel, the command (exec), shell or subsystem and interlockd's decision, then\n"
      "the channel's output as text (stderr and what interlockd wrote marked), typed\n"
      "input, window changes and the exit status.\n"
      "--raw-view shows byte previews instead, as for other protocols. --hex adds a\n"
      "hexdump of every payload (of every decoded message). --raw DIR writes\n"
      "DIR/to_upstream.bin and DIR/to_agent.bin.\n"
      "\n"
      "--asciicast prints one channel of an SSH session as an asciicast v2 file, for\n"
      "asciinema play (or cat): the first channel with a shell or pty, or --channel N.\n"
      "What the agent typed is left out (it may hold passwords) unless --input is given.\n"
      "\n"
      "  interlock replay ID --asciicast > session.cast && asciinema play session.cast\n"
      "\n"
      "The recording holds what the agent saw. When interlockd kept the originals that\n"
      "masking replaced (config auditor_public_key_file), they are shown as\n"
      "\"[sealed original: N bytes]\"; --unseal KEYFILE (the auditor's private key, mode\n"
      "0600, from interlock auditor-keygen) decrypts them and shows them next to the\n"
      "masked rows.");
  commands->push_back({replay_cmd, [&g, replay] { return Replay(g, *replay); }});

  auto verify = std::make_shared<VerifyOptions>();
  CLI::App* verify_cmd =
      root.add_subcommand("verify", "check a recording's, or the audit log's, chain and seal");
  verify_cmd->add_option("ID", verify->args, "the session; with --audit: audit files (FILE...)");
  verify_cmd->add_flag("--audit", verify->audit_mode, "check the audit log instead");
  verify_cmd->add_option("--key", verify->key_path, "interlockd's public key")->option_text("PUBKEY.pem");
  verify_cmd->add_option("--audit-file", verify->audit_files, "an audit file to check against (repeatable)")
      ->option_text("FILE")
      ->allow_extra_args(false);
  verify_cmd->add_option("--recordings", verify->recordings_dir, "with --audit: the recordings")
      ->option_text("DIR");
  verify_cmd->footer(
      "  interlock verify ID [--key PUBKEY.pem] [--audit-file FILE]...\n"
      "  interlock verify --audit [FILE...] [--key PUBKEY.pem] [--recordings DIR]\n"
      "\n"
      "Checks the recording's hash chain and its Ed25519 seal against interlockd's public\n"
      "key (default <state_dir>/keys/recording.pub), and against the session-end audit\n"
      "event that recorded its final length and chain head (the audit files of the state\n"
      "dir, or --audit-file): a recording that is shorter than that, or missing, is\n"
      "tampered, not incomplete.\n"
      "\n"
      "--audit checks the audit log's hash chain across FILEs (default: the configured\n"
      "audit file and its rotated files; rotated files are put in seq order) and its\n"
      "signed checkpoints, reports the first broken line as FILE:LINE, then checks every\n"
      "recording a session-end event names (in --recordings DIR, or the state dir's when\n"
      "no FILE is given). A last line cut short (no newline) is incomplete, not tampered:\n"
      "a crash inside a write looks the same.\n"
      "\n"
      "Exit 0: valid; 3: incomplete (no seal, e.g. cut by a crash; verified up to the\n"
      "last complete record or line); 4: tampered.");
  commands->push_back({verify_cmd, [&g, verify] { return Verify(g, *verify); }});
}

}  // namespace interlock::cli
