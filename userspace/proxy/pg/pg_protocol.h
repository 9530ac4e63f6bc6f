// PgProtocol: PostgreSQL as a protocol plug-in (resources with PROTOCOL_POSTGRES). It owns
// what only PostgreSQL sessions share: the cancel-key registry, interlockd's own read-only
// upstream connections (planner estimates, masking's catalog reads), the upstream TLS
// contexts and the agent-side TLS contexts; each accepted connection becomes a PgSession.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto pg, PgProtocol::Create(env, config.resources, masks));
//   pg->CatalogQuery(key, sql, params, done);   // masking's catalog reads (MaskService)
//   registry.Add(config::Protocol::kPostgres, std::move(pg));
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "userspace/config/config.h"
#include "userspace/net/socket.h"
#include "userspace/net/tls.h"
#include "userspace/proxy/core/protocol.h"
#include "userspace/proxy/pg/cancel_registry.h"
#include "userspace/proxy/pg/mask_support.h"
#include "userspace/proxy/pg/refusal.h"
#include "userspace/proxy/pg/row_estimator.h"

namespace interlock::proxy::pg {

class PgProtocol final : public Protocol {
 public:
  // Loads the agent-side TLS certificate and key of every PostgreSQL resource that has one:
  // a bad one fails start-up (INVALID_ARGUMENT naming the resource) rather than the first
  // connection. `resources` and `masks` (null: no masking) outlive the protocol.
  // `cancels`: the cancel keys of an earlier instance (a configuration reload makes a new
  // instance for new sessions while the earlier one's sessions live on, and an agent's
  // CancelRequest must find its session whichever instance started it); null: a new table.
  static absl::StatusOr<std::unique_ptr<PgProtocol>> Create(const ProtocolEnv& env,
                                                            const std::vector<config::ResourceConfig>& resources,
                                                            MaskSupport* masks,
                                                            std::shared_ptr<CancelRegistry> cancels = nullptr);

  absl::string_view name() const override { return "postgres"; }
  // A FATAL ErrorResponse (53300 too many sessions, 53200 out of memory) libpq shows.
  std::string RefusalBytes(Refusal why) const override;
  // 'N' to the agent's SSLRequest/GSSENCRequest, then the FATAL ErrorResponse after its
  // StartupMessage (refusal.h: what libpq shows).
  void Refuse(UniqueFd agent, Refusal why) override { refused_.Refuse(std::move(agent), RefusalBytes(why)); }
  // Refusals: "upstream_tls_config" (the resource's upstream TLS settings are unusable),
  // "internal".
  Started Start(SessionStart start) override;

  // Runs `sql` with `params` on interlockd's own connection to the upstream a session
  // registered under `catalog` (resource@upstream). NOT_FOUND when no session has.
  void CatalogQuery(const std::string& catalog, const std::string& sql,
                    std::vector<std::optional<std::string>> params,
                    std::function<void(absl::StatusOr<QueryRows>)> done);
  // True when a session of this instance registered `catalog`.
  bool HasCatalog(const std::string& catalog) const { return catalog_targets_.contains(catalog); }
  // The cancel-key table, to share with the instance a reload makes (Create).
  const std::shared_ptr<CancelRegistry>& cancel_registry() const { return cancels_; }

 private:
  PgProtocol(const ProtocolEnv& env, MaskSupport* masks, std::shared_ptr<CancelRegistry> cancels)
      : env_(env), masks_(masks), cancels_(std::move(cancels)) {}
  // The TLS client context for a resource and upstream server name (cached).
  absl::StatusOr<net::TlsClientContext*> UpstreamTls(const config::ResourceConfig& resource,
                                                     const std::string& server_name);
  // The estimator for (resource, upstream, login), created on first use.
  absl::StatusOr<RowEstimator*> EstimatorFor(const config::ResourceConfig& resource, const net::SockAddr& upstream,
                                             const config::PostgresLoginConfig& login);

  ProtocolEnv env_;
  MaskSupport* masks_;
  std::shared_ptr<CancelRegistry> cancels_;  // shared with earlier and later instances
  RefusedAgents refused_{env_.loop};
  absl::flat_hash_map<std::string, std::unique_ptr<net::TlsClientContext>> tls_contexts_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<net::TlsServerContext>> agent_tls_;  // by resource id
  absl::flat_hash_map<std::string, std::unique_ptr<RowEstimator>> estimators_;
  struct CatalogTarget {
    const config::ResourceConfig* resource = nullptr;
    net::SockAddr upstream;
  };
  absl::flat_hash_map<std::string, CatalogTarget> catalog_targets_;
};

}  // namespace interlock::proxy::pg
