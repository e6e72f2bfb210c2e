#include "support/fd_limit.hpp"

#include <sys/resource.h>

namespace tlsrelay::support {

std::optional<std::string> raise_fd_limit(std::size_t wanted) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return std::nullopt;
    if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised{lim.rlim_max, lim.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
    }
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= wanted) return std::nullopt;
    return "open-file limit " + std::to_string(lim.rlim_cur) + " is below the " + std::to_string(wanted) +
           " that server.max_connections needs; clients beyond it wait until descriptors free up "
           "(raise LimitNOFILE or ulimit -n)";
}

}  // namespace tlsrelay::support
