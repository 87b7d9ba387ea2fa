#include "l4lb/relay/flow.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace l4lb::relay {
namespace {

// A connected pair of loopback TCP sockets (real TCP: splice behaves differently
// on UNIX sockets). Both ends nonblocking, like the relay's.
struct TcpPair {
  int a = -1;
  int b = -1;
  TcpPair() {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(listener, reinterpret_cast<sockaddr*>(&addr), len);
    listen(listener, 1);
    getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    a = socket(AF_INET, SOCK_STREAM, 0);
    connect(a, reinterpret_cast<sockaddr*>(&addr), len);
    b = accept(listener, nullptr, nullptr);
    close(listener);
    fcntl(a, F_SETFL, O_NONBLOCK);
    fcntl(b, F_SETFL, O_NONBLOCK);
  }
  ~TcpPair() {
    close(a);
    close(b);
  }
};

std::string ReadAvailable(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

// client.a -> [client.b  =Flow=>  backend.a] -> backend.b
// Every case runs with the copy path off (0: always splice) and on (16 KiB).
class FlowTest : public ::testing::TestWithParam<size_t> {
 protected:
  Flow::Wait Pump(bool source_hup = false) {
    return flow_.Pump(pool_, 16, absl::MakeSpan(copy_buffer_), source_hup);
  }
  bool copying() const { return !copy_buffer_.empty(); }

  // The client sends bytes, one urgent byte, "after" and its FIN; returns the
  // bytes before the mark (copied or spliced, by the parameter).
  std::string SendUrgentByteThenFin() {
    const int one = 1;
    EXPECT_EQ(setsockopt(client_.b, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)), 0);
    std::string before(GetParam() > 0 ? 100 : 100000, 'b');
    EXPECT_TRUE(write(client_.a, before.data(), before.size()) ==
                static_cast<ssize_t>(before.size()));
    EXPECT_EQ(send(client_.a, "!", 1, MSG_OOB), 1);
    EXPECT_EQ(write(client_.a, "after", 5), 5);
    shutdown(client_.a, SHUT_WR);
    pollfd source{.fd = client_.b, .events = POLLRDHUP, .revents = 0};
    EXPECT_EQ(poll(&source, 1, 5000), 1) << "the FIN never came in";
    return before;
  }

  // Appends to `received` what is still on the loopback, up to `size` bytes.
  void ReceiveUpTo(std::string& received, size_t size) {
    for (int i = 0; i < 100 && received.size() < size; ++i) {
      pollfd readable{.fd = backend_.b, .events = POLLIN, .revents = 0};
      poll(&readable, 1, 50);  // bounded wait
      received += ReadAvailable(backend_.b);
    }
  }

  TcpPair client_;
  TcpPair backend_;
  PipePool pool_{{}};
  std::vector<char> copy_buffer_ = std::vector<char>(GetParam());
  Flow flow_{client_.b, backend_.a};
};

INSTANTIATE_TEST_SUITE_P(CopyBytes, FlowTest, ::testing::Values(0, 16384),
                         [](const auto& info) { return "copy" + std::to_string(info.param); });

int NotSentLowat(int fd) {
  int v = -1;
  socklen_t len = sizeof(v);
  getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &len);
  return v;
}

TEST_P(FlowTest, OnlyAStreamingDestinationGetsANotSentBound) {
  const int kernel_default = NotSentLowat(backend_.a);
  ASSERT_EQ(write(client_.a, "hello", 5), 5);
  Pump();
  if (copying()) {
    EXPECT_EQ(NotSentLowat(backend_.a), kernel_default) << "a short message set it";
  }
  const std::string big(100000, 'x');
  ASSERT_EQ(write(client_.a, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  for (int i = 0; i < 10 && Pump() == Flow::Wait::kMore; ++i) {
  }
  EXPECT_EQ(NotSentLowat(backend_.a), 128 << 10);
  EXPECT_EQ(ReadAvailable(backend_.b), "hello" + big);
}

TEST_P(FlowTest, ForwardsBytesAndReturnsThePipeWhenIdle) {
  ASSERT_EQ(write(client_.a, "hello", 5), 5);
  EXPECT_EQ(Pump(), Flow::Wait::kReadable);
  EXPECT_EQ(ReadAvailable(backend_.b), "hello");
  EXPECT_EQ(flow_.bytes(), 5u);
  EXPECT_FALSE(flow_.holds_pipe());
  // Copied small messages hold no pipe (the pool keeps the one NextCapacity()
  // measured for them); spliced ones return theirs.
  EXPECT_EQ(pool_.idle(), 1u);
  EXPECT_EQ(pool_.in_use(), 0u);
}

TEST_P(FlowTest, ALargeBurstIsSplicedAndArrivesWhole) {
  // More than the copy buffer at once: the copy read fills the buffer, and the
  // rest of the burst goes through a pipe.
  std::string sent(200 * 1024, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + i / 1000);
  ASSERT_EQ(write(client_.a, sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  std::string received;
  for (int i = 0; i < 1000 && received.size() < sent.size(); ++i) {
    Pump();
    received += ReadAvailable(backend_.b);
  }
  EXPECT_EQ(received, sent);
  EXPECT_EQ(pool_.in_use(), 0u);
  EXPECT_EQ(pool_.idle(), 1u);  // a pipe was used either way, and given back
}

TEST_P(FlowTest, ALimitedFlowReadsNoMoreThanItsBudgetAndLosesNothing) {
  flow_.LimitReads();
  std::string sent(100 * 1000, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 13 + i / 777);
  ASSERT_EQ(write(client_.a, sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  usleep(10000);
  EXPECT_EQ(Pump(), Flow::Wait::kThrottled) << "no budget yet: nothing read";
  EXPECT_EQ(flow_.bytes(), 0u);
  EXPECT_FALSE(flow_.holds_pipe());
  std::string received;
  // 7,000 bytes at a time, odd against the copy buffer and the pipe.
  for (int grant = 1; grant <= 100 && received.size() < sent.size(); ++grant) {
    flow_.AddReadBudget(7000);
    Flow::Wait wait = Pump();
    for (int i = 0; i < 10 && wait == Flow::Wait::kMore; ++i) wait = Pump();
    received += ReadAvailable(backend_.b);
    ASSERT_LE(flow_.bytes(), 7000u * grant) << "read past its budget at grant " << grant;
    ASSERT_EQ(flow_.bytes(), std::min<uint64_t>(sent.size(), 7000u * grant));
    if (received.size() < sent.size()) {
      ASSERT_EQ(wait, Flow::Wait::kThrottled) << "grant " << grant;
      EXPECT_EQ(flow_.read_budget(), 0u);
    }
  }
  EXPECT_EQ(received, sent);
  // The EOF still arrives once the budget allows a read to see it.
  shutdown(client_.a, SHUT_WR);
  usleep(10000);
  flow_.AddReadBudget(1);
  Flow::Wait wait = Pump();
  if (copying() && wait != Flow::Wait::kDone) wait = Pump();
  EXPECT_EQ(wait, Flow::Wait::kDone);
  EXPECT_EQ(pool_.in_use(), 0u);
}

TEST_P(FlowTest, WithTheFinAlreadyInTheLastBytesAndEofLeaveInOneCall) {
  ASSERT_EQ(write(client_.a, "last", 4), 4);
  shutdown(client_.a, SHUT_WR);
  usleep(10000);  // the FIN is in: what a POLLRDHUP from the ring says
  EXPECT_EQ(Pump(/*source_hup=*/true), Flow::Wait::kDone);
  EXPECT_EQ(ReadAvailable(backend_.b), "last");
  char c;
  EXPECT_EQ(read(backend_.b, &c, 1), 0);
}

TEST_P(FlowTest, ForwardsEofAsShutdownWrite) {
  ASSERT_EQ(write(client_.a, "bye", 3), 3);
  shutdown(client_.a, SHUT_WR);
  // Splicing reads on to the EOF; a copy that did not fill the buffer stops at
  // the data, and the poll's next report (the FIN) brings the EOF.
  EXPECT_EQ(Pump(), copying() ? Flow::Wait::kReadable : Flow::Wait::kDone);
  EXPECT_EQ(Pump(), Flow::Wait::kDone);
  EXPECT_TRUE(flow_.done());
  EXPECT_EQ(ReadAvailable(backend_.b), "bye");
  char c;
  EXPECT_EQ(read(backend_.b, &c, 1), 0);  // EOF reached the backend
  // The other direction still works: half-close, not close.
  ASSERT_EQ(write(backend_.b, "x", 1), 1);
  char got = 0;
  for (int i = 0; i < 1000 && read(backend_.a, &got, 1) != 1; ++i) usleep(1000);
  EXPECT_EQ(got, 'x');
}

TEST_P(FlowTest, StopsReadingWhenTheDestinationIsFull) {
  // Keep the source full while nobody reads the destination: the destination's
  // socket buffers fill and the flow must stop with bytes parked in the pipe.
  const std::string chunk(64 * 1024, 'z');
  size_t sent = 0;
  Flow::Wait wait = Flow::Wait::kMore;
  for (int i = 0; i < 10000 && wait != Flow::Wait::kWritable; ++i) {
    const ssize_t n = write(client_.a, chunk.data(), chunk.size());
    if (n > 0) sent += n;
    wait = Pump();
  }
  EXPECT_EQ(wait, Flow::Wait::kWritable);
  EXPECT_TRUE(flow_.holds_pipe());
  EXPECT_GT(flow_.pipe_bytes(), 0u);
  // Backpressure: what was read but not written is bounded by the pipe.
  EXPECT_LE(flow_.pipe_bytes(), static_cast<uint32_t>(pool_.capacity()));

  // Drain the destination and keep pumping: every byte arrives exactly once.
  size_t received = 0;
  for (int i = 0; i < 100000 && received < sent; ++i) {
    received += ReadAvailable(backend_.b).size();
    if (Pump() == Flow::Wait::kWritable) usleep(100);
  }
  EXPECT_EQ(received, sent);
  EXPECT_EQ(flow_.bytes(), sent);
}

TEST_P(FlowTest, UrgentDataIsForwardedInlineInOrderAndTheEofAfterIt) {
  // l4lb's sockets are SO_OOBINLINE (net/socket.h). splice(2) stops at the
  // urgent mark, with the FIN in too it even returns 0: without the POLLPRI the
  // worker passes on, the flow would stall there or forward an early EOF.
  const std::string before = SendUrgentByteThenFin();
  pollfd source{.fd = client_.b, .events = POLLPRI, .revents = 0};
  ASSERT_EQ(poll(&source, 1, 0), 1) << "the kernel did not flag the urgent data";
  std::string received;
  Flow::Wait wait = Flow::Wait::kMore;
  for (int i = 0; i < 1000 && wait != Flow::Wait::kDone && wait != Flow::Wait::kError; ++i) {
    wait = flow_.Pump(pool_, 16, absl::MakeSpan(copy_buffer_), /*source_hup=*/true,
                      /*source_urgent=*/i == 0);
    received += ReadAvailable(backend_.b);
    if (wait == Flow::Wait::kReadable) break;  // a stall: no wakeup would come
  }
  ReceiveUpTo(received, before.size() + 6);
  EXPECT_EQ(wait, Flow::Wait::kDone);
  EXPECT_EQ(received.size(), before.size() + 6);
  EXPECT_TRUE(received == before + "!after") << received.substr(before.size());
}

TEST_P(FlowTest, AFinRightAfterTheUrgentByteIsNoEofBeforeThePollSaysUrgent) {
  // The pump that meets the mark may come from another wakeup (the destination's
  // POLLOUT) before the worker has seen the poll's POLLPRI: splice(2) returns 0
  // there, and taken for the EOF it cut the bytes after the mark (and the close
  // with them unread reset the client).
  const std::string before = SendUrgentByteThenFin();
  std::string received;
  Flow::Wait wait = Flow::Wait::kMore;
  for (int i = 0; i < 100 && wait != Flow::Wait::kDone && wait != Flow::Wait::kError; ++i) {
    wait = flow_.Pump(pool_, 16, absl::MakeSpan(copy_buffer_), /*source_hup=*/false,
                      /*source_urgent=*/false);
    received += ReadAvailable(backend_.b);
  }
  ReceiveUpTo(received, before.size() + 6);
  EXPECT_EQ(wait, Flow::Wait::kDone);
  EXPECT_EQ(received.size(), before.size() + 6) << "cut at the urgent mark";
  EXPECT_TRUE(received == before + "!after") << received.substr(before.size());
}

TEST_P(FlowTest, ResetOnTheSourceIsAnErrorOnTheSource) {
  const linger l{.l_onoff = 1, .l_linger = 0};
  setsockopt(client_.a, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(std::exchange(client_.a, -1));
  Flow::Wait wait = Flow::Wait::kReadable;
  for (int i = 0; i < 1000 && wait == Flow::Wait::kReadable; ++i) {
    wait = Pump();
    if (wait == Flow::Wait::kReadable) usleep(1000);
  }
  EXPECT_EQ(wait, Flow::Wait::kError);
  EXPECT_EQ(flow_.error(), ECONNRESET);
  EXPECT_TRUE(flow_.error_on_source());
}

TEST_P(FlowTest, ClosedDestinationIsAnErrorOnTheDestination) {
  const linger l{.l_onoff = 1, .l_linger = 0};
  setsockopt(backend_.b, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(std::exchange(backend_.b, -1));
  usleep(10000);
  ASSERT_EQ(write(client_.a, "data", 4), 4);
  Flow::Wait wait = Flow::Wait::kReadable;
  for (int i = 0; i < 100 && wait != Flow::Wait::kError; ++i) wait = Pump();
  EXPECT_EQ(wait, Flow::Wait::kError);
  EXPECT_FALSE(flow_.error_on_source());
}

TEST(FlowCopyTest, BytesARefusingDestinationLeavesWaitInAPipeInOrder) {
  // The destination takes nothing more: a copied read must not lose what send()
  // refused, and bytes that come after it must queue behind it.
  TcpPair client, backend;
  const int small = 4096;
  setsockopt(backend.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  setsockopt(backend.b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  PipePool pool({});
  std::vector<char> buffer(16384);
  Flow flow(client.b, backend.a);
  std::string sent;
  Flow::Wait wait = Flow::Wait::kReadable;
  for (int i = 0; i < 1000 && wait != Flow::Wait::kWritable; ++i) {
    std::string chunk(1000, static_cast<char>('a' + i % 26));
    ASSERT_EQ(write(client.a, chunk.data(), chunk.size()), 1000);
    sent += chunk;
    wait = flow.Pump(pool, 16, absl::MakeSpan(buffer));
  }
  ASSERT_EQ(wait, Flow::Wait::kWritable);
  EXPECT_TRUE(flow.holds_pipe());
  const std::string more(3000, '#');
  ASSERT_EQ(write(client.a, more.data(), more.size()), 3000);
  sent += more;
  std::string received;
  for (int i = 0; i < 10000 && received.size() < sent.size(); ++i) {
    received += ReadAvailable(backend.b);
    flow.Pump(pool, 16, absl::MakeSpan(buffer));
  }
  EXPECT_EQ(received, sent);
}

TEST(FlowCopyTest, PipesSmallerThanTheCopyBufferLoseNothing) {
  // A non-root l4lb past pipe-user-pages-soft gets 2-page pipes whatever it asks
  // for; a 4096-byte pipe_size stands in for that here. A copied read must not
  // outgrow the pipe that takes what a full destination refuses.
  TcpPair client, backend;
  PipePool pool({.pipe_size = 4096});
  ASSERT_EQ(pool.NextCapacity(), 4096);
  std::vector<char> buffer(16384);
  Flow flow(client.b, backend.a);
  // Fill the destination first (its send buffer and the peer's receive buffer),
  // so the next message is refused whole.
  const std::string filler(65536, '.');
  size_t filled = 0;
  for (int i = 0; i < 10000; ++i) {
    const ssize_t n = send(backend.a, filler.data(), filler.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  ASSERT_EQ(send(backend.a, "x", 1, MSG_NOSIGNAL), -1) << "the destination never filled up";
  // Messages below the copy buffer, each more than the pipe holds.
  std::string sent;
  for (int i = 0; i < 4; ++i) sent += std::string(12000, static_cast<char>('a' + i));
  ASSERT_EQ(write(client.a, sent.data(), 12000), 12000);
  Flow::Wait wait = flow.Pump(pool, 16, absl::MakeSpan(buffer));
  ASSERT_NE(wait, Flow::Wait::kError) << "errno " << flow.error();
  EXPECT_EQ(wait, Flow::Wait::kWritable);
  EXPECT_TRUE(flow.holds_pipe());
  EXPECT_LE(flow.pipe_bytes(), 4096u);
  ASSERT_EQ(write(client.a, sent.data() + 12000, sent.size() - 12000),
            static_cast<ssize_t>(sent.size() - 12000));

  // Now the destination reads: everything arrives, in order, without an error.
  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int i = 0; i < 100000 && received.size() < filled + sent.size() &&
                  std::chrono::steady_clock::now() < deadline;
       ++i) {
    received += ReadAvailable(backend.b);
    wait = flow.Pump(pool, 16, absl::MakeSpan(buffer));
    ASSERT_NE(wait, Flow::Wait::kError) << "errno " << flow.error();
    pollfd readable{.fd = backend.b, .events = POLLIN};
    poll(&readable, 1, 10);  // bounded wait for what the flow just sent
  }
  ASSERT_EQ(received.size(), filled + sent.size());
  EXPECT_EQ(received.substr(0, filled), std::string(filled, '.'));
  EXPECT_TRUE(received.substr(filled) == sent) << "bytes out of order";
  EXPECT_EQ(flow.bytes(), sent.size());
}

TEST(PipePoolTest, ReusesReleasedPipesAndBoundsTheIdleList) {
  PipePool pool({.pipe_size = 0, .max_idle = 1});
  absl::StatusOr<Pipe> a = pool.Acquire();
  absl::StatusOr<Pipe> b = pool.Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  const int a_read = a->read_fd;
  pool.Release(*a);
  pool.Release(*b);  // over max_idle: closed
  EXPECT_EQ(pool.idle(), 1u);
  EXPECT_EQ(fcntl(b->read_fd, F_GETFD), -1);
  EXPECT_EQ(pool.Acquire()->read_fd, a_read);
}

TEST(PipePoolTest, TrimFollowsDemandAndEmptiesWhenIdle) {
  PipePool pool({.pipe_size = 0, .max_idle = 16});
  std::vector<Pipe> pipes;
  for (int i = 0; i < 4; ++i) pipes.push_back(*pool.Acquire());
  for (const Pipe& p : pipes) pool.Release(p);
  EXPECT_EQ(pool.idle(), 4u);
  pool.Trim();  // 4 were in use at once since the start: keep 4
  EXPECT_EQ(pool.idle(), 4u);
  const Pipe one = *pool.Acquire();
  pool.Release(one);
  pool.Trim();  // at most 1 in use since the last trim
  EXPECT_EQ(pool.idle(), 1u);
  pool.Trim();  // none in use: the pool closes everything
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(PipePoolTest, SetsThePipeSize) {
  PipePool pool({.pipe_size = 256 * 1024, .max_idle = 4});
  absl::StatusOr<Pipe> pipe = pool.Acquire();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(fcntl(pipe->write_fd, F_GETPIPE_SZ), 256 * 1024);
  EXPECT_EQ(pool.capacity(), 256 * 1024);
  EXPECT_EQ(pipe->capacity, 256 * 1024);
  pool.Release(*pipe);
}

TEST(PipePoolTest, NextCapacityIsThatOfThePipeTheNextAcquireReturns) {
  PipePool pool({.pipe_size = 5000, .max_idle = 4});  // the kernel rounds up to 2 pages
  const int next = pool.NextCapacity();
  EXPECT_EQ(next, 8192);
  EXPECT_EQ(pool.idle(), 1u) << "measured on a real pipe, kept for the next Acquire";
  absl::StatusOr<Pipe> pipe = pool.Acquire();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(pipe->capacity, next);
  EXPECT_EQ(fcntl(pipe->write_fd, F_GETPIPE_SZ), next);
  EXPECT_EQ(pool.idle(), 0u);
  pool.Release(*pipe);
}

}  // namespace
}  // namespace l4lb::relay
