#include "support/network.hpp"

#include <charconv>

namespace tlsrelay::support {
namespace {

template <class Bytes>
bool prefix_equal(const Bytes& a, const Bytes& b, unsigned prefix) {
    unsigned full = prefix / 8, rest = prefix % 8;
    for (unsigned i = 0; i < full; ++i)
        if (a[i] != b[i]) return false;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

template <class Bytes>
bool host_bits_clear(const Bytes& a, unsigned prefix) {
    for (unsigned bit = prefix; bit < a.size() * 8; ++bit)
        if (a[bit / 8] & (0x80 >> (bit % 8))) return false;
    return true;
}

}  // namespace

boost::asio::ip::address unmap(const boost::asio::ip::address& addr) {
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6());
    return addr;
}

bool Network::contains(const boost::asio::ip::address& raw) const {
    auto addr = unmap(raw);
    if (addr.is_v4() != base.is_v4()) return false;
    if (addr.is_v4()) return prefix_equal(addr.to_v4().to_bytes(), base.to_v4().to_bytes(), prefix);
    return prefix_equal(addr.to_v6().to_bytes(), base.to_v6().to_bytes(), prefix);
}

std::string Network::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

std::optional<Network> parse_network(std::string_view text, std::string* error) {
    auto fail = [&](std::string why) -> std::optional<Network> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    auto slash = text.find('/');
    std::string addr_text(text.substr(0, slash));
    boost::system::error_code ec;
    auto base = unmap(boost::asio::ip::make_address(addr_text, ec));
    if (ec) return fail("\"" + std::string(text) + "\" is not an IP address or network");
    unsigned max = base.is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        auto [end, perr] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (digits.empty() || perr != std::errc() || end != digits.data() + digits.size() ||
            prefix > max)
            return fail("\"" + std::string(text) + "\" has a bad prefix length");
    }
    bool clear = base.is_v4() ? host_bits_clear(base.to_v4().to_bytes(), prefix)
                              : host_bits_clear(base.to_v6().to_bytes(), prefix);
    if (!clear) return fail("\"" + std::string(text) + "\" has host bits set beyond /" +
                            std::to_string(prefix));
    return Network{base, prefix};
}

bool any_contains(const std::vector<Network>& nets, const boost::asio::ip::address& addr) {
    for (const auto& n : nets)
        if (n.contains(addr)) return true;
    return false;
}

}  // namespace tlsrelay::support
