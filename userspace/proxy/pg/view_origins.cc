#include "userspace/proxy/pg/view_origins.h"

#include "userspace/sql/classify.h"

namespace interlock::proxy::pg {

namespace {

void AddAnything(ColumnSource* out) {
  out->origins.push_back({"", "*", "*"});
  out->derived = true;
}

}  // namespace

void ViewOrigins::Add(const std::string& schema, const std::string& name, const std::string& definition) {
  View v;
  auto c = sql::Classify(definition);
  if (c.ok() && !c->parse_error() && c->statements_size() == 1) {
    v.parsed = true;
    v.columns.assign(c->statements(0).output_columns().begin(), c->statements(0).output_columns().end());
  }
  views_[{schema, name}] = std::move(v);
}

const ViewOrigins::View* ViewOrigins::Find(const std::string& schema, const std::string& name) const {
  if (!schema.empty()) {
    auto it = views_.find({schema, name});
    return it == views_.end() ? nullptr : &it->second;
  }
  // Unqualified in a definition: pg_get_viewdef leaves names visible on the catalog
  // connection's search_path unqualified. Any schema's view of that name.
  for (const auto& [key, view] : views_) {
    if (key.second == name) return &view;
  }
  return nullptr;
}

void ViewOrigins::AddOrigins(int attnum, ColumnSource* source) const {
  const View* v = Find(source->schema, source->table);
  if (v == nullptr) return;
  // A view's attnum is its output position (pg_get_viewdef prints a star expanded).
  if (!v->parsed) {
    AddAnything(source);
    return;
  }
  const v1::OutputColumn* col = nullptr;
  size_t position = 0;
  for (const v1::OutputColumn& c : v->columns) {
    if (c.shape() == v1::OutputColumn::SHAPE_STAR) {
      // A star over a table inside the view: positions after it cannot be placed.
      col = &c;
      break;
    }
    if (++position == static_cast<size_t>(attnum)) {
      col = &c;
      break;
    }
  }
  if (col == nullptr) {
    AddAnything(source);
    return;
  }
  if (col->shape() == v1::OutputColumn::SHAPE_DERIVED) source->derived = true;
  for (const v1::SourceColumn& s : col->sources()) Expand(s, 1, source);
}

void ViewOrigins::Expand(const v1::SourceColumn& s, int depth, ColumnSource* out) const {
  out->origins.push_back({s.schema(), s.table(), s.column()});
  const View* inner = s.table() == "*" ? nullptr : Find(s.schema(), s.table());
  if (inner == nullptr) return;
  if (depth >= kMaxViewDepth || !inner->parsed) {
    AddAnything(out);
    return;
  }
  for (const v1::OutputColumn& c : inner->columns) {
    if (s.column() != "*" && c.name() != s.column() && c.shape() != v1::OutputColumn::SHAPE_STAR) continue;
    if (c.shape() == v1::OutputColumn::SHAPE_DERIVED) out->derived = true;
    for (const v1::SourceColumn& next : c.sources()) Expand(next, depth + 1, out);
  }
}

}  // namespace interlock::proxy::pg
