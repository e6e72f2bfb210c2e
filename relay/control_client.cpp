#include "relay/control_client.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tlsrelay::relay {
namespace {

constexpr int reply_timeout_s = 30;
constexpr std::size_t max_reply = 64u << 20;

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// Connects to the daemon's socket; on failure says why in `reply` (reached stays false),
// except for the two answers that mean no daemon runs: no socket, nobody listening.
bool connect_control(const std::filesystem::path& spool_dir, Fd& sock, ControlReply& reply) {
    Fd dir{::open(spool_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
    if (dir.fd >= 0) sock.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (dir.fd < 0 || sock.fd < 0) {
        if (errno != ENOENT) reply.unreachable = std::strerror(errno);
        return false;
    }
    std::string address = control_socket_address(spool_dir, dir.fd);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (address.size() >= sizeof sa.sun_path) {
        reply.unreachable = "socket path too long";
        return false;
    }
    std::memcpy(sa.sun_path, address.c_str(), address.size() + 1);
    if (::connect(sock.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return true;
    if (errno != ENOENT && errno != ECONNREFUSED) reply.unreachable = std::strerror(errno);
    return false;
}

bool send_all(int fd, const std::string& text) {
    for (std::size_t done = 0; done < text.size();) {
        ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads until the daemon closes; "" or what went wrong (a timeout, an error, too much).
std::string receive_all(int fd, std::string& text) {
    char buf[8192];
    while (text.size() < max_reply) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::strerror(errno);
        if (n == 0) return "";
        text.append(buf, static_cast<std::size_t>(n));
    }
    return "reply too long";
}

void split_reply(const std::string& text, ControlReply& reply) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) break;  // an unterminated last line is no answer
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line == "ok") {
            reply.ok = true;
            return;
        }
        if (line.rfind("error: ", 0) == 0) {
            reply.error = line.substr(7);
            return;
        }
        reply.lines.push_back(std::move(line));
    }
    reply.error = "no complete reply from the daemon";
}

}  // namespace

ControlReply ask_daemon(const std::filesystem::path& spool_dir, const ControlRequest& request) {
    ControlReply reply;
    Fd sock;
    if (!connect_control(spool_dir, sock, reply)) return reply;
    reply.reached = true;
    timeval tv{reply_timeout_s, 0};
    ::setsockopt(sock.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(sock.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string text;
    std::string failed = send_all(sock.fd, format_control_request(request)) ? receive_all(sock.fd, text)
                                                                             : std::strerror(errno);
    if (!failed.empty()) {
        reply.error = "talking to the daemon: " + failed;
        return reply;
    }
    split_reply(text, reply);
    return reply;
}

}  // namespace tlsrelay::relay
