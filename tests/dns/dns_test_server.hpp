// A real DNS server for tests on 127.0.0.1 (UDP and TCP on one port) that answers
// each query with whatever the test's responder returns: canned replies built with
// ReplyBuilder, or hostile bytes (loops, bogus counts, bad names, nothing at all).
// No mocks: the resolver under test speaks DNS over real sockets to it.
#pragma once

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tlsrelay::dns::test {

using Bytes = std::vector<std::uint8_t>;

struct ReceivedQuery {
    Bytes raw;
    std::uint16_t id = 0;
    std::string name;  // dotted, as sent
    std::uint16_t type = 0;
    bool rd = false, ad = false, do_bit = false, edns = false;
    bool tcp = false;
    std::size_t question_end = 0;  // offset just past QTYPE/QCLASS
};

inline bool parse_query(const Bytes& raw, ReceivedQuery& q) {
    if (raw.size() < 12) return false;
    q.raw = raw;
    q.id = static_cast<std::uint16_t>(raw[0] << 8 | raw[1]);
    q.rd = raw[2] & 0x01;
    q.ad = raw[3] & 0x20;
    std::size_t at = 12;
    while (at < raw.size() && raw[at] != 0) {
        std::size_t len = raw[at];
        if (at + 1 + len > raw.size()) return false;
        q.name += (q.name.empty() ? "" : ".") +
                  std::string(raw.begin() + at + 1, raw.begin() + at + 1 + len);
        at += 1 + len;
    }
    if (at + 5 > raw.size()) return false;
    q.type = static_cast<std::uint16_t>(raw[at + 1] << 8 | raw[at + 2]);
    q.question_end = at + 5;
    // An OPT record, if any, follows the question: root, type 41, class, ttl, rdlen.
    if (raw.size() >= q.question_end + 11 && raw[q.question_end + 2] == 41) {
        q.edns = true;
        q.do_bit = raw[q.question_end + 7] & 0x80;
    }
    return true;
}

// Wire-format name from a dotted string; label bytes are kept raw, so a test can put
// CR, LF, '<' or spaces inside a label.
inline Bytes name_bytes(std::string_view dotted) {
    Bytes out;
    while (!dotted.empty()) {
        auto dot = dotted.find('.');
        auto label = dotted.substr(0, dot);
        out.push_back(static_cast<std::uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
    }
    out.push_back(0);
    return out;
}

inline void put16(Bytes& b, unsigned v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}

inline Bytes mx_rdata(unsigned preference, std::string_view host) {
    Bytes b;
    put16(b, preference);
    auto n = name_bytes(host);
    b.insert(b.end(), n.begin(), n.end());
    return b;
}

inline Bytes address_rdata(std::string_view ip) {
    auto a = boost::asio::ip::make_address(std::string(ip));
    if (a.is_v4()) {
        auto bytes = a.to_v4().to_bytes();
        return {bytes.begin(), bytes.end()};
    }
    auto bytes = a.to_v6().to_bytes();
    return {bytes.begin(), bytes.end()};
}

inline Bytes tlsa_rdata(std::uint8_t usage, std::uint8_t selector, std::uint8_t matching,
                        const Bytes& data) {
    Bytes b{usage, selector, matching};
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

// A reply to one query: id, RD and the question copied, QR and RA set.
class ReplyBuilder {
  public:
    explicit ReplyBuilder(const ReceivedQuery& q)
        : bytes_(q.raw.begin(), q.raw.begin() + static_cast<long>(q.question_end)) {
        bytes_[2] = static_cast<std::uint8_t>(0x80 | (q.rd ? 0x01 : 0));
        bytes_[3] = 0x80;
        for (int i = 6; i < 12; ++i) bytes_[i] = 0;
    }
    ReplyBuilder& rcode(int rcode) {
        bytes_[3] = static_cast<std::uint8_t>((bytes_[3] & 0xf0) | rcode);
        return *this;
    }
    ReplyBuilder& ad() {
        bytes_[3] |= 0x20;
        return *this;
    }
    ReplyBuilder& tc() {
        bytes_[2] |= 0x02;
        return *this;
    }
    ReplyBuilder& id(std::uint16_t id) {
        bytes_[0] = id >> 8;
        bytes_[1] = id & 0xff;
        return *this;
    }
    ReplyBuilder& ancount(std::uint16_t n) {
        bytes_[6] = n >> 8;
        bytes_[7] = n & 0xff;
        return *this;
    }
    // An answer record; owner "" means a compression pointer to the question name.
    ReplyBuilder& answer(std::string_view owner, unsigned type, const Bytes& rdata) {
        if (owner.empty()) {
            bytes_.push_back(0xc0);
            bytes_.push_back(12);
        } else {
            auto n = name_bytes(owner);
            bytes_.insert(bytes_.end(), n.begin(), n.end());
        }
        put16(bytes_, type);
        put16(bytes_, 1);  // IN
        put16(bytes_, 0);
        put16(bytes_, 300);  // ttl
        put16(bytes_, static_cast<unsigned>(rdata.size()));
        bytes_.insert(bytes_.end(), rdata.begin(), rdata.end());
        return ancount(static_cast<std::uint16_t>((bytes_[6] << 8 | bytes_[7]) + 1));
    }
    ReplyBuilder& raw(const Bytes& b) {
        bytes_.insert(bytes_.end(), b.begin(), b.end());
        return *this;
    }
    std::size_t size() const { return bytes_.size(); }
    Bytes bytes() const { return bytes_; }

  private:
    Bytes bytes_;
};

// Zero or more messages per query: each one a datagram over UDP, or a length-prefixed
// message over TCP. An empty list means "never answer".
using Responder = std::function<std::vector<Bytes>(const ReceivedQuery&)>;

class DnsTestServer {
  public:
    explicit DnsTestServer(boost::asio::io_context& io) : state_(std::make_shared<State>(io)) {
        using namespace boost::asio;
        for (int attempt = 0;; ++attempt) {  // TCP on the UDP port; retry if it is taken
            ip::udp::socket udp(io, ip::udp::endpoint(ip::make_address("127.0.0.1"), 0));
            boost::system::error_code ec;
            ip::tcp::acceptor tcp(io);
            tcp.open(ip::tcp::v4());
            tcp.set_option(ip::tcp::acceptor::reuse_address(true));
            tcp.bind({ip::make_address("127.0.0.1"), udp.local_endpoint().port()}, ec);
            if (ec && attempt < 20) continue;
            tcp.listen();
            port_ = udp.local_endpoint().port();
            co_spawn(io, serve_udp(state_, std::move(udp)), detached);
            co_spawn(io, serve_tcp(state_, std::move(tcp)), detached);
            return;
        }
    }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    void respond(Responder r) { state_->responder = std::move(r); }
    const std::vector<ReceivedQuery>& queries() const { return state_->queries; }

  private:
    struct State {
        explicit State(boost::asio::io_context& io) : io(io) {}
        boost::asio::io_context& io;
        Responder responder;
        std::vector<ReceivedQuery> queries;
        std::vector<Bytes> answer(const Bytes& raw, bool tcp) {
            ReceivedQuery q;
            q.tcp = tcp;
            if (!parse_query(raw, q) || !responder) return {};
            queries.push_back(q);
            return responder(q);
        }
    };

    static boost::asio::awaitable<void> serve_udp(std::shared_ptr<State> state,
                                                  boost::asio::ip::udp::socket socket) {
        std::array<std::uint8_t, 4096> buf;
        for (;;) {
            boost::asio::ip::udp::endpoint peer;
            auto n = co_await socket.async_receive_from(boost::asio::buffer(buf), peer,
                                                        boost::asio::use_awaitable);
            for (const auto& reply : state->answer(Bytes(buf.begin(), buf.begin() + n), false))
                co_await socket.async_send_to(boost::asio::buffer(reply), peer,
                                              boost::asio::use_awaitable);
        }
    }

    static boost::asio::awaitable<void> serve_tcp(std::shared_ptr<State> state,
                                                  boost::asio::ip::tcp::acceptor acceptor) {
        for (;;) {
            auto socket = co_await acceptor.async_accept(boost::asio::use_awaitable);
            co_spawn(state->io, serve_connection(state, std::move(socket)), boost::asio::detached);
        }
    }

    static boost::asio::awaitable<void> serve_connection(std::shared_ptr<State> state,
                                                         boost::asio::ip::tcp::socket socket) {
        using boost::asio::use_awaitable;
        for (;;) {
            std::array<std::uint8_t, 2> length;
            co_await boost::asio::async_read(socket, boost::asio::buffer(length), use_awaitable);
            Bytes query(static_cast<std::size_t>(length[0] << 8 | length[1]));
            co_await boost::asio::async_read(socket, boost::asio::buffer(query), use_awaitable);
            for (auto reply : state->answer(query, true)) {
                Bytes framed{static_cast<std::uint8_t>(reply.size() >> 8),
                             static_cast<std::uint8_t>(reply.size())};
                framed.insert(framed.end(), reply.begin(), reply.end());
                co_await boost::asio::async_write(socket, boost::asio::buffer(framed),
                                                  use_awaitable);
            }
        }
    }

    std::shared_ptr<State> state_;
    unsigned short port_ = 0;
};

}  // namespace tlsrelay::dns::test
