// The few syscalls the spool's durability rests on (write, fsync, close, rename, link), behind
// a seam so tests can make the n-th call fail, as `strace -e inject=` would. Production
// code uses system_file_ops(); nothing else in the relay needs this header.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>

namespace tlsrelay::queue {

struct FileOps {
    // Each returns what the syscall returns and sets errno on failure.
    std::function<ssize_t(int fd, const void* data, std::size_t size)> write;
    std::function<int(int fd)> fsync;  // files and directories
    std::function<int(int fd)> close;  // only the closes whose result matters
    // noreplace: fail with EEXIST instead of replacing (renameat2 RENAME_NOREPLACE,
    // falling back to link()+unlink() where the file system lacks it).
    std::function<int(const char* from, const char* to, bool noreplace)> rename;
    // Gives the anonymous file open as fd (O_TMPFILE) the name `to`; fails with EEXIST
    // instead of replacing. Through /proc/self/fd (linkat AT_SYMLINK_FOLLOW): the
    // AT_EMPTY_PATH form needs CAP_DAC_READ_SEARCH, which the daemon has given up.
    std::function<int(int fd, const char* to)> link;
};

// The real syscalls.
FileOps system_file_ops();

}  // namespace tlsrelay::queue
