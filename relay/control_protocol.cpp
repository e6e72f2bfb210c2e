#include "relay/control_protocol.hpp"

#include <sys/un.h>

#include <array>
#include <charconv>

#include "queue/queue.hpp"

namespace tlsrelay::relay {
namespace {

struct VerbName {
    ControlVerb verb;
    std::string_view name;
    bool needs_id, takes_id;
};

constexpr std::array<VerbName, 6> verbs{{
    {ControlVerb::flush, "flush", false, true},
    {ControlVerb::hold, "hold", true, true},
    {ControlVerb::release, "release", true, true},
    {ControlVerb::remove, "delete", true, true},
    {ControlVerb::list, "list", false, false},
    {ControlVerb::tls_rpt_send, "tls-rpt-send", false, false},
}};

bool printable_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    return true;
}

}  // namespace

std::variant<ControlRequest, std::string> parse_control_request(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() + 1 > max_control_line) return std::string("request too long");
    if (!printable_ascii(line)) return std::string("request holds a control or non-ASCII byte");
    auto space = line.find(' ');
    std::string_view name = line.substr(0, space);
    std::optional<std::string_view> id;
    if (space != std::string_view::npos) id = line.substr(space + 1);
    for (const auto& v : verbs) {
        if (name != v.name) continue;
        if (id && !v.takes_id) return std::string(v.name) + " takes no argument";
        if (!id && v.needs_id) return std::string(v.name) + " needs a queue id";
        if (id && !queue::is_queue_id(*id)) return std::string("not a queue id");
        return ControlRequest{v.verb, id ? std::string(*id) : std::string()};
    }
    return std::string("unknown request");
}

std::string format_control_request(const ControlRequest& request) {
    for (const auto& v : verbs)
        if (v.verb == request.verb)
            return std::string(v.name) + (request.id.empty() ? "" : " " + request.id) + "\n";
    return "\n";
}

std::string format_waiting(const ControlWaiting& w) {
    using S = ControlWaiting::State;
    switch (w.state) {
    case S::active: return w.id + " active\n";
    case S::held: return w.id + " held\n";
    case S::due: return w.id + " due " + std::to_string(w.due) + "\n";
    case S::blocked: {
        std::string dest = w.destination;
        for (char& c : dest)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
        return w.id + " blocked " + dest + "\n";
    }
    }
    return "\n";
}

std::optional<ControlWaiting> parse_waiting(std::string_view line) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    ControlWaiting w;
    auto space = line.find(' ');
    if (space == std::string_view::npos || !queue::is_queue_id(line.substr(0, space))) return std::nullopt;
    w.id = std::string(line.substr(0, space));
    std::string_view rest = line.substr(space + 1);
    using S = ControlWaiting::State;
    if (rest == "active") w.state = S::active;
    else if (rest == "held") w.state = S::held;
    else if (rest.rfind("blocked ", 0) == 0 && rest.size() > 8) {
        w.state = S::blocked;
        w.destination = std::string(rest.substr(8));
    } else if (rest.rfind("due ", 0) == 0) {
        w.state = S::due;
        std::string_view n = rest.substr(4);
        auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), w.due);
        if (ec != std::errc() || end != n.data() + n.size() || n.empty()) return std::nullopt;
    } else {
        return std::nullopt;
    }
    return w;
}

std::string control_socket_address(const std::filesystem::path& spool_dir, int dir_fd) {
    std::string full = control_socket_path(spool_dir).string();
    if (full.size() < sizeof(sockaddr_un::sun_path)) return full;
    return "/proc/self/fd/" + std::to_string(dir_fd) + "/control";
}

}  // namespace tlsrelay::relay
