// The worker's side of admission (admission/): asks the service's and the
// process's gates about a new client (TCP accept, new UDP session), counts and
// logs (rate-limited) the refusals, and hands the places back at the end.

#include "glog/logging.h"

#include "l4lb/worker.h"

namespace l4lb {

admission::Refusal Worker::Admit(uint16_t service, const net::SocketAddress& client,
                                 admission::Admission::Pass* pass,
                                 admission::Admission::Pass* global) {
  admission::Admission* gate = services_[service].options.admission;
  const std::array<uint8_t, 16> ip = client.IpBytes16();
  admission::Refusal refusal = admission::Refusal::kNone;
  if (gate != nullptr && !gate->open()) refusal = gate->Decide(ip, now_ns_, pass);
  if (refusal == admission::Refusal::kNone && global != nullptr &&
      options_.global_admission != nullptr) {
    refusal = options_.global_admission->Decide(ip, now_ns_, global);
    if (refusal != admission::Refusal::kNone && gate != nullptr) gate->Leave(ip, *pass);
  }
  if (refusal == admission::Refusal::kNone) return refusal;
  stats::ServiceCounters& by_service = counters_.service(service);
  if (refusal == admission::Refusal::kDenied) {
    counters_.refused_denied.Add();
    by_service.refused_denied.Add();
  } else if (refusal == admission::Refusal::kBanned) {
    counters_.refused_banned.Add();
    by_service.refused_banned.Add();
  } else {
    counters_.refused_limited.Add();
    by_service.refused_limited.Add();
  }
  // A flood must not flood the log: a line a second per worker, with the totals.
  LOG_EVERY_T(WARNING, 1.0) << "refused client " << client.ToString() << " ("
                            << admission::RefusalName(refusal) << "); worker " << options_.id
                            << " has refused " << counters_.refused_denied.Get() << " denied, "
                            << counters_.refused_limited.Get() << " limited, "
                            << counters_.refused_banned.Get() << " banned";
  return refusal;
}

void Worker::Leave(uint16_t service, const net::SocketAddress& client,
                   admission::Admission::Pass* pass, admission::Admission::Pass* global) {
  if (pass->ticket.generation == 0 && !pass->counted && (global == nullptr || !global->counted)) {
    return;  // holds nothing (the common case: no limits configured)
  }
  const std::array<uint8_t, 16> ip = client.IpBytes16();
  if (admission::Admission* gate = services_[service].options.admission) gate->Leave(ip, *pass);
  if (global != nullptr && options_.global_admission != nullptr) {
    options_.global_admission->Leave(ip, *global);
  }
}

}  // namespace l4lb
