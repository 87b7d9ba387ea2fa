#include "conf/reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace l4lb::conf {

const char* TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "a value";
}

bool Contains(absl::Span<const char* const> keys, std::string_view key) {
  return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; });
}

std::string At(const toml::source_region& at) {
  return absl::StrCat(at.begin.line, ":", at.begin.column);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, path);
  std::string text;
  char buf[16384];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  const int read_errno = errno;
  close(fd);
  if (n < 0) return absl::ErrnoToStatus(read_errno, path);  // EISDIR for a directory
  return text;
}

void Reader::Fail(const toml::source_region& at, absl::string_view what) {
  if (!ok()) return;
  error_ = absl::InvalidArgumentError(absl::StrCat(file_, ":", At(at), ": ", what));
}

void Reader::CheckKeys(const toml::table& table, absl::Span<const char* const> keys,
                       absl::string_view where) {
  for (auto&& [key, value] : table) {
    if (!Contains(keys, key.str())) {
      return Fail(key.source(),
                  absl::StrCat("unknown key \"", std::string(key.str()), "\" in ", where));
    }
  }
}

const toml::table* Reader::SubTable(const toml::table* parent, const char* key,
                                    absl::string_view label) {
  if (parent == nullptr) return nullptr;
  const toml::node* node = parent->get(key);
  if (node == nullptr) return nullptr;
  if (!node->is_table()) {
    Fail(node->source(), absl::StrCat(label, ": want a table, got ", TypeName(*node)));
    return nullptr;
  }
  return node->as_table();
}

const toml::node* Reader::Find(const Scope& scope, const char* key) const {
  if (scope.own != nullptr) {
    if (const toml::node* node = scope.own->get(key)) return node;
  }
  return scope.defaults != nullptr ? scope.defaults->get(key) : nullptr;
}

const toml::node* Reader::ReadString(const Scope& scope, const char* key, std::string* out) {
  const toml::node* node = Find(scope, key);
  if (node == nullptr) return nullptr;
  if (!node->is_string()) {
    Fail(node->source(), absl::StrCat(scope.prefix, key, ": want a string, got ", TypeName(*node)));
    return nullptr;
  }
  *out = node->as_string()->get();
  return node;
}

const toml::node* Reader::ReadDuration(const Scope& scope, const char* key, bool zero_ok,
                                       absl::Duration* out) {
  const toml::node* node = Find(scope, key);
  if (node == nullptr) return nullptr;
  if (!node->is_string()) {
    Fail(node->source(),
         absl::StrCat(scope.prefix, key, ": want a duration string like \"2s\", got ",
                      TypeName(*node)));
    return nullptr;
  }
  const std::string& text = node->as_string()->get();
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    Fail(node->source(),
         absl::StrCat(scope.prefix, key, ": \"", text, "\": want a duration like 500ms, 2s or 5m"));
    return nullptr;
  }
  if (!zero_ok && d == absl::ZeroDuration()) {
    Fail(node->source(), absl::StrCat(scope.prefix, key, ": must be above 0"));
    return nullptr;
  }
  *out = d;
  return node;
}

void Reader::ReadBool(const Scope& scope, const char* key, bool* out) {
  const toml::node* node = Find(scope, key);
  if (node == nullptr) return;
  if (!node->is_boolean()) {
    return Fail(node->source(),
                absl::StrCat(scope.prefix, key, ": want true or false, got ", TypeName(*node)));
  }
  *out = node->as_boolean()->get();
}

}  // namespace l4lb::conf
