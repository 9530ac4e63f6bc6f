// ViewOrigins: which table columns a view's columns come from, read from the views'
// definitions, so that a column rule on `customers.ssn` also masks `SELECT tax_id FROM
// customer_directory` (a view over customers) — the server's RowDescription names the
// view's own column, not the table's.
//
//   ViewOrigins views;
//   views.Add("public", "customer_directory", viewdef_text);   // pg_get_viewdef
//   ColumnSource src{"public", "customer_directory", "tax_id"};
//   views.AddOrigins(1-based attnum, &src);   // src.origins: {"", "customers", "ssn"}
//
// Definitions are classified with the real grammar (sql/derivation.h); a view over another
// known view is followed (up to kMaxViewDepth levels). Fail closed: a definition that does
// not classify, or a column the derivation cannot place, is derived from "anything"
// ({"", "*", "*"}: every column rule applies, redacted). Pure; not thread-safe.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "interlock/v1/sql.pb.h"
#include "userspace/proxy/pg/result_masker.h"

namespace interlock::proxy::pg {

class ViewOrigins {
 public:
  // Nested views followed, at most; deeper ones are "anything".
  static constexpr int kMaxViewDepth = 16;

  // The view schema.name with its definition (the SELECT, as pg_get_viewdef prints it).
  void Add(const std::string& schema, const std::string& name, const std::string& definition);
  bool empty() const { return views_.empty(); }

  // Adds the origins of column `attnum` (1-based) of the view named by `source` (schema,
  // table) to source->origins, and sets source->derived when an expression computes it.
  // Does nothing when `source` names no added view.
  void AddOrigins(int attnum, ColumnSource* source) const;

 private:
  struct View {
    bool parsed = false;
    std::vector<v1::OutputColumn> columns;
  };
  const View* Find(const std::string& schema, const std::string& name) const;
  void Expand(const v1::SourceColumn& s, int depth, ColumnSource* out) const;

  std::map<std::pair<std::string, std::string>, View> views_;  // (schema, name)
};

}  // namespace interlock::proxy::pg
