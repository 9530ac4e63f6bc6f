#include "userspace/daemon/mask_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"
#include "userspace/mask/hmac_key.h"
#include "userspace/proxy/pg/view_origins.h"

namespace interlock::daemon {

namespace {

// Columns of the given tables (dropped columns excluded), with their schema and table.
constexpr char kCatalogQuery[] =
    "SELECT a.attrelid::int8, a.attnum::int4, n.nspname::text, c.relname::text, a.attname::text "
    "FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE a.attrelid = ANY($1::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped";

// Where the columns of those tables also come from: ('v', view, schema, name, definition)
// for every view (or materialized view) among them and every view those read,
// transitively (a view over a view), so their definitions can be followed; ('a', table,
// ancestor schema, ancestor name, NULL) for every ancestor of an inheritance child or
// partition among them or read by those views; ('n', table, schema, name, NULL) naming
// each such child (view definitions name tables, not OIDs).
constexpr char kOriginsQuery[] =
    "WITH RECURSIVE views(oid, depth) AS ("
    "  SELECT c.oid, 0 FROM pg_catalog.pg_class c"
    "  WHERE c.oid = ANY($1::pg_catalog.oid[]) AND c.relkind IN ('v', 'm')"
    "  UNION SELECT d.refobjid, v.depth + 1 FROM views v"
    "  JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid"
    "  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "   AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "  JOIN pg_catalog.pg_class c2 ON c2.oid = d.refobjid AND c2.relkind IN ('v', 'm')"
    "  WHERE d.refobjid <> v.oid AND v.depth < 16),"
    " rels(oid) AS ("
    "  SELECT unnest($1::pg_catalog.oid[])"
    "  UNION SELECT d.refobjid FROM views v"
    "  JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid"
    "  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "   AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass),"
    " up(relid, anc, depth) AS ("
    "  SELECT i.inhrelid, i.inhparent, 1 FROM pg_catalog.pg_inherits i"
    "  WHERE i.inhrelid IN (SELECT oid FROM rels)"
    "  UNION SELECT up.relid, i.inhparent, up.depth + 1 FROM up"
    "  JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc WHERE up.depth < 32)"
    " SELECT 'a', up.relid::int8, n.nspname::text, c.relname::text, NULL::text FROM up"
    " JOIN pg_catalog.pg_class c ON c.oid = up.anc JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " UNION ALL"
    " SELECT DISTINCT 'n', c.oid::int8, n.nspname::text, c.relname::text, NULL::text"
    " FROM (SELECT DISTINCT relid FROM up) u JOIN pg_catalog.pg_class c ON c.oid = u.relid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " UNION ALL"
    " SELECT DISTINCT 'v', c.oid::int8, n.nspname::text, c.relname::text, pg_catalog.pg_get_viewdef(c.oid)"
    " FROM views v JOIN pg_catalog.pg_class c ON c.oid = v.oid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace";

using Rows = std::vector<std::vector<std::optional<std::string>>>;

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
  query_(resource, kCatalogQuery, params,
         [this, resource, oids, gen, params, done = std::move(done)](absl::StatusOr<Rows> columns) mutable {
           if (!columns.ok()) {
             done(columns.status());
             return;
           }
           query_(resource, kOriginsQuery, std::move(params),
                  [this, resource, oids = std::move(oids), gen, columns = std::move(*columns),
                   done = std::move(done)](absl::StatusOr<Rows> origins) {
                    if (!origins.ok()) {
                      done(origins.status());
                      return;
                    }
                    // Invalidated while the queries ran (DDL): the answer may be stale; the
                    // session asks again.
                    if (gen != generation_) {
                      done(absl::OkStatus());
                      return;
                    }
                    Fill(resource, oids, columns, *origins);
                    done(absl::OkStatus());
                  });
         });
}

void MaskService::Fill(const std::string& resource, const std::vector<uint32_t>& oids, const Rows& columns,
                       const Rows& origins) {
  // Ancestors by table, every child's name, and every view definition the answer holds.
  std::map<uint32_t, std::vector<proxy::pg::SourceName>> ancestors;
  std::map<uint32_t, proxy::pg::SourceName> child_names;
  proxy::pg::ViewOrigins views;
  for (const auto& row : origins) {
    if (row.size() != 5 || !row[0] || !row[1] || !row[2] || !row[3]) continue;
    int64_t oid = 0;
    if (!absl::SimpleAtoi(*row[1], &oid)) continue;
    if (*row[0] == "a") ancestors[static_cast<uint32_t>(oid)].push_back({*row[2], *row[3], ""});
    if (*row[0] == "n") child_names[static_cast<uint32_t>(oid)] = {*row[2], *row[3], ""};
    if (*row[0] == "v") views.Add(*row[2], *row[3], row[4].value_or(""));
  }
  // A view's origin that names an inheritance child takes the child's ancestors too (by
  // name, as definitions name tables; an unqualified name matches any schema).
  auto add_ancestors_of_origins = [&](proxy::pg::ColumnSource* source) {
    const size_t n = source->origins.size();
    for (size_t k = 0; k < n; ++k) {
      const proxy::pg::SourceName o = source->origins[k];
      for (const auto& [child, name] : child_names) {
        if (name.table != o.table || (!o.schema.empty() && name.schema != o.schema)) continue;
        for (const proxy::pg::SourceName& a : ancestors[child]) source->origins.push_back({a.schema, a.table, o.column});
      }
    }
  };
  auto& cache = catalog_[resource];
  if (cache.size() + oids.size() > kMaxCachedTables) cache.clear();
  // Every asked table becomes known, even with no columns (then it has none we mask).
  for (uint32_t o : oids) cache[o];
  for (const auto& row : columns) {
    if (row.size() != 5 || !row[0] || !row[1] || !row[2] || !row[3] || !row[4]) continue;
    int64_t oid = 0;
    int32_t attnum = 0;
    if (!absl::SimpleAtoi(*row[0], &oid) || !absl::SimpleAtoi(*row[1], &attnum)) continue;
    proxy::pg::ColumnSource source{*row[2], *row[3], *row[4]};
    // An inherited column keeps its name: the ancestors' rules for it apply.
    for (const proxy::pg::SourceName& a : ancestors[static_cast<uint32_t>(oid)]) {
      source.origins.push_back({a.schema, a.table, source.column});
    }
    views.AddOrigins(attnum, &source);
    add_ancestors_of_origins(&source);
    cache[static_cast<uint32_t>(oid)].columns[static_cast<int16_t>(attnum)] = std::move(source);
  }
}

void MaskService::Invalidate(const std::string& resource) {
  catalog_.erase(resource);
  ++generation_;
}

}  // namespace interlock::daemon
