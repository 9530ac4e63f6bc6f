// MaskSupport: what a PostgreSQL session needs from the daemon to mask results — the
// compiled mask profiles of the policy in force (proxy::MaskProfiles), and the catalog (table OID + attribute
// number -> schema.table.column) of the resource, read on interlockd's own connection and
// cached. Implemented by the daemon (userspace/daemon/mask_service.h); tests use a fake.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "userspace/mask/masker.h"
#include "userspace/proxy/core/mask_profiles.h"
#include "userspace/proxy/pg/result_masker.h"

namespace interlock::proxy::pg {

class MaskSupport : public MaskProfiles {
 public:
  // `catalog` names one upstream database server of a resource (PgSessionContext::
  // catalog_key): catalogs differ between servers.
  // From the cache: the source of a result column; nullopt when the table is not cached.
  virtual std::optional<ColumnSource> Lookup(const std::string& catalog, uint32_t table_oid, int16_t attnum) = 0;
  // Reads `oids` into the cache; `done` runs once, later, on the loop (an error means the
  // catalog could not be read: the session fails closed).
  virtual void Resolve(const std::string& catalog, std::vector<uint32_t> oids,
                       std::function<void(absl::Status)> done) = 0;
  // A DDL statement completed there: cached sources may be stale.
  virtual void Invalidate(const std::string& catalog) = 0;
};

}  // namespace interlock::proxy::pg
