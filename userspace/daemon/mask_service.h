// MaskService: the daemon's side of masking (proxy::pg::MaskSupport). It compiles the mask
// profiles of the policy in force (recompiling when the policy is reloaded) with the HMAC
// key kept in the state dir, and keeps, per resource, a cache of the catalog —
// (table OID, attribute number) -> schema.table.column, with what a view's column is
// computed from and an inherited column's ancestors (ColumnSource::origins) — read on
// interlockd's own
// connection to the resource (never an agent's), invalidated after DDL.
//
//   MaskService masks(state_dir, policy_watcher->current_ptr(), queries);
//   env.masks = &masks;
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "userspace/mask/masker.h"
#include "userspace/policy/evaluator.h"
#include "userspace/proxy/pg/mask_support.h"

namespace interlock::daemon {

// Runs one read-only catalog query on interlockd's own connection to `resource`; `done`
// runs once, later, on the loop.
using CatalogQueryFn = std::function<void(
    const std::string& catalog, const std::string& sql, std::vector<std::optional<std::string>> params,
    std::function<void(absl::StatusOr<std::vector<std::vector<std::optional<std::string>>>>)> done)>;

class MaskService final : public proxy::pg::MaskSupport {
 public:
  // `policy` points at the engine's current evaluator (may point at null).
  static absl::StatusOr<std::unique_ptr<MaskService>> Create(
      const std::string& state_dir, const std::shared_ptr<const policy::PolicyEvaluator>* policy,
      CatalogQueryFn query);

  // Compiles every profile of `p` (for policy validation before it is put in force).
  absl::Status Validate(const policy::PolicyEvaluator& p) const;

  std::shared_ptr<const mask::Masker> Profile(const std::string& name) override;
  std::shared_ptr<const mask::Masker> Floor(const std::vector<std::string>& names) override;
  std::optional<proxy::pg::ColumnSource> Lookup(const std::string& resource, uint32_t table_oid,
                                                int16_t attnum) override;
  void Resolve(const std::string& resource, std::vector<uint32_t> oids,
               std::function<void(absl::Status)> done) override;
  void Invalidate(const std::string& resource) override;

  // Largest number of tables cached per resource (then the cache starts over).
  static constexpr size_t kMaxCachedTables = 10000;

 private:
  MaskService(std::string key, const std::shared_ptr<const policy::PolicyEvaluator>* policy, CatalogQueryFn query)
      : key_(std::move(key)), policy_(policy), query_(std::move(query)) {}

  struct Table {
    std::map<int16_t, proxy::pg::ColumnSource> columns;
  };
  using Rows = std::vector<std::vector<std::optional<std::string>>>;
  // Caches the columns of `oids` (kCatalogQuery's rows) with their origins (kOriginsQuery's).
  void Fill(const std::string& resource, const std::vector<uint32_t>& oids, const Rows& columns,
            const Rows& origins);
  std::string key_;
  const std::shared_ptr<const policy::PolicyEvaluator>* policy_;
  CatalogQueryFn query_;
  // Recompiles when the policy in force is not the one compiled for.
  void Refresh();

  // Held (not just its address) so a new policy at a reused address is still seen as new.
  std::shared_ptr<const policy::PolicyEvaluator> compiled_for_;
  std::map<std::string, std::shared_ptr<const mask::Masker>> maskers_;
  // Merged floors by their joined names ("pii+cards"), for the policy compiled for.
  std::map<std::string, std::shared_ptr<const mask::Masker>> floors_;
  absl::flat_hash_map<std::string, absl::flat_hash_map<uint32_t, Table>> catalog_;  // by resource
  uint64_t generation_ = 0;  // bumped by Invalidate: late answers for an old generation are dropped
};

}  // namespace interlock::daemon
