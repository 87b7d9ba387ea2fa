#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "l4lb/admin/view.h"
#include "l4lb/announce/vip.h"

namespace l4lb::announce {

// Announcer tells a routing daemon on l4lb's host when to announce the service
// address and when to withdraw it (--announce, README "Several instances behind
// ECMP"), through what every daemon can watch: a route in a kernel table
// (vip.h). At start-up it puts the VIP on its device (so l4lb can bind it and
// the kernel delivers its packets) and removes a route a killed run left. It
// adds the route once l4lb can serve (listeners bound, every backend checked
// once, a backend UP in every service) and removes it at the start of a drain,
// `withdraw_delay` before l4lb stops accepting, so the router has moved new
// clients to the other instances before this one refuses any. At exit both go.
//
// Why a route and not BGP in l4lb, the address itself, or a daemon's health
// check: DESIGN.md beside this file.
//
// Owned by main and used on its thread only (service_loop.cc).
class Announcer {
 public:
  struct Options {
    Vip vip;
    // Between the withdrawal and the end of accepting: the daemon's reaction
    // (BIRD scans interfaces on netlink events at once) plus the router's
    // convergence (an UPDATE, one FIB change).
    absl::Duration withdraw_delay = absl::Seconds(2);
    // A live upgrade (--takeover): the route and the VIP are the running
    // l4lb's, which this process takes over: Create leaves the route alone
    // (withdrawing it would move this instance's clients away for nothing),
    // and Announce() finds it there.
    bool inherit = false;
  };

  // Removes the route if it is there (left by an l4lb killed before it could:
  // it must not be announced before this one is ready) and adds the VIP to its
  // device, which also proves the privilege (CAP_NET_ADMIN). Errors say what
  // failed ("route del table 200 192.0.2.10/32 dev lo: Operation not permitted").
  static absl::StatusOr<std::unique_ptr<Announcer>> Create(const Options& options);
  // Withdraws if still announced (l4lb leaving on an error), and removes the VIP.
  ~Announcer();
  Announcer(const Announcer&) = delete;
  Announcer& operator=(const Announcer&) = delete;

  // Whether `view` shows a config ready for clients: in every service with
  // backends, each probed backend not in maintenance has had its first check
  // (backends start UP before any; a dead one is DOWN after it), and one is UP.
  // Else false, with `*waiting_for` naming the first thing missing
  // ("service ftp: backend 10.0.0.1:21 not checked yet").
  static bool Ready(const admin::View& view, std::string* waiting_for);

  // Adds the route (once): the daemon announces the VIP from now on.
  absl::Status Announce();
  // Removes the route (if announced) and waits withdraw_delay while the daemon
  // withdraws and the router converges (the VIP stays: packets it still sends
  // here are taken), or until `interrupted` (which waits a little for a stop signal:
  // a second SIGTERM) returns true.
  void Withdraw(const std::function<bool()>& interrupted);
  // This process handed everything to the next one (--takeover), which keeps
  // announcing: leave the route and the VIP at exit.
  void HandOver() {
    announced_ = false;
    handed_over_ = true;
  }
  bool announced() const { return announced_; }
  const Options& options() const { return options_; }

 private:
  explicit Announcer(const Options& options) : options_(options) {}

  Options options_;
  bool announced_ = false;
  bool handed_over_ = false;
};

}  // namespace l4lb::announce
