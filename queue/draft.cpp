// A message being received: content framed into 64 KiB records and written as it comes,
// then committed by the rule in format.hpp. Any failure removes every trace of it.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>

#include "queue/format.hpp"
#include "queue/spool_core.hpp"

namespace tlsrelay::queue {

namespace {

std::int64_t now_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

bool path_exists(const std::filesystem::path& path) { return ::access(path.c_str(), F_OK) == 0; }

// Holds the file it writes: tmp/<ID> (named), or an anonymous file made with O_TMPFILE
// in tmp/ that gets its only name when it is linked into messages/.
class FsDraft final : public Draft {
public:
    FsDraft(std::shared_ptr<SpoolCore> core, std::string id, io::Fd fd, bool named)
        : core_(std::move(core)), id_(std::move(id)), fd_(std::move(fd)), named_(named) {
        put(format::file_header(format::message_magic));
    }
    ~FsDraft() override { abandon(); }

    const std::string& id() const override { return id_; }
    std::error_code append(std::string_view bytes) override;
    std::error_code commit(const Envelope& envelope) override;
    void commit(const Envelope& envelope, Committed done) override;

private:
    std::filesystem::path tmp_path() const { return core_->tmp / id_; }
    void put(std::string_view bytes);
    void put_chunk(std::string_view content);
    std::error_code flush();
    std::error_code write_tail(const Envelope& envelope);
    std::error_code publish();
    std::error_code give_name();
    std::error_code fail(std::error_code ec);
    void abandon();

    enum class Stage { writing, renamed, finished };

    std::shared_ptr<SpoolCore> core_;
    std::string id_;
    io::Fd fd_;  // named: holds LOCK_EX on tmp/<id> until renamed, so recovery leaves it alone
    bool named_;
    format::Sha256 sha_;
    std::string out_;    // framed bytes not yet written
    std::string chunk_;  // content not yet framed
    std::uint64_t framed_ = 0;
    std::uint64_t size_ = 0;
    std::error_code error_;
    Stage stage_ = Stage::writing;
};

void FsDraft::put(std::string_view bytes) {
    sha_.update(bytes);
    out_ += bytes;
    framed_ += bytes.size();
}

void FsDraft::put_chunk(std::string_view content) {
    put(format::record_header(format::rec::content, static_cast<std::uint32_t>(content.size())));
    put(content);
}

std::error_code FsDraft::flush() {
    auto ec = io::write_all(core_->ops, fd_.get(), out_);
    out_.clear();
    return ec;
}

std::error_code FsDraft::append(std::string_view bytes) {
    if (error_) return error_;
    if (stage_ != Stage::writing) return std::make_error_code(std::errc::invalid_argument);
    size_ += bytes.size();
    chunk_ += bytes;
    std::size_t used = 0;
    while (chunk_.size() - used >= format::chunk_size) {
        put_chunk(std::string_view(chunk_).substr(used, format::chunk_size));
        used += format::chunk_size;
        if (auto ec = flush()) return fail(ec);
    }
    chunk_.erase(0, used);
    return {};
}

std::error_code FsDraft::commit(const Envelope& envelope) {
    std::mutex mutex;
    std::condition_variable finished;
    std::optional<std::error_code> result;
    commit(envelope, [&](std::error_code ec) {
        std::lock_guard lock(mutex);
        result = ec;
        finished.notify_one();
    });
    std::unique_lock lock(mutex);
    finished.wait(lock, [&] { return result.has_value(); });
    return *result;
}

// Everything up to the directory fsync happens here; the rest, and done, when an
// fsync of messages/ that started after the name was given has finished. The caller
// may destroy the draft as soon as done is called, so nothing touches it after that.
void FsDraft::commit(const Envelope& envelope, Committed done) {
    if (error_) return done(error_);
    if (stage_ != Stage::writing || envelope.recipients.empty())
        return done(fail(std::make_error_code(std::errc::invalid_argument)));
    if (auto ec = write_tail(envelope)) return done(fail(ec));
    if (auto ec = publish()) return done(fail(ec));
    // This thread may go on running fsyncs for others after this draft is gone: the
    // local reference keeps the spool's core (and its GroupSync) alive until then.
    std::shared_ptr<SpoolCore> core = core_;
    core->messages_sync.sync_then(core->ops, core->messages_fd.get(),
                                  [this, done = std::move(done)](std::error_code ec) {
                                      if (ec) return done(fail(ec));
                                      stage_ = Stage::finished;
                                      done({});
                                  });
}

std::error_code FsDraft::write_tail(const Envelope& envelope) {
    if (!chunk_.empty()) put_chunk(chunk_);
    chunk_.clear();
    Envelope e = envelope;
    e.id = id_;
    e.size = size_;
    if (e.arrival_us == 0) e.arrival_us = now_us();
    std::string records, why;
    if (!format::encode_envelope(e, records, why))
        return std::make_error_code(std::errc::invalid_argument);
    std::uint64_t envelope_offset = framed_;
    put(records);
    put(format::end_record_prefix(envelope_offset, format::sha256(records)));
    out_ += format::as_bytes(sha_.finish());
    return flush();
}

// fsync, give it its name in messages/, close (checked: NFS reports errors there; the
// lock goes with it). The fsync of messages/ follows, shared with concurrent commits.
std::error_code FsDraft::publish() {
    const FileOps& ops = core_->ops;
    if (auto ec = io::sync(ops, fd_.get())) return ec;
    if (auto ec = give_name()) return ec;
    stage_ = Stage::renamed;
    return io::close_checked(ops, fd_);
}

// Renames tmp/<ID> or links the anonymous file to messages/<ID>, never replacing one.
// Some errors leave it unknown whether that happened; then what the name holds tells.
std::error_code FsDraft::give_name() {
    const FileOps& ops = core_->ops;
    std::filesystem::path to = core_->message_path(id_);
    std::error_code ec =
        named_ ? io::rename(ops, tmp_path(), to, true) : io::link(ops, fd_.get(), to);
    if (!ec || ec == std::errc::file_exists) return ec;
    if (io::same_file(fd_.get(), to)) stage_ = Stage::renamed;
    // E.g. /proc unmounted since the spool was opened: this message fails (451, the
    // client tries again), later ones are named drafts.
    if (!named_ &&
        (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted ||
         ec == std::errc::no_such_file_or_directory))
        core_->anonymous_drafts.store(false, std::memory_order_relaxed);
    return ec;
}

std::error_code FsDraft::fail(std::error_code ec) {
    error_ = ec;
    abandon();
    return ec;
}

void FsDraft::abandon() {
    // An anonymous draft goes with its descriptor.
    if (stage_ == Stage::writing && named_) io::unlink(tmp_path());
    if (stage_ == Stage::renamed) {
        // The close or the directory fsync failed: the 250 will not be sent, so take
        // the name back.
        io::unlink(core_->message_path(id_));
        io::sync(core_->ops, core_->messages_fd.get());
    }
    fd_.reset();  // the lock last: recovery elsewhere never sees a live draft unlocked
    stage_ = Stage::finished;
}

}  // namespace

void GroupSync::sync_then(const FileOps& ops, int dir_fd, Done done) {
    std::unique_lock lock(mutex_);
    waiting_.push_back(std::move(done));
    if (syncing_) return;  // its thread runs the next fsync for us
    syncing_ = true;
    while (!waiting_.empty()) {
        std::vector<Done> batch;
        batch.swap(waiting_);
        lock.unlock();
        std::error_code ec = io::sync(ops, dir_fd);
        for (Done& d : batch) d(ec);
        lock.lock();
    }
    syncing_ = false;
}

std::string next_queue_id() {
    static std::atomic<std::uint32_t> counter{static_cast<std::uint32_t>(::getpid())};
    std::int64_t us = now_us();
    auto seconds = static_cast<unsigned long long>(us / 1000000) & 0xffffffffu;
    auto micros = static_cast<unsigned long long>(us % 1000000);
    unsigned tail = counter.fetch_add(1, std::memory_order_relaxed) & 0xf;
    char text[16];
    std::snprintf(text, sizeof text, "%08llX%05llX%X", seconds, micros, tail);
    return text;
}

std::string new_queue_id() { return next_queue_id(); }

bool is_queue_id(std::string_view text) {
    if (text.size() != 14) return false;
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
    }
    return true;
}

void FreeFiles::add(std::string name) {
    std::lock_guard lock(mutex_);
    names_.push_back(std::move(name));
}

std::optional<std::string> FreeFiles::take() {
    std::lock_guard lock(mutex_);
    if (names_.empty()) return std::nullopt;
    std::string n = std::move(names_.back());
    names_.pop_back();
    return n;
}

std::size_t FreeFiles::size() {
    std::lock_guard lock(mutex_);
    return names_.size();
}

void SpoolCore::recycle(const std::filesystem::path& file) {
    if (free_files.size() < FreeFiles::limit) {
        std::string name = "F" + std::to_string(::getpid()) + "-" + std::to_string(++free_seq);
        if (!io::rename(ops, file, free / name, true)) {
            free_files.add(std::move(name));
            return;
        }
    }
    io::unlink(file);
}

bool SpoolCore::reuse(const std::filesystem::path& to) {
    while (auto name = free_files.take()) {
        std::error_code ec = io::rename(ops, free / *name, to, true);
        if (!ec) return true;
        if (ec == std::errc::no_such_file_or_directory) continue;  // another process took it
        free_files.add(std::move(*name));  // e.g. `to` exists: keep the file for later
        return false;
    }
    return false;
}

bool can_link_anonymous(const SpoolCore& core) {
    std::error_code ec;
    io::Fd fd = io::open_file(core.tmp, O_TMPFILE | O_WRONLY, ec, 0600);
    if (ec) return false;
    std::filesystem::path probe = core.tmp / ("probe-" + next_queue_id());
    if (io::link(core.ops, fd.get(), probe)) return false;
    io::unlink(probe);
    return true;
}

namespace {

// An anonymous draft costs less than tmp/<ID>: no entry to add to tmp/ and take out
// again (on ext4 without a journal the fsync of a new file also writes the directory it
// was made in), no lock, no rename. A crash leaves nothing behind on a file system with
// a journal (its orphan list frees the inode); without one, fsck reclaims it.
// Returns no descriptor where that is not possible; the caller makes tmp/<ID> then.
io::Fd open_anonymous(const SpoolCore& core) {
    if (!core.anonymous_drafts.load(std::memory_order_relaxed)) return {};
    std::error_code ec;
    return io::open_file(core.tmp, O_TMPFILE | O_WRONLY, ec, 0600);
}

}  // namespace

std::unique_ptr<Draft> begin_draft(std::shared_ptr<SpoolCore> core, const std::string& wanted,
                                   std::error_code& ec) {
    bool try_reuse = true;
    for (int attempt = 0; attempt < (wanted.empty() ? 100 : 2); ++attempt) {
        std::string id = wanted.empty() ? next_queue_id() : wanted;
        std::filesystem::path path = core->tmp / id;
        bool reused = try_reuse && core->reuse(path);
        if (!reused) {
            if (io::Fd fd = open_anonymous(*core)) {
                if (path_exists(core->message_path(id))) continue;
                ec.clear();
                return std::make_unique<FsDraft>(std::move(core), std::move(id), std::move(fd),
                                                 false);
            }
        }
        io::Fd fd = io::open_file(path, reused ? O_WRONLY | O_TRUNC : O_WRONLY | O_CREAT | O_EXCL, ec, 0600);
        if (ec == std::errc::file_exists) continue;
        if (ec) return nullptr;
        ec = io::lock(fd.get(), LOCK_EX | LOCK_NB);
        if (reused && (ec || io::unlinked(fd.get()))) {
            // A spent file someone still holds: leave it, make a fresh one.
            io::unlink(path);
            try_reuse = false;
            continue;
        }
        // Lost a race with another process's recovery, which is deleting the file.
        if (ec == std::errc::operation_would_block || io::unlinked(fd.get())) continue;
        if (ec) {
            io::unlink(path);
            return nullptr;
        }
        if (path_exists(core->message_path(id))) {
            io::unlink(path);
            continue;
        }
        return std::make_unique<FsDraft>(std::move(core), std::move(id), std::move(fd), true);
    }
    ec = std::make_error_code(std::errc::file_exists);
    return nullptr;
}


}  // namespace tlsrelay::queue
