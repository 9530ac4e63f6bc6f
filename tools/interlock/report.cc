// interlock report: the evidence summary of a period (userspace/audit/report.h), from the
// audit files and the recordings alone — it works with interlockd stopped, for an auditor
// who holds only the state directory's copy and the public key.
#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "interlock/v1/report.pb.h"
#include "tools/interlock/cli.h"
#include "userspace/audit/chain.h"
#include "userspace/audit/report.h"
#include "userspace/common/file_util.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/verifier.h"

namespace interlock::cli {

namespace {

constexpr char kFooter[] =
    "Summarises the audit trail for an auditor: sessions per workload and resource, statements\n"
    "and requests by decision, every hold (requester, approver, times, reasons), masking per\n"
    "profile, column and detector, grants, refused connections, decisions over time, and the\n"
    "verification of every recording of a session started in the period.\n\n"
    "TIME is RFC 3339 (2026-12-06T10:00:00Z) or a date (2026-12-06, UTC midnight); --from is\n"
    "inclusive, --to exclusive; default: the whole trail. --audit names the audit files (default:\n"
    "the configured audit file and the files rotated beside it). The audit chain of the files read\n"
    "is verified, and so is the recording of every session started in the period, against what\n"
    "its session-end event says. Exit 0; 4 when the chain or a recording is tampered or missing.";

bool ParseWhen(const std::string& s, absl::Time* t) {
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, t, &err)) return true;
  return absl::ParseTime("%Y-%m-%d", s, absl::UTCTimeZone(), t, &err);
}

// The live audit file and the files rotated beside it, in chain order (chain.h).
std::vector<std::string> DefaultAuditFiles(const std::string& live) {
  const size_t slash = live.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : live.substr(0, slash);
  const std::string name = slash == std::string::npos ? live : live.substr(slash + 1);
  std::vector<std::string> paths;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (audit::ParseRotatedName(name, e->d_name).has_value()) paths.push_back(absl::StrCat(dir, "/", e->d_name));
    }
    ::closedir(d);
  }
  paths.push_back(live);
  return audit::SortAuditFiles(std::move(paths));
}

struct ReportFlags {
  std::string from, to, workload, format, out_path, key_path;
  std::vector<std::string> files;
};

int Report(const Globals& g, const ReportFlags& f) {
  audit::ReportOptions options;
  if (!f.from.empty() && !ParseWhen(f.from, &options.from)) {
    return Fail(2, absl::StrCat("report: --from ", f.from, ": not RFC 3339 or YYYY-MM-DD"));
  }
  if (!f.to.empty() && !ParseWhen(f.to, &options.to)) {
    return Fail(2, absl::StrCat("report: --to ", f.to, ": not RFC 3339 or YYYY-MM-DD"));
  }
  options.workload = f.workload;
  const std::string format = !f.format.empty() ? f.format : g.json ? "json" : "md";
  const std::string& out_path = f.out_path;
  std::string key_path = f.key_path;
  std::vector<std::string> files = f.files;
  if (options.to <= options.from) return Fail(2, "report: --to must be after --from");
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  if (files.empty()) files = DefaultAuditFiles(cfg->audit_file.path);

  audit::ReportBuilder builder(options);
  std::vector<audit::AuditFileBytes> contents;
  for (const std::string& f : files) {
    auto bytes = ReadFile(f);
    if (!bytes.ok()) {
      if (f == files.back() && files.size() > 1) continue;  // no live file right after a rotation
      return Fail(1, absl::StrCat("report: cannot read ", f, ": ", bytes.status().message()));
    }
    for (absl::string_view line : absl::StrSplit(*bytes, '\n')) builder.AddLine(line);
    const size_t slash = f.rfind('/');
    contents.push_back({slash == std::string::npos ? f : f.substr(slash + 1), *std::move(bytes)});
  }
  v1::EvidenceReport report = builder.Finish(absl::Now());

  if (key_path.empty()) key_path = absl::StrCat(cfg->state_dir, "/keys/recording.pub");
  auto key = record::RecordingKey::LoadPublic(key_path);
  bool bad = false;
  // The whole trail's chain (the period is only as trustworthy as the file it came from),
  // and what it says each closed session's recording holds.
  std::map<std::string, v1::RecordingSummary> summaries;
  if (key.ok()) {
    audit::ChainReport chain = audit::VerifyAuditChain(contents, *key);
    report.set_audit_chain(audit::ChainVerdictName(chain.verdict));
    report.set_audit_chain_detail(chain.verdict == audit::ChainReport::kValid
                                      ? absl::StrCat(chain.lines, " lines, ", chain.checkpoints, " signed checkpoints")
                                      : absl::StrCat(chain.where, ": ", chain.detail));
    bad |= chain.verdict == audit::ChainReport::kTampered;
    for (const auto& r : chain.recordings) summaries[r.session_id] = r.summary;
  } else {
    report.set_audit_chain("not checked");
    report.set_audit_chain_detail(std::string(key.status().message()));
  }

  // Every recording of a session started in the period, verified and cross-checked.
  for (const auto& [id, workload] : builder.sessions_started()) {
    v1::ReportRecording* r = report.add_recordings();
    r->set_session_id(id);
    r->set_workload(workload);
    if (!key.ok()) {
      r->set_verdict("not checked");
      r->set_detail(std::string(key.status().message()));
      continue;
    }
    const std::string path = absl::StrCat(cfg->state_dir, "/recordings/", id, ".rec");
    auto v = record::VerifyFile(path, *key);
    auto summary = summaries.find(id);
    std::optional<std::string> cross;
    if (summary != summaries.end()) cross = audit::CrossCheckRecording(summary->second, v.ok() ? &*v : nullptr);
    if (!v.ok()) {
      r->set_verdict(cross.has_value() ? "tampered" : "missing");
      r->set_detail(cross.value_or(std::string(v.status().message())));
      bad = true;
      continue;
    }
    r->set_verdict(cross.has_value() ? "tampered" : record::VerdictName(v->verdict));
    r->set_detail(cross.has_value() ? *cross
                                    : absl::StrCat(v->records_ok, " records", v->detail.empty() ? "" : "; ", v->detail));
    bad |= cross.has_value() || v->verdict == record::VerifyReport::kTampered;
  }

  std::string text = format == "json" ? ToJson(report) + "\n"
                     : format == "html" ? audit::RenderHtml(report)
                                        : audit::RenderMarkdown(report);
  if (out_path.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else if (absl::Status st = WriteFileAtomic(out_path, text, 0600); !st.ok()) {
    return Fail(1, absl::StrCat("report: ", st.message()));
  }
  return bad ? 4 : 0;
}

}  // namespace

void AddReportCommand(CLI::App& root, Globals& g, Commands* commands) {
  auto f = std::make_shared<ReportFlags>();
  CLI::App* sub = root.add_subcommand("report", "the evidence summary of a period");
  sub->add_option("--from", f->from, "start of the period (inclusive)")->option_text("TIME");
  sub->add_option("--to", f->to, "end of the period (exclusive)")->option_text("TIME");
  sub->add_option("--workload", f->workload, "only this workload's sessions")->option_text("NAME");
  sub->add_option("--format", f->format, "md (default), html or json (default with --json)")
      ->option_text("md|html|json")
      ->check(CLI::IsMember({"md", "html", "json"}));
  sub->add_option("--out", f->out_path, "write the report to FILE (0600), not stdout")
      ->option_text("FILE");
  sub->add_option("--audit", f->files, "the audit files")->option_text("FILE...");
  sub->add_option("--key", f->key_path, "interlockd's public key")->option_text("PUBKEY.pem");
  AddJsonFlag(sub, g);
  sub->footer(kFooter);
  commands->push_back({sub, [&g, f] { return Report(g, *f); }});
}

}  // namespace interlock::cli
