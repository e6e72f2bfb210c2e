// The process's open-file limit: every SMTP session holds a descriptor, so a daemon
// allowed thousands of sessions needs a soft RLIMIT_NOFILE above that. Like most
// epoll servers we raise the soft limit to the hard one at start (systemd's default
// soft limit, 1024, exists only for select() users) and say so when it is still short.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace tlsrelay::support {

// Raises the soft limit to the hard limit; returns a warning if the result is below
// `wanted` descriptors, nullopt otherwise.
std::optional<std::string> raise_fd_limit(std::size_t wanted);

}  // namespace tlsrelay::support
