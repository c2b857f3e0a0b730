// The native UDP engine (`udp-engine.ts` is its JavaScript face): the RTP sockets of one media host, read by a
// thread of their own that relays each packet to the other party at once, before the JavaScript thread sees it.
//
// - One thread per engine waits on every socket with epoll, reads with recvmmsg, stamps the arrival time
//   (CLOCK_MONOTONIC, the clock of performance.now()), and, where the socket's route says so, sends the packet on from
//   the peer socket to the peer's far end (learnt from where the peer's packets come from, or set from SDP), with the
//   payload type rewritten and μ-law/A-law converted by a byte table when the two legs differ.
// - Every datagram, relayed or not, is queued as a record for the JavaScript thread (`read`), which records it and
//   relays itself what the route leaves to it (alert tone, a party that must not be relayed natively). The thread
//   wakes JavaScript at once for those; the rest is read by the media host's 10 ms timer.
// - Nothing here allocates per packet: the receive buffers are fixed, the queue is one growing byte vector reused
//   (once read empty after a backlog grew it past 1 MB, it shrinks back to 64 kB).
// - A socket is closed under the engine's lock: the relay thread never touches a closed or reused one (generation
//   numbers). `destroy` stops and joins the thread; an environment cleanup hook does it if JavaScript never did.
// - Two process-wide C heap calls live here because this is the recorder's one native module: `trimMalloc` (the idle
//   step's malloc_trim) and `fixMmapThreshold` (mallopt at start).
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr int kBatch = 16;           // datagrams per recvmmsg
constexpr int kMaxDatagram = 2048;   // larger datagrams are cut (RTP of G.711 is ~172 bytes)
constexpr size_t kHeader = 40;       // record header bytes (see `read`)
constexpr size_t kWakeBytes = 1 << 20;
constexpr size_t kMaxQueue = 256u << 20;  // beyond this JavaScript has stalled for minutes: drop and count
constexpr size_t kQueueStart = 1 << 16;   // the queue's first allocation
constexpr size_t kKeepQueue = 1 << 20;    // a queue emptied with more than this allocated shrinks back to kQueueStart

// flags of a record
constexpr uint8_t kJs = 0;           // the route leaves relaying to JavaScript
constexpr uint8_t kRelayed = 1;      // relayed as received (payload type rewritten if needed)
constexpr uint8_t kTranscoded = 2;   // relayed with the payload converted
constexpr uint8_t kNotRelayed = 3;   // native route, but not relayable (no far end yet, a payload type not relayed)

struct Route {
  int32_t peer = -1;  // slot the packets go out from, -1: none
  bool native = false;
  bool wake = false;  // wake JavaScript at once for this socket's packets
  int16_t inAudio = -1, inEvent = -1, outAudio = -1, outEvent = -1;
  bool transcode = false;
  uint8_t table[256];
};

struct Slot {
  int fd = -1;
  int family = AF_INET;
  uint32_t gen = 0;
  sockaddr_storage remote;
  socklen_t remoteLen = 0;
  Route route;
};

double monotonicMs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

struct Engine {
  std::mutex lock;
  std::vector<Slot> slots;
  std::vector<uint32_t> freeSlots;
  int epoll = -1;
  int stopFd = -1;
  std::thread thread;
  bool destroyed = false;
  napi_threadsafe_function tsfn = nullptr;
  napi_env env = nullptr;
  // the queue for JavaScript: records from `qr` to the end
  std::vector<uint8_t> queue;
  size_t qr = 0;
  bool notified = false;
  // counters
  uint64_t relayed = 0, queueDropped = 0, sendErrors = 0, truncated = 0;
  // receive buffers
  uint8_t bufs[kBatch][kMaxDatagram];
  uint8_t scratch[kMaxDatagram];
  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  sockaddr_storage addrs[kBatch];

  void run();
  void handle(uint32_t index, Slot& s, uint8_t* data, size_t len, bool cut, const sockaddr_storage& from, socklen_t fromLen, double at,
              bool& wake);
  uint8_t relay(Slot& s, uint8_t* data, size_t len);
  void stop();
};

bool sameAddress(const sockaddr_storage& a, socklen_t al, const sockaddr_storage& b, socklen_t bl) {
  return al == bl && memcmp(&a, &b, al) == 0;
}

// The payload's place in an RTP datagram (RFC 3550 §5.1), or false if it is not RTP.
bool payloadOf(const uint8_t* d, size_t len, size_t& off, size_t& end) {
  if (len < 12 || (d[0] >> 6) != 2) return false;
  off = 12 + (d[0] & 0x0f) * 4;
  if (d[0] & 0x10) {
    if (len < off + 4) return false;
    off += 4 + ((d[off + 2] << 8) | d[off + 3]) * 4;
  }
  end = len;
  if (d[0] & 0x20) {
    uint8_t pad = d[len - 1];
    if (pad == 0 || pad > end - off) return false;
    end -= pad;
  }
  return off <= end;
}

uint8_t Engine::relay(Slot& s, uint8_t* data, size_t len) {
  const Route& r = s.route;
  if (r.peer < 0 || static_cast<size_t>(r.peer) >= slots.size()) return kNotRelayed;
  Slot& p = slots[r.peer];
  if (p.fd < 0 || p.remoteLen == 0) return kNotRelayed;
  size_t off, end;
  if (!payloadOf(data, len, off, end)) return kNotRelayed;
  int pt = data[1] & 0x7f;
  int outPt;
  bool audio = false;
  if (pt == r.inAudio) {
    outPt = r.outAudio;
    audio = true;
  } else if (r.inEvent >= 0 && pt == r.inEvent && r.outEvent >= 0) {
    outPt = r.outEvent;
  } else {
    return kNotRelayed;
  }
  if (outPt < 0) return kNotRelayed;
  const uint8_t* out = data;
  uint8_t flag = kRelayed;
  // a copy when anything changes: JavaScript records the packet as received
  if (outPt != pt || (audio && r.transcode)) {
    memcpy(scratch, data, len);
    scratch[1] = (scratch[1] & 0x80) | outPt;
    if (audio && r.transcode) {
      for (size_t i = off; i < end; i++) scratch[i] = r.table[scratch[i]];
      flag = kTranscoded;
    }
    out = scratch;
  }
  if (sendto(p.fd, out, len, 0, reinterpret_cast<const sockaddr*>(&p.remote), p.remoteLen) < 0) {
    sendErrors++;
    return kNotRelayed;
  }
  relayed++;
  return flag;
}

void Engine::handle(uint32_t index, Slot& s, uint8_t* data, size_t len, bool cut, const sockaddr_storage& from, socklen_t fromLen,
                    double at, bool& wake) {
  // longer than any RTP we take (2,036 bytes of payload): neither relayed nor recorded, counted
  if (cut) {
    truncated++;
    return;
  }
  // symmetric RTP: the far end is where its packets come from
  if (!sameAddress(s.remote, s.remoteLen, from, fromLen)) {
    memcpy(&s.remote, &from, fromLen);
    s.remoteLen = fromLen;
  }
  uint8_t flag = kJs;
  if (s.route.native) flag = relay(s, data, len);
  if (s.route.wake) wake = true;
  size_t rec = kHeader + ((len + 3) & ~size_t(3));
  if (queue.size() - qr + rec > kMaxQueue) {
    queueDropped++;
    return;
  }
  size_t at0 = queue.size();
  queue.resize(at0 + rec);
  uint8_t* h = queue.data() + at0;
  memset(h, 0, kHeader);
  uint32_t len32 = static_cast<uint32_t>(len);
  memcpy(h + 0, &index, 4);
  memcpy(h + 4, &s.gen, 4);
  memcpy(h + 8, &at, 8);
  uint16_t len16 = static_cast<uint16_t>(len32);
  memcpy(h + 16, &len16, 2);
  h[20] = flag;
  if (from.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&from);
    uint16_t port = ntohs(a->sin_port);
    memcpy(h + 18, &port, 2);
    h[21] = 4;
    memcpy(h + 24, &a->sin_addr, 4);
  } else if (from.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&from);
    uint16_t port = ntohs(a->sin6_port);
    memcpy(h + 18, &port, 2);
    h[21] = 6;
    memcpy(h + 24, &a->sin6_addr, 16);
  }
  memcpy(h + kHeader, data, len);
  if (queue.size() - qr > kWakeBytes) wake = true;
}

void Engine::run() {
  pthread_setname_np(pthread_self(), "udp-engine");  // as `top -H` and /proc/<pid>/task/*/comm show it
  // ahead of the process's other threads where the pod may (CAP_SYS_NICE); others lower their own (niceThread)
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), -10) != 0) { /* not permitted: stays at 0 */ }
  for (int i = 0; i < kBatch; i++) {
    iovs[i].iov_base = bufs[i];
    iovs[i].iov_len = kMaxDatagram;
  }
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    bool wake = false;
    for (int e = 0; e < n; e++) {
      uint64_t key = events[e].data.u64;
      if (key == UINT64_MAX) return;  // stop
      uint32_t index = static_cast<uint32_t>(key & 0xffffffffu);
      uint32_t gen = static_cast<uint32_t>(key >> 32);
      std::lock_guard<std::mutex> g(lock);
      if (index >= slots.size()) continue;
      Slot& s = slots[index];
      if (s.fd < 0 || s.gen != gen) continue;
      for (int i = 0; i < kBatch; i++) {
        memset(&msgs[i].msg_hdr, 0, sizeof(msghdr));
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      }
      int k = recvmmsg(s.fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (k <= 0) continue;
      double at = monotonicMs();
      for (int i = 0; i < k; i++) {
        bool cut = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        handle(index, s, bufs[i], msgs[i].msg_len > kMaxDatagram ? kMaxDatagram : msgs[i].msg_len, cut, addrs[i], msgs[i].msg_hdr.msg_namelen, at, wake);
      }
    }
    if (wake) {
      bool call = false;
      {
        std::lock_guard<std::mutex> g(lock);
        if (!notified && queue.size() > qr) notified = call = true;
      }
      if (call && tsfn) napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
    }
  }
}

void Engine::stop() {
  if (destroyed) return;
  destroyed = true;
  if (stopFd >= 0) {
    uint64_t one = 1;
    if (write(stopFd, &one, sizeof one) < 0) { /* the thread is gone already */ }
  }
  if (thread.joinable()) thread.join();
  for (Slot& s : slots)
    if (s.fd >= 0) {
      close(s.fd);
      s.fd = -1;
    }
  if (epoll >= 0) close(epoll);
  if (stopFd >= 0) close(stopFd);
  epoll = stopFd = -1;
  if (tsfn) {
    napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
    tsfn = nullptr;
  }
}

// ---- JavaScript bindings ----

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, nullptr, "udp-engine: " #call " failed"); \
      return nullptr;                                                \
    }                                                                \
  } while (0)

// The call's first N arguments in argv (those not given are undefined).
#define ARGS(N)           \
  size_t argc = N;        \
  napi_value argv[N];     \
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr))

// A string argument of up to 63 bytes (an IP address) into `out`.
#define TEXT_ARG(v, out)  \
  char out[64];           \
  size_t out##Length;     \
  CHECK(napi_get_value_string_utf8(env, v, out, sizeof out, &out##Length))

napi_value throwErrno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, message, error;
  const char* name = err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : "EUDPENGINE";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return nullptr;
}

Engine* engineOf(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) return nullptr;
  auto* e = static_cast<Engine*>(p);
  return e->destroyed ? nullptr : e;
}

bool parseAddress(const char* text, int port, int family, sockaddr_storage& out, socklen_t& len) {
  memset(&out, 0, sizeof out);
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&out);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, text, &a->sin_addr) != 1) return false;
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&out);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  if (inet_pton(AF_INET6, text, &a->sin6_addr) != 1) {
    // an IPv4 far end of an IPv6 socket: the v4-mapped address
    char mapped[64];
    snprintf(mapped, sizeof mapped, "::ffff:%s", text);
    if (inet_pton(AF_INET6, mapped, &a->sin6_addr) != 1) return false;
  }
  len = sizeof(sockaddr_in6);
  return true;
}

void callJs(napi_env env, napi_value cb, void*, void*) {
  if (!env || !cb) return;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, cb, 0, nullptr, nullptr);
}

void cleanup(void* arg) { static_cast<Engine*>(arg)->stop(); }

void finalize(napi_env env, void* data, void*) {
  auto* e = static_cast<Engine*>(data);
  e->stop();
  napi_remove_env_cleanup_hook(env, cleanup, e);
  delete e;
}

// create(onReady) -> engine
napi_value Create(napi_env env, napi_callback_info info) {
  ARGS(1);
  auto* e = new Engine();
  e->env = env;
  e->epoll = epoll_create1(EPOLL_CLOEXEC);
  e->stopFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->epoll < 0 || e->stopFd < 0) {
    int err = errno;
    e->stop();
    delete e;
    return throwErrno(env, "epoll/eventfd", err);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  epoll_ctl(e->epoll, EPOLL_CTL_ADD, e->stopFd, &ev);
  napi_value name;
  napi_create_string_utf8(env, "udp-engine", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], nullptr, name, 0, 1, nullptr, nullptr, nullptr, callJs, &e->tsfn) != napi_ok) {
    e->stop();
    delete e;
    napi_throw_error(env, nullptr, "udp-engine: cannot create the wake-up function");
    return nullptr;
  }
  // the engine must not keep the event loop alive by itself
  napi_unref_threadsafe_function(env, e->tsfn);
  e->queue.reserve(kQueueStart);
  e->thread = std::thread([e] { e->run(); });
  napi_add_env_cleanup_hook(env, cleanup, e);
  napi_value out;
  CHECK(napi_create_external(env, e, finalize, nullptr, &out));
  return out;
}

// open(engine, port, bindAddress) -> slot (a socket bound to the port; throws with the errno's code)
napi_value Open(napi_env env, napi_callback_info info) {
  ARGS(3);
  Engine* e = engineOf(env, argv[0]);
  if (!e) return throwErrno(env, "udp-engine", EBADF);
  int32_t port;
  CHECK(napi_get_value_int32(env, argv[1], &port));
  TEXT_ARG(argv[2], addr);
  int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
  sockaddr_storage sa;
  socklen_t salen;
  if (!parseAddress(addr, port, family, sa, salen)) return throwErrno(env, "bad bind address", EINVAL);
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throwErrno(env, "socket", errno);
  int rcv = 256 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), salen) < 0) {
    int err = errno;
    close(fd);
    char what[96];
    snprintf(what, sizeof what, "bind %s:%d", addr, port);
    return throwErrno(env, what, err);
  }
  uint32_t index;
  {
    std::lock_guard<std::mutex> g(e->lock);
    if (!e->freeSlots.empty()) {
      index = e->freeSlots.back();
      e->freeSlots.pop_back();
    } else {
      index = static_cast<uint32_t>(e->slots.size());
      e->slots.emplace_back();
    }
    Slot& s = e->slots[index];
    s.fd = fd;
    s.family = family;
    s.gen++;
    s.remoteLen = 0;
    s.route = Route();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (static_cast<uint64_t>(s.gen) << 32) | index;
    if (epoll_ctl(e->epoll, EPOLL_CTL_ADD, fd, &ev) < 0) {
      int err = errno;
      close(fd);
      s.fd = -1;
      e->freeSlots.push_back(index);
      return throwErrno(env, "epoll_ctl", err);
    }
  }
  napi_value out;
  CHECK(napi_create_uint32(env, index, &out));
  return out;
}

napi_value Gen(napi_env env, napi_callback_info info) {
  ARGS(2);
  Engine* e = engineOf(env, argv[0]);
  uint32_t index;
  CHECK(napi_get_value_uint32(env, argv[1], &index));
  uint32_t gen = 0;
  if (e) {
    std::lock_guard<std::mutex> g(e->lock);
    if (index < e->slots.size()) gen = e->slots[index].gen;
  }
  napi_value out;
  CHECK(napi_create_uint32(env, gen, &out));
  return out;
}

// close(engine, slot): idempotent
napi_value Close(napi_env env, napi_callback_info info) {
  ARGS(2);
  Engine* e = engineOf(env, argv[0]);
  if (!e) return nullptr;
  uint32_t index;
  CHECK(napi_get_value_uint32(env, argv[1], &index));
  std::lock_guard<std::mutex> g(e->lock);
  if (index >= e->slots.size() || e->slots[index].fd < 0) return nullptr;
  Slot& s = e->slots[index];
  epoll_ctl(e->epoll, EPOLL_CTL_DEL, s.fd, nullptr);
  close(s.fd);
  s.fd = -1;
  s.gen++;
  s.remoteLen = 0;
  s.route = Route();
  // routes of other sockets that sent out through this one stop relaying
  for (Slot& o : e->slots)
    if (o.route.peer == static_cast<int32_t>(index)) o.route.peer = -1;
  e->freeSlots.push_back(index);
  return nullptr;
}

// setRemote(engine, slot, address | null, port): where this socket's far end is (SDP), until its packets say otherwise
napi_value SetRemote(napi_env env, napi_callback_info info) {
  ARGS(4);
  Engine* e = engineOf(env, argv[0]);
  if (!e) return nullptr;
  uint32_t index;
  CHECK(napi_get_value_uint32(env, argv[1], &index));
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[2], &t));
  int32_t port;
  CHECK(napi_get_value_int32(env, argv[3], &port));
  sockaddr_storage sa;
  socklen_t salen = 0;
  std::lock_guard<std::mutex> g(e->lock);
  if (index >= e->slots.size() || e->slots[index].fd < 0) return nullptr;
  Slot& s = e->slots[index];
  if (t == napi_string) {
    TEXT_ARG(argv[2], addr);
    if (!parseAddress(addr, port, s.family, sa, salen)) salen = 0;
  }
  if (salen) memcpy(&s.remote, &sa, salen);
  s.remoteLen = salen;
  return nullptr;
}

// setRoute(engine, slot, peer, native, wake, inAudio, inEvent, outAudio, outEvent, table | null)
napi_value SetRoute(napi_env env, napi_callback_info info) {
  ARGS(10);
  Engine* e = engineOf(env, argv[0]);
  if (!e) return nullptr;
  uint32_t index;
  CHECK(napi_get_value_uint32(env, argv[1], &index));
  Route r;
  int32_t v;
  CHECK(napi_get_value_int32(env, argv[2], &r.peer));
  CHECK(napi_get_value_bool(env, argv[3], &r.native));
  CHECK(napi_get_value_bool(env, argv[4], &r.wake));
  CHECK(napi_get_value_int32(env, argv[5], &v));
  r.inAudio = static_cast<int16_t>(v);
  CHECK(napi_get_value_int32(env, argv[6], &v));
  r.inEvent = static_cast<int16_t>(v);
  CHECK(napi_get_value_int32(env, argv[7], &v));
  r.outAudio = static_cast<int16_t>(v);
  CHECK(napi_get_value_int32(env, argv[8], &v));
  r.outEvent = static_cast<int16_t>(v);
  bool isTable = false;
  napi_is_typedarray(env, argv[9], &isTable);
  if (isTable) {
    void* data;
    size_t length;
    napi_typedarray_type type;
    CHECK(napi_get_typedarray_info(env, argv[9], &type, &length, &data, nullptr, nullptr));
    if (type == napi_uint8_array && length == 256) {
      memcpy(r.table, data, 256);
      r.transcode = true;
    }
  }
  std::lock_guard<std::mutex> g(e->lock);
  if (index >= e->slots.size() || e->slots[index].fd < 0) return nullptr;
  e->slots[index].route = r;
  return nullptr;
}

// send(engine, slot, data, address, port) -> bytes sent, or -errno
napi_value Send(napi_env env, napi_callback_info info) {
  ARGS(5);
  Engine* e = engineOf(env, argv[0]);
  napi_value out;
  if (!e) {
    napi_create_int32(env, -EBADF, &out);
    return out;
  }
  uint32_t index;
  CHECK(napi_get_value_uint32(env, argv[1], &index));
  void* data;
  size_t length;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &length, &data, &ab, &offset));
  TEXT_ARG(argv[3], addr);
  int32_t port;
  CHECK(napi_get_value_int32(env, argv[4], &port));
  // the JavaScript thread alone opens and closes sockets: the fd stays valid through this call
  int fd = -1, family = AF_INET;
  {
    std::lock_guard<std::mutex> g(e->lock);
    if (index < e->slots.size()) {
      fd = e->slots[index].fd;
      family = e->slots[index].family;
    }
  }
  int32_t result = -EBADF;
  if (fd >= 0) {
    sockaddr_storage sa;
    socklen_t salen;
    if (!parseAddress(addr, port, family, sa, salen)) result = -EINVAL;
    else {
      ssize_t k = sendto(fd, data, length, 0, reinterpret_cast<sockaddr*>(&sa), salen);
      result = k < 0 ? -errno : static_cast<int32_t>(k);
    }
  }
  CHECK(napi_create_int32(env, result, &out));
  return out;
}

// read(engine, Uint8Array) -> bytes of whole records copied into it (0: none waiting)
napi_value Read(napi_env env, napi_callback_info info) {
  ARGS(2);
  Engine* e = engineOf(env, argv[0]);
  napi_value out;
  if (!e) {
    napi_create_uint32(env, 0, &out);
    return out;
  }
  void* data;
  size_t length;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset));
  auto* dst = static_cast<uint8_t*>(data);
  size_t copied = 0;
  {
    std::lock_guard<std::mutex> g(e->lock);
    e->notified = false;
    while (e->qr < e->queue.size()) {
      const uint8_t* h = e->queue.data() + e->qr;
      uint16_t len;
      memcpy(&len, h + 16, 2);
      size_t rec = kHeader + ((len + 3u) & ~3u);
      if (copied + rec > length) break;
      memcpy(dst + copied, h, rec);
      copied += rec;
      e->qr += rec;
    }
    if (e->qr == e->queue.size()) {
      e->queue.clear();
      e->qr = 0;
      // a backlog (a stall of this thread) grew the queue: give its memory back once it is read, not hold it for ever
      if (e->queue.capacity() > kKeepQueue) {
        std::vector<uint8_t>().swap(e->queue);
        e->queue.reserve(kQueueStart);
      }
    } else if (e->qr > (4u << 20)) {
      e->queue.erase(e->queue.begin(), e->queue.begin() + e->qr);
      e->qr = 0;
    }
  }
  CHECK(napi_create_uint32(env, static_cast<uint32_t>(copied), &out));
  return out;
}

napi_value Stats(napi_env env, napi_callback_info info) {
  ARGS(1);
  Engine* e = engineOf(env, argv[0]);
  napi_value out;
  CHECK(napi_create_object(env, &out));
  if (!e) return out;
  double relayed, dropped, sendErrors, truncated, queued, allocated;
  {
    std::lock_guard<std::mutex> g(e->lock);
    relayed = static_cast<double>(e->relayed);
    dropped = static_cast<double>(e->queueDropped);
    sendErrors = static_cast<double>(e->sendErrors);
    truncated = static_cast<double>(e->truncated);
    queued = static_cast<double>(e->queue.size() - e->qr);
    allocated = static_cast<double>(e->queue.capacity());
  }
  const struct {
    const char* name;
    double value;
  } fields[] = {{"relayed", relayed}, {"queueDropped", dropped}, {"sendErrors", sendErrors}, {"truncated", truncated}, {"queuedBytes", queued}, {"queueAllocatedBytes", allocated}};
  for (const auto& f : fields) {
    napi_value v;
    napi_create_double(env, f.value, &v);
    napi_set_named_property(env, out, f.name, v);
  }
  return out;
}

napi_value Destroy(napi_env env, napi_callback_info info) {
  ARGS(1);
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) == napi_ok && p) static_cast<Engine*>(p)->stop();
  return nullptr;
}

// niceThread(n) -> whether the calling thread's nice value is now n (raising it needs no privilege)
napi_value NiceThread(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t n;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  napi_value out;
  napi_get_boolean(env, setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), n) == 0, &out);
  return out;
}

// trimMalloc() -> whether the C heap gave free memory back to the system: glibc keeps what any thread freed in its
// arenas until malloc_trim (it walks every arena under its lock: for an idle process); false where there is no glibc
napi_value TrimMalloc(napi_env env, napi_callback_info) {
  napi_value out;
#ifdef __GLIBC__
  napi_get_boolean(env, malloc_trim(0) == 1, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

// fixMmapThreshold(bytes) -> whether it was set: glibc serves a block of at least `bytes` from its own mapping, given
// back when freed. glibc's default starts at 128 kB but rises (up to 32 MB) to the largest block freed so far, and from
// then on such blocks come from the arenas, where the holes they leave keep the arenas' memory for good. Setting the
// threshold fixes it (and ends the rise); false where there is no glibc
napi_value FixMmapThreshold(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t bytes = 0;
  CHECK(napi_get_value_int32(env, argv[0], &bytes));
  napi_value out;
#ifdef __GLIBC__
  napi_get_boolean(env, bytes > 0 && mallopt(M_MMAP_THRESHOLD, bytes) == 1, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

napi_value NowMs(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_double(env, monotonicMs(), &out);
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  const struct {
    const char* name;
    napi_callback f;
  } fns[] = {{"create", Create}, {"open", Open},   {"gen", Gen},     {"close", Close},     {"setRemote", SetRemote}, {"setRoute", SetRoute},
             {"send", Send},     {"read", Read},   {"stats", Stats}, {"destroy", Destroy}, {"nowMs", NowMs}, {"niceThread", NiceThread}, {"trimMalloc", TrimMalloc}, {"fixMmapThreshold", FixMmapThreshold}};
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.f, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  napi_value header;
  napi_create_uint32(env, kHeader, &header);
  napi_set_named_property(env, exports, "headerBytes", header);
  return exports;
}
