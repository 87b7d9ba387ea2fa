#pragma once

#include <cstdint>

namespace l4lb::ring {

// What a submitted request was for. user_data is always a Tag, never an fd: fd
// numbers are reused at once, a slot's generation is not.
enum class Op : uint8_t {
  kAccept = 1,       // multishot accept; slot = listener index
  kStopAccept,       // cancel of a listener's accept at drain; slot = listener index
  kConnect,          // backend connect; slot = connection
  kConnectTimeout,   // the link timeout behind kConnect
  kClientReadable,   // multishot POLLIN on the client socket
  kBackendReadable,  // multishot POLLIN on the backend socket
  kClientWritable,   // one-shot POLLOUT on the client socket (backpressure)
  kBackendWritable,  // one-shot POLLOUT on the backend socket
  kCancel,           // a cancel we issued while closing a connection
  kWake,             // multishot POLLIN on the worker's eventfd
  kUdpRecv,          // multishot recvmsg on a UDP listener; slot = UDP listener index
  kUdpSessionRecv,   // multishot recv on a UDP session's backend socket; slot = session
  kUdpCancel,        // a cancel we issued while closing a UDP session
  kUdpSend,          // a datagram's send on the ring; slot = the provided buffer it left from
};

// op:8 | generation:24 | slot:32. The generation rejects a CQE that outlives its
// connection once the slot has been reused.
struct Tag {
  Op op;
  uint32_t generation;
  uint32_t slot;

  static constexpr uint64_t Encode(Op op, uint32_t generation, uint32_t slot) {
    return uint64_t{static_cast<uint8_t>(op)} << 56 | uint64_t{generation & 0xFFFFFF} << 32 | slot;
  }
  static constexpr Tag Decode(uint64_t user_data) {
    return Tag{static_cast<Op>(user_data >> 56), static_cast<uint32_t>(user_data >> 32) & 0xFFFFFF,
               static_cast<uint32_t>(user_data)};
  }
  constexpr uint64_t Encode() const { return Encode(op, generation, slot); }
};

// Generations wrap at 24 bits; equality is all we ever ask.
constexpr uint32_t NextGeneration(uint32_t generation) { return (generation + 1) & 0xFFFFFF; }

}  // namespace l4lb::ring
