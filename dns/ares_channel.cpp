// c-ares under Asio; see ares_channel.hpp. The one invariant that matters: c-ares
// owns every descriptor. We only ever release() our stream_descriptor (in the
// socket-state callback that c-ares makes just before it closes the fd), so a
// reused fd number never gets a stale registration and we never close its sockets.
#include "dns/ares_channel.hpp"

#include <ares.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <mutex>
#include <sstream>

namespace tlsrelay::dns {
namespace {

constexpr int class_in = 1;
constexpr int edns_payload = 1232;  // the DNS flag day 2020 size: no fragmentation

void library_init() {
    static std::once_flag once;
    std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

std::string join_servers(const std::vector<std::string>& servers) {
    std::string csv;
    for (const auto& s : servers) csv += (csv.empty() ? "" : ",") + s;
    return csv;
}

// The query as ares_query would send it, plus AD in the header (RFC 6840 §5.7: a
// validating resolver then reports AD) and DO in the OPT record (as Postfix's
// RES_USE_DNSSEC), both only with dnssec.
std::vector<std::uint8_t> build_query(const std::string& name, int rr_type, bool dnssec) {
    unsigned char* buf = nullptr;
    int len = 0;
    if (ares_create_query(name.c_str(), class_in, rr_type, 0, 1, &buf, &len, edns_payload) !=
        ARES_SUCCESS)
        return {};
    std::vector<std::uint8_t> query(buf, buf + len);
    ares_free_string(buf);
    // OPT is the last record: root name, type 41, class = payload, ttl = ext-rcode,
    // version, flags (DO is the top bit), rdlength 0.
    const std::size_t opt = query.size() - 11;
    if (dnssec && query.size() >= 23 && query[opt + 1] == 0 && query[opt + 2] == 41) {
        query[3] |= 0x20;        // AD
        query[opt + 7] |= 0x80;  // DO
    }
    return query;
}

}  // namespace

struct AresChannel::Watch {
    explicit Watch(const boost::asio::any_io_executor& ex, int fd) : descriptor(ex, fd) {}
    boost::asio::posix::stream_descriptor descriptor;
    bool want_read = false, want_write = false;  // what c-ares asked for last
    bool reading = false, writing = false;       // a wait is pending
    bool released = false;
};

std::shared_ptr<AresChannel> AresChannel::create(const boost::asio::any_io_executor& ex,
                                                 const ResolverOptions& options,
                                                 std::string& error) {
    library_init();
    auto self = std::make_shared<AresChannel>(ex, options.dnssec);
    ares_options opts{};
    // NOSEARCH: never append resolv.conf search domains (Postfix leaves res_dnsrch
    // off). EDNS: replies up to edns_payload over UDP; larger ones go to TCP.
    opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS;
    opts.timeout = static_cast<int>(std::max<long long>(1, options.timeout.count()));
    opts.tries = std::max(1, options.tries);
    opts.ednspsz = edns_payload;
    opts.sock_state_cb = &AresChannel::on_socket_state;
    opts.sock_state_cb_data = self.get();
    const int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ |
                     ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&self->channel_, &opts, mask);
    if (rc != ARES_SUCCESS) {
        error = std::string("c-ares initialisation failed: ") + ares_strerror(rc);
        self->channel_ = nullptr;
        return nullptr;
    }
    if (!options.servers.empty()) {
        rc = ares_set_servers_ports_csv(self->channel_, join_servers(options.servers).c_str());
        if (rc != ARES_SUCCESS) {
            error = "bad DNS server list \"" + join_servers(options.servers) +
                    "\": " + ares_strerror(rc);
            return nullptr;
        }
    }
    return self;
}

AresChannel::AresChannel(const boost::asio::any_io_executor& ex, bool dnssec)
    : ex_(ex), dnssec_(dnssec), timer_(ex) {}

AresChannel::~AresChannel() {
    shutdown();
}

int AresChannel::cancelled_status() {
    return ARES_ECANCELLED;
}

void AresChannel::shutdown() {
    if (channel_) {
        // Callbacks run inside ares_destroy (ARES_EDESTRUCTION); they only post.
        auto* channel = channel_;
        channel_ = nullptr;
        ares_destroy(channel);
    }
    timer_.cancel();
    for (auto& [fd, w] : watches_) {  // c-ares reported closing them; belt and braces
        w->released = true;
        w->descriptor.release();
    }
    watches_.clear();
}

void AresChannel::send(const std::string& name, int rr_type,
                       std::shared_ptr<detail::PendingQuery> query) {
    auto bytes = build_query(name, rr_type, dnssec_);
    if (!channel_ || bytes.empty()) {
        query->complete({channel_ ? ARES_EBADNAME : ARES_EDESTRUCTION, {}}, false);
        return;
    }
    // c-ares owns `arg` until on_reply, which c-ares calls exactly once (maybe
    // inside ares_send itself, e.g. when no socket can be opened).
    auto* arg = new std::shared_ptr<detail::PendingQuery>(std::move(query));
    ares_send(channel_, bytes.data(), static_cast<int>(bytes.size()), &AresChannel::on_reply, arg);
    update_timer();
}

void AresChannel::on_reply(void* arg, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<std::shared_ptr<detail::PendingQuery>> query(
        static_cast<std::shared_ptr<detail::PendingQuery>*>(arg));
    RawReply reply{status, {}};
    if (status == ARES_SUCCESS && abuf && alen > 0) reply.bytes.assign(abuf, abuf + alen);
    (*query)->complete(std::move(reply), false);
}

void AresChannel::on_socket_state(void* data, int fd, int readable, int writable) {
    auto* self = static_cast<AresChannel*>(data);
    if (!readable && !writable)
        self->unwatch(fd);
    else
        self->watch(fd, readable != 0, writable != 0);
}

void AresChannel::watch(int fd, bool readable, bool writable) {
    auto& w = watches_[fd];
    if (!w) w = std::make_shared<Watch>(ex_, fd);
    w->want_read = readable;
    w->want_write = writable;
    arm(fd, w);
}

void AresChannel::unwatch(int fd) {
    auto it = watches_.find(fd);
    if (it == watches_.end()) return;
    it->second->released = true;
    it->second->descriptor.release();  // cancels our waits; c-ares closes the fd next
    watches_.erase(it);
}

// Starts the waits c-ares wants and that are not already pending. Each new wait
// re-arms the edge-triggered epoll registration, so readiness is never lost.
void AresChannel::arm(int fd, const std::shared_ptr<Watch>& w) {
    auto start = [this, fd, w](boost::asio::posix::stream_descriptor::wait_type type,
                               bool Watch::*pending) {
        (*w).*pending = true;
        w->descriptor.async_wait(type, [weak = weak_from_this(), fd, w, type,
                                        pending](const boost::system::error_code& ec) {
            (*w).*pending = false;
            auto self = weak.lock();
            if (ec || w->released || !self) return;
            bool readable = type == boost::asio::posix::stream_descriptor::wait_read;
            self->on_ready(fd, readable, !readable);
        });
    };
    if (w->want_read && !w->reading)
        start(boost::asio::posix::stream_descriptor::wait_read, &Watch::reading);
    if (w->want_write && !w->writing)
        start(boost::asio::posix::stream_descriptor::wait_write, &Watch::writing);
}

void AresChannel::on_ready(int fd, bool readable, bool writable) {
    if (!channel_) return;
    ares_process_fd(channel_, readable ? fd : ARES_SOCKET_BAD, writable ? fd : ARES_SOCKET_BAD);
    // The fd may have been closed (and even reopened) inside ares_process_fd.
    if (auto it = watches_.find(fd); it != watches_.end()) arm(fd, it->second);
    update_timer();
}

void AresChannel::update_timer() {
    if (!channel_) return;
    timeval tv{};
    if (!ares_timeout(channel_, nullptr, &tv)) {
        timer_.cancel();
        return;
    }
    // +1 ms: c-ares compares in milliseconds and must see the deadline as passed.
    timer_.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec) +
                         std::chrono::milliseconds(1));
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || !self->channel_) return;
        ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        self->update_timer();
    });
}

}  // namespace tlsrelay::dns
