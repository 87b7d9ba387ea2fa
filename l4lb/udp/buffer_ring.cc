#include "l4lb/udp/buffer_ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"

namespace l4lb::udp {

absl::StatusOr<BufferRing> BufferRing::Create(io_uring* ring, uint16_t group, uint32_t count,
                                              size_t size) {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
    return absl::InvalidArgumentError("buffer ring: count must be a power of two <= 32768");
  }
  BufferRing out;
  out.ring_ = ring;
  out.group_ = group;
  out.count_ = count;
  out.size_ = size;
  // The descriptor ring must be page aligned; buffers are touched only as far as
  // datagrams fill them, so the RSS follows the traffic, not count x size.
  out.ring_bytes_ = count * sizeof(io_uring_buf);
  void* r =
      mmap(nullptr, out.ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (r == MAP_FAILED) return absl::ErrnoToStatus(errno, "buffer ring: mmap");
  out.br_ = static_cast<io_uring_buf_ring*>(r);
  out.memory_bytes_ = size_t{count} * size;
  void* m =
      mmap(nullptr, out.memory_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (m == MAP_FAILED) return absl::ErrnoToStatus(errno, "buffer ring: mmap");
  out.memory_ = static_cast<char*>(m);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(out.br_);
  reg.ring_entries = count;
  reg.bgid = group;
  if (const int err = io_uring_register_buf_ring(ring, &reg, 0); err != 0) {
    out.ring_ = nullptr;  // nothing to unregister
    return absl::ErrnoToStatus(-err, "io_uring_register_buf_ring (kernel 5.19+)");
  }
  io_uring_buf_ring_init(out.br_);
  const int mask = io_uring_buf_ring_mask(count);
  for (uint32_t i = 0; i < count; ++i) {
    io_uring_buf_ring_add(out.br_, out.buffer(static_cast<uint16_t>(i)),
                          static_cast<unsigned>(size), static_cast<uint16_t>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(out.br_, static_cast<int>(count));
  return out;
}

BufferRing::BufferRing(BufferRing&& other) noexcept
    : ring_(std::exchange(other.ring_, nullptr)),
      br_(std::exchange(other.br_, nullptr)),
      memory_(std::exchange(other.memory_, nullptr)),
      ring_bytes_(other.ring_bytes_),
      memory_bytes_(other.memory_bytes_),
      count_(other.count_),
      size_(other.size_),
      group_(other.group_) {}

BufferRing::~BufferRing() {
  if (ring_ != nullptr) io_uring_unregister_buf_ring(ring_, group_);
  if (br_ != nullptr) munmap(br_, ring_bytes_);
  if (memory_ != nullptr) munmap(memory_, memory_bytes_);
}

void BufferRing::Recycle(uint16_t id) {
  io_uring_buf_ring_add(br_, buffer(id), static_cast<unsigned>(size_), id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace l4lb::udp
