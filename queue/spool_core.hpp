// Internal state shared by the file-system spool and its drafts: the directory layout,
// the syscall seam, and the group commit of messages/ (one directory fsync may cover
// the renames of several concurrent commits; each is done once one that began after
// its rename has finished). Not part of the public interface.
#pragma once

#include <atomic>
#include <optional>
#include <vector>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

#include "queue/file_ops.hpp"
#include "queue/io.hpp"
#include "queue/queue.hpp"

namespace tlsrelay::queue {

// Shares directory fsyncs between concurrent callers, without making any of them wait
// on another's: a caller that finds an fsync running leaves its callback and returns,
// and the thread running it runs one more for everyone who came meanwhile.
class GroupSync {
public:
    using Done = std::function<void(std::error_code)>;
    // Calls done with the result of an fsync of dir_fd that started after this call:
    // on this thread when no fsync is running (this thread then runs it, and any
    // further ones that others join meanwhile), else on the thread running one, after
    // the next. done runs with no lock held and must not block.
    void sync_then(const FileOps& ops, int dir_fd, Done done);

private:
    std::mutex mutex_;
    std::vector<Done> waiting_;  // joined, their fsync not yet started
    bool syncing_ = false;
};

// Files of finished messages kept for reuse (free/), so that a new message usually
// takes an existing inode instead of allocating one: on ext4 without a journal,
// allocating inodes while others are being freed costs more than the fsyncs.
class FreeFiles {
public:
    static constexpr std::size_t limit = 1024;
    void add(std::string name);
    std::optional<std::string> take();
    std::size_t size();

private:
    std::mutex mutex_;
    std::vector<std::string> names_;
};

struct SpoolCore {
    std::filesystem::path dir, tmp, messages, state, corrupt, free;
    FileOps ops;
    io::Fd messages_fd, state_fd, corrupt_fd;
    GroupSync messages_sync;
    FreeFiles free_files;
    std::atomic<std::uint64_t> free_seq{0};
    // Whether new drafts are anonymous files (O_TMPFILE in tmp/, linked into messages/
    // at the commit): probed when the spool is opened, given up if a link is refused.
    std::atomic<bool> anonymous_drafts{false};

    // Moves a finished message's file to free/ (or unlinks it when free/ is full).
    void recycle(const std::filesystem::path& file);
    // Renames a free file to `to`; false when none is left.
    bool reuse(const std::filesystem::path& to);

    std::filesystem::path message_path(const std::string& id) const { return messages / id; }
    std::filesystem::path state_path(const std::string& id) const { return state / id; }
};

// Whether an anonymous file can be made in tmp/ and linked by its descriptor (O_TMPFILE
// needs the file system's support, the link needs /proc): tries it once.
bool can_link_anonymous(const SpoolCore& core);

// A fresh queue id candidate: the clock plus a per-process counter.
std::string next_queue_id();

// Moves a message file to corrupt/ (never replacing anything there) and fsyncs both
// directories; returns the note to log or report.
std::string move_to_corrupt(const SpoolCore& core, const std::string& name,
                            const std::string& why);

// Starts a draft in tmp/ with a fresh id (exclusive create; retried on collision).
// wanted: a queue id from new_queue_id() (one try), or "" for a fresh one.
std::unique_ptr<Draft> begin_draft(std::shared_ptr<SpoolCore> core, const std::string& wanted,
                                   std::error_code& ec);

std::unique_ptr<Spool> make_fs_spool(std::shared_ptr<SpoolCore> core);

}  // namespace tlsrelay::queue
