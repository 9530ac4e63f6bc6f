// Protocol: what a protocol plug-in (PostgreSQL, the bare TCP relay; HTTP and SSH next)
// gives the engine, and ProtocolRegistry, the engine's table of them. The engine core —
// accept, kernel-attested identity, resource lookup, session table, recording file,
// session audit — knows no protocol: it hands each accepted connection to the plug-in
// registered for the resource's protocol and keeps the ProxySession it gets back.
//
//   ProtocolRegistry registry;
//   registry.Add(config::Protocol::kTcp, std::make_unique<TcpProtocol>(env));
//   ...
//   Protocol* p = registry.For(resource.protocol);     // never null for a loaded config
//   open.set_protocol(std::string(p->name()));         // recordings and events name it
//   Started s = p->Start(std::move(start));
//   if (s.session == nullptr) Refuse(s.refusal, s.detail);
//
// A plug-in owns what only its protocol needs (PostgreSQL: cancel keys, planner and catalog
// connections, TLS contexts); what every protocol shares (the loop, audit, policy,
// approvals, the memory budget) comes in ProtocolEnv.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/identity.pb.h"
#include "userspace/audit/audit_log.h"
#include "userspace/auth/token_verifier.h"
#include "userspace/common/clock.h"
#include "userspace/common/memory_budget.h"
#include "userspace/common/unique_fd.h"
#include "userspace/config/config.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/socket.h"
#include "userspace/policy/evaluator.h"
#include "userspace/proxy/core/approval_gate.h"
#include "userspace/proxy/core/mask_profiles.h"
#include "userspace/proxy/core/session.h"
#include "userspace/record/recorder.h"

namespace interlock::proxy {

// The engine's services every protocol may use. Every pointer outlives the protocols and
// their sessions.
struct ProtocolEnv {
  net::EventLoop* loop = nullptr;
  audit::AuditLog* audit = nullptr;
  const Clock* clock = nullptr;
  // The policy in force (null: none configured, statements are audited but not judged).
  // Read at each decision; replaced on reload.
  const std::shared_ptr<const policy::PolicyEvaluator>* policy = nullptr;
  ApprovalGate* approvals = nullptr;
  GrantLookup* grants = nullptr;
  // What all sessions' buffers may hold together.
  MemoryBudget* memory = nullptr;
  // The compiled mask profiles (null: none; a session told to mask then refuses).
  MaskProfiles* masks = nullptr;
  absl::Duration connect_timeout = absl::Seconds(5);
  // interlockd's state directory (the HTTPS interception CA lives there).
  std::string state_dir;
};

// One accepted, attested connection to a resource of the plug-in's protocol.
struct SessionStart {
  std::string session_id;
  v1::WorkloadIdentity identity;
  const config::ResourceConfig* resource = nullptr;  // outlives the session
  v1::Endpoint original_destination;  // what the agent dialled
  net::SockAddr upstream;             // where the session connects
  UniqueFd agent;
  std::unique_ptr<record::Recorder> recorder;  // record 0 (the SessionOpen) written
  // Identity services shared by every protocol: the resource's token verifier (null: the
  // resource takes no agent tokens) and the token bound to the agent's enrollment.
  const auth::TokenVerifier* token_verifier = nullptr;
  std::function<absl::StatusOr<std::optional<std::string>>()> bound_token;
  // Called once when the session is over (from the loop; the engine then destroys it).
  std::function<void(ProxySession*)> done;
};

// What Start made of it: a running session, or a refusal the engine audits and closes.
struct Started {
  std::unique_ptr<ProxySession> session;  // null: refused
  std::string refusal;                    // stable audit reason ("upstream_tls_config", ...)
  std::string detail;
};

// Why the engine turns a connection away before any session starts.
enum class Refusal {
  kTooManySessions,  // max_sessions reached
  kOutOfMemory,      // the memory budget is (nearly) exhausted
  kDiskFull,         // the recordings' disk is below its free-space floor, or full
  kRecordingFailed,  // the session's recording could not be created (other I/O errors)
};

class Protocol {
 public:
  virtual ~Protocol() = default;
  // The protocol's name in events and recordings ("postgres", "tcp").
  virtual absl::string_view name() const = 0;
  // Bytes to send the agent before closing a connection refused for `why`, in its own
  // protocol (PostgreSQL: an ErrorResponse it can show); empty: the connection just closes.
  virtual std::string RefusalBytes(Refusal why) const { return ""; }
  // Refuses `agent` (accepted, nothing read) for `why`: by default sends RefusalBytes and
  // closes. A protocol whose clients negotiate first (PostgreSQL's SSLRequest) answers that
  // first, so the client shows the reason.
  virtual void Refuse(UniqueFd agent, Refusal why) {
    const std::string bytes = RefusalBytes(why);
    if (!bytes.empty()) (void)!::send(agent.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  virtual Started Start(SessionStart start) = 0;
};

class ProtocolRegistry {
 public:
  // Registers `protocol` for resources of each of `kinds` (one plug-in may serve several:
  // HTTP and HTTPS); a later registration for a kind replaces the earlier one.
  void Add(std::initializer_list<config::Protocol> kinds, std::unique_ptr<Protocol> protocol) {
    for (config::Protocol kind : kinds) by_kind_[static_cast<int>(kind)] = protocol.get();
    owned_.push_back(std::move(protocol));
  }
  void Add(config::Protocol kind, std::unique_ptr<Protocol> protocol) { Add({kind}, std::move(protocol)); }
  // The plug-in for `kind`, or null when none is registered.
  Protocol* For(config::Protocol kind) const {
    auto it = by_kind_.find(static_cast<int>(kind));
    return it == by_kind_.end() ? nullptr : it->second;
  }

 private:
  std::vector<std::unique_ptr<Protocol>> owned_;
  absl::flat_hash_map<int, Protocol*> by_kind_;
};

}  // namespace interlock::proxy
