#include "l4lb/udp/refusal.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>

namespace l4lb::udp {

void LastSent::OnSent(const char* data, size_t len, int64_t now_ns) {
  sent_ns = now_ns;
  answered = false;
  prefix_len = static_cast<uint8_t>(std::min(len, kPrefix));
  memcpy(prefix.data(), data, prefix_len);
}

bool RefusalMatches(const IcmpError& error, const LastSent& sent, int64_t now_ns,
                    int64_t window_ns) {
  if (!error.port_unreachable || sent.sent_ns == 0 || sent.answered) return false;
  if (now_ns - sent.sent_ns > window_ns) return false;
  if (sent.prefix_len == 0) return error.quoted.empty();  // an empty datagram quotes nothing
  if (error.quoted.empty()) return false;
  const size_t n = std::min<size_t>(error.quoted.size(), sent.prefix_len);
  return memcmp(error.quoted.data(), sent.prefix.data(), n) == 0;
}

SocketError ClassifySocketError(int fd, int err, const LastSent& sent, int64_t now_ns,
                                int64_t window_ns, int max_entries) {
  bool icmp = false, matched = false;
  for (int i = 0; i < max_entries; ++i) {
    char quoted[LastSent::kPrefix];
    iovec iov{.iov_base = quoted, .iov_len = sizeof(quoted)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(sock_extended_err) + sizeof(sockaddr_in6))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    // MSG_TRUNC in the result is expected: only the first kPrefix bytes matter.
    const ssize_t n = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0) break;  // EAGAIN: the queue is empty
    IcmpError error{.quoted = absl::string_view(quoted, static_cast<size_t>(n))};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      const bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
      const bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
      if (!v4 && !v6) continue;
      sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof(ee));
      icmp = icmp || ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6;
      error.port_unreachable =
          (ee.ee_origin == SO_EE_ORIGIN_ICMP && ee.ee_type == ICMP_DEST_UNREACH &&
           ee.ee_code == ICMP_PORT_UNREACH) ||
          (ee.ee_origin == SO_EE_ORIGIN_ICMP6 && ee.ee_type == ICMP6_DST_UNREACH &&
           ee.ee_code == ICMP6_DST_UNREACH_NOPORT);
    }
    matched = matched || RefusalMatches(error, sent, now_ns, window_ns);
  }
  // By what is queued, not by `err`: the socket keeps one pending error, the
  // last ICMP's, and a forged one right after a real refusal would replace it.
  if (matched) return SocketError::kRefused;
  return icmp || err == ECONNREFUSED ? SocketError::kIcmp : SocketError::kLocal;
}

}  // namespace l4lb::udp
