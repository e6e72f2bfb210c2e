// Internal POSIX helpers for queue/: an owning file descriptor, and write/fsync/close/
// rename/link wrappers that go through FileOps, loop on short writes and EINTR, and turn
// errno into std::error_code. Not part of the public interface.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "queue/file_ops.hpp"

namespace tlsrelay::queue::io {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }
    void reset();  // closes, ignoring the result: for read-only and abandoned files

private:
    int fd_ = -1;
};

std::error_code errno_code();

// Opens with O_CLOEXEC added; sets ec on failure.
Fd open_file(const std::filesystem::path& path, int flags, std::error_code& ec,
             int mode = 0600);
Fd open_dir(const std::filesystem::path& path, std::error_code& ec);

std::error_code write_all(const FileOps& ops, int fd, std::string_view bytes);
std::error_code sync(const FileOps& ops, int fd);
std::error_code close_checked(const FileOps& ops, Fd& fd);  // releases fd either way
std::error_code rename(const FileOps& ops, const std::filesystem::path& from,
                       const std::filesystem::path& to, bool noreplace);
std::error_code link(const FileOps& ops, int fd, const std::filesystem::path& to);  // FileOps::link
std::error_code unlink(const std::filesystem::path& path);  // ENOENT is not an error

// flock() with EINTR retried; op is LOCK_SH or LOCK_EX, maybe | LOCK_NB.
std::error_code lock(int fd, int op);
// True when the file behind fd has been unlinked (st_nlink == 0).
bool unlinked(int fd);
// True when path names the file open as fd.
bool same_file(int fd, const std::filesystem::path& path);

std::error_code read_at(int fd, char* out, std::size_t size, std::uint64_t offset);
std::error_code file_size(int fd, std::uint64_t& size);
// Reads a whole (small) file; ENOENT is reported as such.
std::error_code read_file(const std::filesystem::path& path, std::string& out);

}  // namespace tlsrelay::queue::io
