// Engine, part: SIGHUP / `interlock reload` re-reading the configuration file. What can
// change under live sessions is applied at once (enrollments, resources, issuers, allowed
// destinations, timeouts, recordings' limits, audit sinks); every other changed setting is
// named as waiting for a restart. All or nothing: a file that does not load, or whose
// resources, issuers or enrollments cannot be put in force, changes nothing.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/log.h"
#include "userspace/daemon/config_check.h"
#include "userspace/daemon/engine.h"
#include "userspace/daemon/engine_internal.h"

namespace interlock::daemon {

namespace {

// The configuration fields that enroll workloads.
constexpr const char* kEnrollmentFields[] = {"enrollments", "units", "slices", "users", "groups"};
// Fields besides those that a reload puts in force (audit: its sinks; a change to
// audit.file waits for a restart).
constexpr const char* kLiveFields[] = {"resources",  "oidc_issuers",   "default_deny_allow",
                                       "timeouts",   "write_batch_ms", "recordings"};

bool IsOneOf(const std::string& name, absl::Span<const char* const> names) {
  for (const char* n : names) {
    if (name == n) return true;
  }
  return false;
}

// Top-level fields of `a` and `b` that differ, by name.
std::vector<std::string> ChangedFields(const v1::Config& a, const v1::Config& b) {
  std::vector<std::string> changed;
  const google::protobuf::Descriptor* d = v1::Config::descriptor();
  const google::protobuf::Reflection* r = v1::Config::GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    v1::Config only_a = a, only_b = b;
    for (int j = 0; j < d->field_count(); ++j) {
      if (j == i) continue;
      r->ClearField(&only_a, d->field(j));
      r->ClearField(&only_b, d->field(j));
    }
    if (only_a.SerializeAsString() != only_b.SerializeAsString()) {
      changed.push_back(d->field(i)->name());
    }
  }
  return changed;
}

// Sets top-level field `name` of `to` to its value in `from`.
void CopyField(const v1::Config& from, v1::Config* to, const std::string& name) {
  const google::protobuf::Descriptor* d = v1::Config::descriptor();
  const google::protobuf::Reflection* r = v1::Config::GetReflection();
  v1::Config only = from;
  for (int j = 0; j < d->field_count(); ++j) {
    if (d->field(j)->name() != name) r->ClearField(&only, d->field(j));
  }
  r->ClearField(to, d->FindFieldByName(name));
  to->MergeFrom(only);
}

}  // namespace

absl::Status Engine::ReloadConfig(const std::string& trigger, v1::ReloadPolicyResponse* out) {
  if (config_.file_name.empty() || absl::StartsWith(config_.file_name, "<")) {
    out->set_enrollments(static_cast<uint32_t>(config_.enrollments.size()));
    out->set_resources(static_cast<uint32_t>(config_.resources.size()));
    return absl::OkStatus();  // the embedded default cannot change
  }
  out->set_config_file(config_.file_name);
  v1::AuditEvent ev;
  ev.set_kind(v1::AUDIT_KIND_DAEMON);
  ev.set_reason(trigger);
  auto reject = [&](const absl::Status& st) {
    ev.set_outcome("config_reload_rejected");
    ev.set_detail(absl::StrCat(st.message(), "; the configuration in force stays"));
    Audit(std::move(ev));
    return st;
  };

  auto fresh = config::LoadConfigFile(config_.file_name);
  if (!fresh.ok()) return reject(fresh.status());
  // What --check-config refuses, a reload refuses: a secret others can read, a CA bundle
  // that is not PEM, a mask profile that does not compile. The first problem is named.
  if (std::vector<ConfigFileProblem> problems = CheckConfigFiles(*fresh); !problems.empty()) {
    return reject(absl::InvalidArgumentError(absl::StrCat(
        problems[0].where, ": ", problems[0].problem,
        problems.size() > 1 ? absl::StrCat(" (and ", problems.size() - 1, " more: interlockd --check-config)") : "")));
  }
  absl::StatusOr<std::vector<config::EnrollmentConfig>> enrollments =
      EnrollmentsWith(fresh->proto, state_.runtime_enrollments(), config_.file_name);
  if (!enrollments.ok()) return reject(enrollments.status());

  std::vector<std::string> restart, live;
  for (std::string& field : ChangedFields(config_.proto, fresh->proto)) {
    if (IsOneOf(field, kEnrollmentFields)) {
      continue;
    } else if (IsOneOf(field, kLiveFields)) {
      live.push_back(std::move(field));
    } else if (field == "audit") {
      if (config_.proto.audit().file().SerializeAsString() != fresh->proto.audit().file().SerializeAsString()) {
        restart.push_back("audit.file");
      }
    } else {
      restart.push_back(std::move(field));
    }
  }
  auto changed = [&](const char* field) { return std::find(live.begin(), live.end(), field) != live.end(); };

  // Resources: a new generation, built in full (certificates, the CA, issuers' keys)
  // before anything changes; the connect timeout is part of its plug-ins' settings.
  std::shared_ptr<Resources> next;
  if (changed("resources") || changed("oidc_issuers") || changed("timeouts")) {
    std::vector<config::ResourceConfig> list = fresh->resources;
    AssignResourceIds(list);
    auto built = BuildResources(std::move(list), fresh->oidc_issuers, fresh->timeouts);
    if (!built.ok()) return reject(built.status());
    next = *std::move(built);
    if (absl::Status st = ApplyResources(*next); !st.ok()) {
      (void)ApplyResources(*resources_);
      return reject(st);
    }
  }
  {
    // Applied on every reload, changed or not: it also re-finds the enrolled units'
    // cgroups and drops those of enrollments gone.
    std::vector<config::EnrollmentConfig> old = std::exchange(config_.enrollments, *std::move(enrollments));
    if (absl::Status st = ApplyEnrollments(/*readopt=*/false); !st.ok()) {
      config_.enrollments = std::move(old);
      (void)ApplyEnrollments(/*readopt=*/false);
      if (next != nullptr) (void)ApplyResources(*resources_);
      return reject(st);
    }
  }

  // Committed from here: what remains cannot fail in a way that undoes the rest.
  v1::Config proto = config_.proto;
  for (const char* field : kEnrollmentFields) CopyField(fresh->proto, &proto, field);
  for (const std::string& field : live) CopyField(fresh->proto, &proto, field);
  if (next != nullptr) {
    std::erase_if(earlier_resources_, [](const std::weak_ptr<Resources>& w) { return w.expired(); });
    earlier_resources_.push_back(resources_);
    resources_ = std::move(next);
    config_.resources = resources_->list;
    config_.oidc_issuers = fresh->oidc_issuers;
  }
  config_.timeouts = fresh->timeouts;
  config_.write_batch_ms = fresh->write_batch_ms;
  config_.recordings = fresh->recordings;
  if (changed("default_deny_allow")) {
    config_.default_deny_allow = fresh->default_deny_allow;
    if (absl::Status st = ApplyAllowedDestinations(); !st.ok()) {
      // The kernel refused the new list: default-deny workloads reach less, never more.
      INTERLOCK_LOG(kError, "default_deny_allow: %s", st.message());
      out->add_not_applied(absl::StrCat("default_deny_allow: ", st.message()));
    }
  }
  std::vector<std::string> sinks;
  absl::Status sink_status = ReloadSinks(*fresh, &sinks);
  for (const std::string& name : sinks) live.push_back(absl::StrCat("audit.sinks: ", name));
  if (!sink_status.ok()) out->add_not_applied(absl::StrCat("audit.sinks: ", sink_status.message()));
  *proto.mutable_audit()->mutable_sinks() = fresh->proto.audit().sinks();
  config_.audit_sinks = fresh->audit_sinks;
  config_.proto = std::move(proto);
  config_.source = fresh->source;

  out->set_enrollments(static_cast<uint32_t>(config_.enrollments.size()));
  out->set_resources(static_cast<uint32_t>(config_.resources.size()));
  for (const std::string& f : restart) out->add_restart_needed(f);
  for (const std::string& f : live) out->add_applied(f);
  ev.set_outcome("config_reloaded");
  ev.set_detail(absl::StrCat(
      config_.file_name, ": ", config_.resources.size(), " resources, ", config_.enrollments.size(),
      " enrollments in force", live.empty() ? std::string() : absl::StrCat("; applied: ", absl::StrJoin(live, ", ")),
      restart.empty() ? std::string() : absl::StrCat("; changed, applied at the next start: ", absl::StrJoin(restart, ", ")),
      sink_status.ok() ? std::string() : absl::StrCat("; ", sink_status.message())));
  Audit(std::move(ev));
  return absl::OkStatus();
}

}  // namespace interlock::daemon
