// Builds the remote audit sinks of the configuration (audit.sinks) and turns their state
// into status and DAEMON audit events. The engine's only entry point into sinks/.
//
//   for (const auto& s : config.audit_sinks) {
//     INTERLOCK_ASSIGN_OR_RETURN(auto sink, CreateRemoteSink(s, config.state_dir));
//     sinks.push_back(sink.get());
//     audit_log.AddSink(std::move(sink));
//   }
//   // once a second, on the event loop:
//   for (RemoteSink* s : sinks) if (auto ev = ProblemEvent(*s, s->TakeProblems()))
//   audit_log.Emit(*ev);
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "interlock/v1/control.pb.h"
#include "interlock/v1/events.pb.h"
#include "userspace/audit/sinks/remote_sink.h"
#include "userspace/config/config.h"

namespace interlock::audit::sinks {

// The spool directory of sink `name`: <state_dir>/audit/spool/<name>.
std::string SpoolDir(const std::string& state_dir, const std::string& name);

// Opens the spool (taking over what an earlier run left) and starts the sink's worker.
// Errors: the spool directory cannot be created or read; the HEC token reference does not
// resolve (auth::ResolveCredentialRef's errors, naming the reference, never the token).
absl::StatusOr<std::unique_ptr<RemoteSink>> CreateRemoteSink(
    const config::AuditSinkSettings& settings, const std::string& state_dir);

// A DAEMON event (outcome "error", reason "audit_sink_dropped" when events were lost,
// "audit_sink_rejected" when the destination refused them) naming the sink and the counts;
// nullopt when `problems` is empty.
std::optional<v1::AuditEvent> ProblemEvent(const RemoteSink& sink,
                                           const RemoteSink::Problems& problems);

void FillStatus(const RemoteSink& sink, v1::AuditSinkStatus* out);

}  // namespace interlock::audit::sinks
