// Helpers for the queue tests: a temporary spool directory under /tmp removed at the
// end, file helpers, a sample envelope, and a FileOps that fails the n-th call.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "queue/queue.hpp"

namespace tlsrelay::queue::test {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string templ = "/tmp/tlsrelay-queue-test-XXXXXX";
        if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
        path = templ;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

// Whether the file system under /tmp makes anonymous files (O_TMPFILE) that can be
// linked by descriptor; where not, a spool names every draft tmp/<ID>.
inline bool anonymous_files_work() {
    TempDir dir;
    int fd = ::open(dir.path.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    std::string name = dir.path / "x";
    bool linked = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0;
    ::close(fd);
    return linked;
}

inline std::vector<std::string> files_in(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

inline std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline Envelope sample_envelope(std::vector<std::string> recipients = {"bob@example.org"}) {
    Envelope e;
    e.sender = "alice@example.com";
    for (auto& r : recipients) e.recipients.emplace_back().address = std::move(r);
    e.client = "mail.example.com[192.0.2.1]";
    e.helo = "mail.example.com";
    return e;
}

inline std::string binary_content(std::size_t size, unsigned seed = 1) {
    std::string s(size, '\0');
    unsigned x = seed;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return s;
}

// Begins, appends `content` in `piece`-byte appends, commits; returns the id or "".
inline std::string commit_message(Spool& spool, std::string_view content,
                                  const Envelope& envelope, std::size_t piece = 1000) {
    std::error_code ec;
    auto draft = spool.begin(ec);
    if (!draft) return "";
    for (std::size_t i = 0; i < content.size() && !ec; i += piece)
        ec = draft->append(content.substr(i, piece));
    if (!ec) ec = draft->commit(envelope);
    return ec ? "" : draft->id();
}

inline OpenResult open_ok(const std::filesystem::path& dir) {
    OpenResult r = open_spool(dir);
    EXPECT_TRUE(r.spool) << r.error;
    return r;
}

// Fails the n-th call (counted from arm()) of one kind of syscall with `error`.
struct Faults {
    enum Kind { write, fsync, close, rename, link, kinds };
    std::atomic<int> calls[kinds] = {};
    std::atomic<int> fail_at[kinds] = {};
    int error = EIO;
    // Refuses every link (EPERM, not counted), so the spool opened with these ops finds
    // anonymous drafts impossible and names them tmp/<ID>.
    bool named_drafts = false;

    void arm(Kind kind, int n, int err) {
        for (auto& c : calls) c = 0;
        fail_at[kind] = n;
        error = err;
    }
    bool should_fail(Kind kind) {
        int n = ++calls[kind];
        if (fail_at[kind] == 0 || n != fail_at[kind]) return false;
        errno = error;
        return true;
    }
    FileOps ops() {
        FileOps real = system_file_ops(), ops;
        ops.write = [this, real](int fd, const void* p, std::size_t n) -> ssize_t {
            return should_fail(write) ? -1 : real.write(fd, p, n);
        };
        ops.fsync = [this, real](int fd) { return should_fail(fsync) ? -1 : real.fsync(fd); };
        ops.close = [this, real](int fd) {
            if (!should_fail(close)) return real.close(fd);
            real.close(fd);  // Linux: the descriptor is gone even when close fails
            errno = error;
            return -1;
        };
        ops.rename = [this, real](const char* a, const char* b, bool noreplace) {
            return should_fail(rename) ? -1 : real.rename(a, b, noreplace);
        };
        ops.link = [this, real](int fd, const char* to) {
            if (named_drafts) {
                errno = EPERM;
                return -1;
            }
            return should_fail(link) ? -1 : real.link(fd, to);
        };
        return ops;
    }
};

}  // namespace tlsrelay::queue::test
