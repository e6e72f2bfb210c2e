#include "queue/io.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace tlsrelay::queue {

namespace {

int rename_with_flags(const char* from, const char* to, bool noreplace) {
    if (!noreplace) return ::rename(from, to);
    if (::renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    // File systems without RENAME_NOREPLACE: link() refuses to replace too.
    if (::link(from, to) != 0) return -1;
    return ::unlink(from);
}

int link_anonymous(int fd, const char* to) {
    char self[32];
    std::snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    return ::linkat(AT_FDCWD, self, AT_FDCWD, to, AT_SYMLINK_FOLLOW);
}

}  // namespace

FileOps system_file_ops() {
    FileOps ops;
    ops.write = [](int fd, const void* data, std::size_t size) { return ::write(fd, data, size); };
    ops.fsync = [](int fd) { return ::fsync(fd); };
    ops.close = [](int fd) { return ::close(fd); };
    ops.rename = rename_with_flags;
    ops.link = link_anonymous;
    return ops;
}

namespace io {

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::error_code errno_code() { return {errno, std::generic_category()}; }

Fd open_file(const std::filesystem::path& path, int flags, std::error_code& ec, int mode) {
    int fd;
    do {
        fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    ec = fd < 0 ? errno_code() : std::error_code{};
    return Fd(fd);
}

Fd open_dir(const std::filesystem::path& path, std::error_code& ec) {
    return open_file(path, O_RDONLY | O_DIRECTORY, ec);
}

std::error_code write_all(const FileOps& ops, int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ops.write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_code();
        if (n == 0) return std::make_error_code(std::errc::io_error);
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

std::error_code sync(const FileOps& ops, int fd) {
    // Never retried: after a failed fsync the kernel may have dropped the dirty pages.
    return ops.fsync(fd) == 0 ? std::error_code{} : errno_code();
}

std::error_code close_checked(const FileOps& ops, Fd& fd) {
    // No EINTR retry: on Linux the descriptor is gone either way.
    return ops.close(fd.release()) == 0 ? std::error_code{} : errno_code();
}

std::error_code rename(const FileOps& ops, const std::filesystem::path& from,
                       const std::filesystem::path& to, bool noreplace) {
    return ops.rename(from.c_str(), to.c_str(), noreplace) == 0 ? std::error_code{}
                                                                 : errno_code();
}

std::error_code link(const FileOps& ops, int fd, const std::filesystem::path& to) {
    return ops.link(fd, to.c_str()) == 0 ? std::error_code{} : errno_code();
}

std::error_code unlink(const std::filesystem::path& path) {
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) return {};
    return errno_code();
}

std::error_code lock(int fd, int op) {
    int rc;
    do {
        rc = ::flock(fd, op);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? std::error_code{} : errno_code();
}

bool unlinked(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && st.st_nlink == 0;
}

bool same_file(int fd, const std::filesystem::path& path) {
    struct stat held {}, named {};
    return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
           held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

std::error_code read_at(int fd, char* out, std::size_t size, std::uint64_t offset) {
    while (size > 0) {
        ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_code();
        if (n == 0) return std::make_error_code(std::errc::io_error);  // file shrank
        out += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return {};
}

std::error_code file_size(int fd, std::uint64_t& size) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return errno_code();
    size = static_cast<std::uint64_t>(st.st_size);
    return {};
}

std::error_code read_file(const std::filesystem::path& path, std::string& out) {
    std::error_code ec;
    Fd fd = open_file(path, O_RDONLY, ec);
    if (ec) return ec;
    std::uint64_t size = 0;
    if ((ec = file_size(fd.get(), size))) return ec;
    out.assign(size, '\0');
    return read_at(fd.get(), out.data(), out.size(), 0);
}

}  // namespace io
}  // namespace tlsrelay::queue
