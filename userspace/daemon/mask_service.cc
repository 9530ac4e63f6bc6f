#include "userspace/daemon/mask_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/mask/hmac_key.h"

namespace interlock::daemon {

namespace {

// Columns of the given tables (dropped columns excluded), with their schema and table.
constexpr char kCatalogQuery[] =
    "SELECT a.attrelid::int8, a.attnum::int4, n.nspname::text, c.relname::text, a.attname::text "
    "FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE a.attrelid = ANY($1::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped";

}  // namespace

absl::StatusOr<std::unique_ptr<MaskService>> MaskService::Create(
    const std::string& state_dir, const std::shared_ptr<const policy::PolicyEvaluator>* policy,
    CatalogQueryFn query) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string key, mask::LoadOrCreateMaskKey(state_dir));
  return std::unique_ptr<MaskService>(new MaskService(std::move(key), policy, std::move(query)));
}

absl::Status MaskService::Validate(const policy::PolicyEvaluator& p) const {
  for (int i = 0; i < p.policy().mask_profiles_size(); ++i) {
    auto m = mask::Masker::Create(p.policy().mask_profiles(i), key_);
    if (!m.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("mask_profiles[", i, "]: ", m.status().message()));
    }
  }
  return absl::OkStatus();
}

void MaskService::Refresh() {
  std::shared_ptr<const policy::PolicyEvaluator> now = policy_ != nullptr ? *policy_ : nullptr;
  if (now == compiled_for_) return;
  // The policy was reloaded: recompile. Statements in flight keep their old maskers
  // (shared) until their results are done.
  maskers_.clear();
  floors_.clear();
  compiled_for_ = now;
  if (now == nullptr) return;
  for (const v1::MaskProfile& p : now->policy().mask_profiles()) {
    auto m = mask::Masker::Create(p, key_);
    if (!m.ok()) {
      INTERLOCK_LOG(kError, "mask profile %s: %s", p.name(), m.status().message());
      continue;  // its statements are refused (fail closed)
    }
    maskers_[p.name()] = std::shared_ptr<const mask::Masker>(std::move(*m));
  }
}

std::shared_ptr<const mask::Masker> MaskService::Profile(const std::string& name) {
  Refresh();
  auto it = maskers_.find(name);
  return it == maskers_.end() ? nullptr : it->second;
}

std::shared_ptr<const mask::Masker> MaskService::Floor(const std::vector<std::string>& names) {
  if (names.empty()) return nullptr;
  if (names.size() == 1) return Profile(names[0]);
  Refresh();
  if (compiled_for_ == nullptr) return nullptr;
  std::string joined = absl::StrJoin(names, "+");
  if (auto it = floors_.find(joined); it != floors_.end()) return it->second;
  std::vector<const v1::MaskProfile*> parts;
  for (const std::string& n : names) {
    const v1::MaskProfile* found = nullptr;
    for (const v1::MaskProfile& p : compiled_for_->policy().mask_profiles()) {
      if (p.name() == n) found = &p;
    }
    if (found == nullptr || !maskers_.contains(n)) return nullptr;  // missing or broken: fail closed
    parts.push_back(found);
  }
  auto m = mask::Masker::Create(mask::MergeProfiles(parts), key_);
  if (!m.ok()) {
    INTERLOCK_LOG(kError, "mask floor %s: %s", joined, m.status().message());
    return nullptr;
  }
  // Bounded by the policy: one entry per distinct set of profiles a subject can match.
  return floors_[joined] = std::shared_ptr<const mask::Masker>(std::move(*m));
}

std::optional<proxy::pg::ColumnSource> MaskService::Lookup(const std::string& resource, uint32_t table_oid,
                                                           int16_t attnum) {
  auto r = catalog_.find(resource);
  if (r == catalog_.end()) return std::nullopt;
  auto t = r->second.find(table_oid);
  if (t == r->second.end()) return std::nullopt;
  auto c = t->second.columns.find(attnum);
  if (c == t->second.columns.end()) return proxy::pg::ColumnSource{};  // known table, no such column
  return c->second;
}

void MaskService::Resolve(const std::string& resource, std::vector<uint32_t> oids,
                          std::function<void(absl::Status)> done) {
  if (!query_) {
    done(absl::UnavailableError("no catalog connection"));
    return;
  }
  std::vector<std::string> texts;
  for (uint32_t o : oids) texts.push_back(absl::StrCat(o));
  std::vector<std::optional<std::string>> params = {absl::StrCat("{", absl::StrJoin(texts, ","), "}")};
  uint64_t gen = generation_;
  query_(resource, kCatalogQuery, std::move(params),
         [this, resource, oids, gen, done = std::move(done)](
             absl::StatusOr<std::vector<std::vector<std::optional<std::string>>>> rows) {
           if (!rows.ok()) {
             done(rows.status());
             return;
           }
           // Invalidated while the query ran (DDL): the answer may be stale; the session
           // asks again.
           if (gen != generation_) {
             done(absl::OkStatus());
             return;
           }
           auto& cache = catalog_[resource];
           if (cache.size() + oids.size() > kMaxCachedTables) cache.clear();
           // Every asked table becomes known, even with no columns (then it has none we mask).
           for (uint32_t o : oids) cache[o];
           for (const auto& row : *rows) {
             if (row.size() != 5 || !row[0] || !row[1] || !row[2] || !row[3] || !row[4]) continue;
             int64_t oid = 0;
             int32_t attnum = 0;
             if (!absl::SimpleAtoi(*row[0], &oid) || !absl::SimpleAtoi(*row[1], &attnum)) continue;
             cache[static_cast<uint32_t>(oid)].columns[static_cast<int16_t>(attnum)] =
                 proxy::pg::ColumnSource{*row[2], *row[3], *row[4]};
           }
           done(absl::OkStatus());
         });
}

void MaskService::Invalidate(const std::string& resource) {
  catalog_.erase(resource);
  ++generation_;
}

}  // namespace interlock::daemon
