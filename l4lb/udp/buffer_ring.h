#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include <liburing.h>

namespace l4lb::udp {

// BufferRing is a ring of provided buffers (IORING_REGISTER_PBUF_RING): the
// kernel picks a free buffer for each datagram a multishot recv completes, so
// a worker can keep a receive armed on every UDP socket without a buffer per
// socket. A buffer goes back with Recycle() once its datagram has been sent on:
// at the CQE of the send SQE that carried it, a pass after the receive
// (worker_udp.cc).
//
// Thread safety: none; owned by one worker, registered with its ring.
class BufferRing {
 public:
  // `count` (a power of two) buffers of `size` bytes, group `group`.
  static absl::StatusOr<BufferRing> Create(io_uring* ring, uint16_t group, uint32_t count,
                                           size_t size);
  BufferRing(BufferRing&& other) noexcept;
  BufferRing& operator=(BufferRing&&) = delete;
  ~BufferRing();

  uint16_t group() const { return group_; }
  size_t size() const { return size_; }
  char* buffer(uint16_t id) const { return memory_ + size_t{id} * size_; }
  // Hands buffer `id` back to the kernel.
  void Recycle(uint16_t id);

 private:
  BufferRing() = default;

  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;  // the shared ring of buffer descriptors
  char* memory_ = nullptr;
  size_t ring_bytes_ = 0;
  size_t memory_bytes_ = 0;
  uint32_t count_ = 0;
  size_t size_ = 0;
  uint16_t group_ = 0;
};

}  // namespace l4lb::udp
