// The queue control protocol between `tlsrelay queue` and the running daemon, over the
// Unix socket <queue.dir>/control (docs/queue-format.md "Control socket"): one request
// line, reply lines ending with `ok` or `error: reason`. Pure parsing and formatting.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace tlsrelay::relay {

enum class ControlVerb { flush, hold, release, remove, list, tls_rpt_send };

struct ControlRequest {
    ControlVerb verb = ControlVerb::list;
    std::string id;  // empty: `flush` of every message (and always for `list`)

    bool operator==(const ControlRequest&) const = default;
};

// Longest request line accepted, the LF included; longer ones are refused unread.
constexpr std::size_t max_control_line = 64;

// One request line without its LF (a trailing CR is tolerated). Anything else than
// the grammar of the protocol, a NUL, a control character or an id that is no queue id
// gives the reason it is refused.
std::variant<ControlRequest, std::string> parse_control_request(std::string_view line);
// The request line (LF included) that parse_control_request reads back.
std::string format_control_request(const ControlRequest& request);

// What the daemon reports for one message in its reply to `list`.
struct ControlWaiting {
    enum class State { active, blocked, due, held } state = State::due;
    std::string id;
    std::int64_t due = 0;     // due: unix seconds (0 or past: as soon as possible)
    std::string destination;  // blocked: whose connection limit it waits for

    bool operator==(const ControlWaiting&) const = default;
};

// `ID active`, `ID held`, `ID due UNIXSECONDS`, `ID blocked DESTINATION`, LF included.
std::string format_waiting(const ControlWaiting& w);
std::optional<ControlWaiting> parse_waiting(std::string_view line);

// The socket's name in the spool.
inline std::filesystem::path control_socket_path(const std::filesystem::path& spool_dir) {
    return spool_dir / "control";
}

// A name for the socket that fits sockaddr_un: the path itself when short enough, else
// /proc/self/fd/DIR_FD/control through an open descriptor of the spool folder.
std::string control_socket_address(const std::filesystem::path& spool_dir, int dir_fd);

}  // namespace tlsrelay::relay
