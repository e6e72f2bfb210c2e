// The `tlsrelay queue` end of the control socket (control_protocol.hpp): asks the
// running daemon to act at once. No daemon (no socket, or nobody listening) is not an
// error: the caller then acts on the spool files itself, as before the socket existed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "relay/control_protocol.hpp"

namespace tlsrelay::relay {

struct ControlReply {
    bool reached = false;            // false: no daemon answered; act on the spool files
    std::string unreachable;         // when not reached for an unusual reason: which
    bool ok = false;                 // the reply ended with `ok`
    std::string error;               // else the reason after `error: ` (or what went wrong)
    std::vector<std::string> lines;  // the lines before `ok`, without their LF
};

ControlReply ask_daemon(const std::filesystem::path& spool_dir, const ControlRequest& request);

}  // namespace tlsrelay::relay
