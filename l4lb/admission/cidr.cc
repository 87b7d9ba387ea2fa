#include "l4lb/admission/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace l4lb::admission {
namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
}

}  // namespace

std::string Cidr::ToString() const {
  const bool v4 =
      length >= 96 &&
      std::all_of(address.begin(), address.begin() + 10, [](uint8_t b) { return b == 0; }) &&
      address[10] == 0xff && address[11] == 0xff;
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, &address[12], buf, sizeof(buf));
    return absl::StrCat(buf, "/", length - 96);
  }
  inet_ntop(AF_INET6, address.data(), buf, sizeof(buf));
  return absl::StrCat(buf, "/", length);
}

absl::StatusOr<Cidr> ParseCidr(absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty()) return Bad(text, "empty address");
  absl::string_view host = trimmed;
  absl::string_view len_text;
  if (const size_t slash = trimmed.find('/'); slash != absl::string_view::npos) {
    host = trimmed.substr(0, slash);
    len_text = trimmed.substr(slash + 1);
  }
  if (absl::ConsumePrefix(&host, "[") && !absl::ConsumeSuffix(&host, "]")) {
    return Bad(text, "unbalanced [");
  }
  if (host.size() >= INET6_ADDRSTRLEN) return Bad(text, "not an IPv4 or IPv6 address");
  char buf[INET6_ADDRSTRLEN] = {};
  memcpy(buf, host.data(), host.size());
  Cidr cidr;
  int max = 0;
  int offset = 0;
  in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    cidr.address[10] = cidr.address[11] = 0xff;
    memcpy(&cidr.address[12], &v4, 4);
    max = 32;
    offset = 96;
  } else if (inet_pton(AF_INET6, buf, cidr.address.data()) == 1) {
    max = 128;
  } else {
    return Bad(text, "not an IPv4 or IPv6 address");
  }
  int length = max;
  if (!len_text.empty() || trimmed.find('/') != absl::string_view::npos) {
    if (!absl::SimpleAtoi(len_text, &length) || length < 0 || length > max ||
        !absl::ascii_isdigit(len_text.empty() ? 'x' : len_text[0])) {
      return Bad(text, absl::StrCat("prefix length must be 0..", max));
    }
  }
  cidr.length = length + offset;
  for (int bit = cidr.length; bit < 128; ++bit) {
    if (cidr.address[bit / 8] & (0x80 >> (bit % 8))) {
      return Bad(text, absl::StrCat("host bits set past /", length, " (did you mean /", max, "?)"));
    }
  }
  return cidr;
}

absl::StatusOr<std::vector<Cidr>> ParseCidrList(absl::string_view text) {
  std::vector<Cidr> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::StatusOr<Cidr> cidr = ParseCidr(item);
    if (!cidr.ok()) return cidr.status();
    out.push_back(*cidr);
  }
  return out;
}

absl::StatusOr<std::vector<Cidr>> ParseCidrFile(absl::string_view contents,
                                                absl::string_view path) {
  std::vector<Cidr> out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<Cidr> cidr = ParseCidr(line);
    if (!cidr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": ", cidr.status().message()));
    }
    out.push_back(*cidr);
  }
  return out;
}

absl::StatusOr<std::vector<Cidr>> LoadCidrFile(const std::string& path) {
  // open(2) + fstat, not an ifstream: a directory "opens" as a stream and reads
  // as empty, which for a deny list would silently mean "deny nobody".
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno != 0 ? errno : EINVAL;
    close(fd);
    return absl::ErrnoToStatus(err, path);
  }
  std::string contents;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return absl::ErrnoToStatus(err, path);
    }
    contents.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return ParseCidrFile(contents, path);
}

}  // namespace l4lb::admission
