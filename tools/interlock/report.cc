// interlock report: the evidence summary of a period (userspace/audit/report.h), from the
// audit files and the recordings alone — it works with interlockd stopped, for an auditor
// who holds only the state directory's copy and the public key.
#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "interlock/v1/report.pb.h"
#include "tools/interlock/cli.h"
#include "userspace/audit/report.h"
#include "userspace/common/file_util.h"
#include "userspace/record/signing_key.h"
#include "userspace/record/verifier.h"

namespace interlock::cli {

namespace {

constexpr char kUsage[] =
    "usage: interlock report [--from TIME] [--to TIME] [--workload NAME]\n"
    "                        [--format md|html|json] [--out FILE] [--audit FILE...] [--key PUBKEY.pem]\n\n"
    "Summarises the audit trail for an auditor: sessions per workload and resource, statements\n"
    "and requests by decision, every hold (requester, approver, times, reasons), masking per\n"
    "profile, column and detector, grants, refused connections, decisions over time, and the\n"
    "verification of every recording of a session started in the period.\n\n"
    "TIME is RFC 3339 (2026-12-06T10:00:00Z) or a date (2026-12-06, UTC midnight); --from is\n"
    "inclusive, --to exclusive; default: the whole trail. --audit names the audit files (default:\n"
    "<state_dir>/audit/audit.jsonl and the files rotated beside it). Exit 0; 4 when a recording\n"
    "in the period is tampered or missing.";

bool ParseWhen(const std::string& s, absl::Time* t) {
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, t, &err)) return true;
  return absl::ParseTime("%Y-%m-%d", s, absl::UTCTimeZone(), t, &err);
}

// audit.jsonl and what was rotated beside it (audit.jsonl.*), oldest first by name (the
// rotated names sort by time), the live file last.
std::vector<std::string> DefaultAuditFiles(const std::string& dir) {
  std::vector<std::string> rotated;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      absl::string_view n(e->d_name);
      if (absl::StartsWith(n, "audit.jsonl.")) rotated.push_back(absl::StrCat(dir, "/", n));
    }
    ::closedir(d);
  }
  std::sort(rotated.begin(), rotated.end());
  rotated.push_back(absl::StrCat(dir, "/audit.jsonl"));
  return rotated;
}

}  // namespace

int CmdReport(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::puts(kUsage);
    return 0;
  }
  audit::ReportOptions options;
  std::string format = g.json ? "json" : "md", out_path, key_path;
  std::vector<std::string> files;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= args.size()) return false;
      *v = args[++i];
      return true;
    };
    std::string v;
    if (a == "--json") {
      continue;
    } else if ((a == "--from" || a == "--to") && value(&v)) {
      if (!ParseWhen(v, a == "--from" ? &options.from : &options.to)) {
        return Fail(2, absl::StrCat("report: ", a, " ", v, ": not RFC 3339 or YYYY-MM-DD"));
      }
    } else if (a == "--workload" && value(&v)) {
      options.workload = v;
    } else if (a == "--format" && value(&v)) {
      if (v != "md" && v != "html" && v != "json") return Fail(2, "report: --format is md, html or json");
      format = v;
    } else if (a == "--out" && value(&v)) {
      out_path = v;
    } else if (a == "--key" && value(&v)) {
      key_path = v;
    } else if (a == "--audit") {
      while (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) files.push_back(args[++i]);
    } else {
      return Fail(2, absl::StrCat("report: unexpected argument ", a, "\n\n", kUsage));
    }
  }
  if (options.to <= options.from) return Fail(2, "report: --to must be after --from");
  auto cfg = LoadCliConfig(g);
  if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
  if (files.empty()) files = DefaultAuditFiles(absl::StrCat(cfg->state_dir, "/audit"));

  audit::ReportBuilder builder(options);
  for (const std::string& f : files) {
    std::ifstream in(f);
    if (!in) {
      if (f == files.back() && files.size() > 1) continue;  // no live file right after a rotation
      return Fail(1, absl::StrCat("report: cannot read ", f));
    }
    std::string line;
    while (std::getline(in, line)) builder.AddLine(line);
  }
  v1::EvidenceReport report = builder.Finish(absl::Now());

  // Every recording of a session started in the period, verified.
  if (key_path.empty()) key_path = absl::StrCat(cfg->state_dir, "/keys/recording.pub");
  auto key = record::RecordingKey::LoadPublic(key_path);
  bool bad = false;
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
    if (!v.ok()) {
      r->set_verdict("missing");
      r->set_detail(std::string(v.status().message()));
      bad = true;
      continue;
    }
    r->set_verdict(record::VerdictName(v->verdict));
    r->set_detail(absl::StrCat(v->records_ok, " records", v->detail.empty() ? "" : "; ", v->detail));
    bad |= v->verdict == record::VerifyReport::kTampered;
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

}  // namespace interlock::cli
